"""Trace files: the per-second request series IPA and InfAdapter evaluate on, and the Workload value.

A trace is whitespace-separated per-second integers in a ``.txt`` file or a bzip2 tarball holding one.
"""

from __future__ import annotations

import bz2
import io
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..config.show import listed, shown
from ..config.yamlsafe import check_name
from ..errors import InputError


@dataclass(frozen=True)
class Workload:
    """A per-second request series and where it came from."""

    name: str
    rates: np.ndarray = field(repr=False)
    source: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> int:
        return int(len(self.rates))

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for summaries and logs)."""
        r = self.rates
        return {
            "name": self.name,
            "source": self.source,
            **dict(self.params),
            "seconds": self.duration_s,
            "requests": int(r.sum()) if len(r) else 0,
            "mean_rps": float(r.mean()) if len(r) else 0.0,
            "max_rps": int(r.max()) if len(r) else 0,
        }



def _read_trace_text(p: Path) -> str:
    check_name(p, InputError, "trace file")
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError("trace file not found", path=p) from None
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc.strerror or exc}", path=p) from None
    name = p.name.lower()
    if name.endswith((".tbz2", ".tar.bz2", ".tbz")):
        try:
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:bz2") as tar:
                members = [m for m in tar.getmembers() if m.isfile()]
                if not members:
                    raise InputError("the tarball holds no file", path=p)
                txt = [m for m in members if m.name.endswith(".txt")] or members
                if len(txt) > 1:
                    names = listed(m.name for m in txt[:5])
                    raise InputError(f"the tarball holds several candidate files ({names}); extract one", path=p)
                f = tar.extractfile(txt[0])
                assert f is not None
                raw = f.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InputError(f"not a readable bzip2 tarball: {exc}", path=p) from None
    elif name.endswith(".bz2"):
        try:
            raw = bz2.decompress(raw)
        except (OSError, ValueError) as exc:
            raise InputError(f"not a readable bzip2 file: {exc}", path=p) from None
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text trace (byte {exc.start} is not ASCII)", path=p) from None


INT64_MAX = int(np.iinfo(np.int64).max)


def parse_trace(text: str, path: str | Path | None = None) -> np.ndarray:
    """Parse whitespace-separated per-second request counts.

    Every token must be a non-negative integer that fits 64 bits; the first one
    that is not is reported with its line and position. An empty trace is an error.
    """
    tokens = text.split()
    if not tokens:
        raise InputError("empty trace: expected whitespace-separated per-second request counts", path=path)
    try:
        arr = np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        arr = None
    if arr is not None and arr.min() >= 0:
        return arr
    _raise_bad_token(text, path)
    raise InputError("cannot parse trace", path=path)  # pragma: no cover - _raise_bad_token raises


def _raise_bad_token(text: str, path: str | Path | None) -> None:
    """Find the first token that is not a count and raise an error naming its line and position."""
    i = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        for tok in line.split():
            where = f"line {lineno}, value {i + 1} (second {i})"
            m = re.fullmatch(r"([+-]?)0*([0-9]*)", tok)
            if m is None or tok.strip("+-") == "":
                raise InputError(f"{shown(tok)} is not an integer request count", path=path, where=where)
            if m.group(1) == "-" and m.group(2):
                raise InputError(f"{shown(tok)} is negative", path=path, where=where)
            if len(m.group(2)) > 19 or int(m.group(2) or 0) > INT64_MAX:
                raise InputError(f"{shown(tok)} is larger than a 64-bit count ({INT64_MAX})",
                                 path=path, where=where)
            i += 1


def load_trace(path: str | Path) -> np.ndarray:
    """Read a whole trace file (``.txt``, ``.bz2`` or a ``.tbz2`` tarball holding one ``.txt``)."""
    p = Path(path)
    return parse_trace(_read_trace_text(p), p)
