"""IPA's named windows of the Twitter trace and windowing as IPA's workload generator does it.

A window is ``series[start:end]`` (end exclusive), each second's count integer-divided by
``damping_factor`` when one is given.
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import numpy as np

from ..config.numeric import number
from ..config.show import shown
from ..errors import InputError
from .traces import INT64_MAX, Workload, load_trace

IPA_WINDOWS: Mapping[str, tuple[int, int, int | None]] = {
    "bursty": (1301160, 1302360, None),
    "steady-low": (1299600, 1300800, None),
    "steady-high": (1768800, 1769400, 8),
    "fluctuating": (1301400, 1302000, 8),
}
"""IPA's evaluation windows of the Twitter trace: (start second, end second, damping factor)."""


def window(
    series: np.ndarray,
    start_s: int | None = None,
    end_s: int | None = None,
    damping_factor: int | None = None,
    *,
    path: str | Path | None = None,
) -> np.ndarray:
    """IPA's window: ``series[start:end]``, integer-divided by ``damping_factor``."""
    n = len(series)
    start = 0 if start_s is None else int(start_s)
    end = n if end_s is None else int(end_s)
    if start < 0 or end < 0:
        raise InputError(f"window {start}-{end}: seconds must be >= 0", path=path, where="window")
    if start >= end:
        raise InputError(f"window {start}-{end}: start must be before end", path=path, where="window")
    if end > n:
        raise InputError(f"window {start}-{end} ends after the trace's {n} seconds", path=path, where="window")
    out = series[start:end]
    if damping_factor is not None:
        d = number(damping_factor, "damping_factor", path=path, error=InputError, integer=True, minimum=1,
                   maximum=INT64_MAX)
        out = out // d
    return np.ascontiguousarray(out, dtype=np.int64)


_TRACE_CACHE: dict[tuple[str, float], np.ndarray] = {}


def _cached_trace(p: Path) -> np.ndarray:
    try:
        key = (str(p.resolve()), p.stat().st_mtime)
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return load_trace(p)  # raises the one-line error
    if key not in _TRACE_CACHE:
        _TRACE_CACHE.clear()
        _TRACE_CACHE[key] = load_trace(p)
    return _TRACE_CACHE[key]


def twitter(
    trace: str | Path,
    start_s: int | None = None,
    end_s: int | None = None,
    damping_factor: int | None = None,
    *,
    name: str | None = None,
) -> Workload:
    """A window of a trace file (IPA's named window when ``name`` is given)."""
    p = Path(trace)
    rates = window(_cached_trace(p), start_s, end_s, damping_factor, path=p)
    start = 0 if start_s is None else int(start_s)
    params = {"trace": str(p), "start_s": start, "end_s": start + len(rates),
              "damping_factor": damping_factor}
    label = f"twitter:{name}" if name else f"trace:{p.name}[{start}:{start + len(rates)}]"
    return Workload(label, rates, "trace", params)


def parse_window(text: str) -> tuple[int, int]:
    """``START-END`` or ``START:END`` in seconds."""
    for sep in ("-", ":"):
        if sep in text:
            a, _, b = text.partition(sep)
            try:
                return int(a), int(b)
            except ValueError:
                break
    raise InputError(f"--window {shown(text)}: expected START-END in whole seconds")
