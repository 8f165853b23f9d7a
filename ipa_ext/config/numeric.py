"""One checked conversion from user input to a number, used by every reader.

Configs, pipelines, profiles, IPA configs, workloads, carbon traces, predictor
and plugin options all read numbers through :func:`as_number` (which raises
:class:`NumberError`, a ``ValueError``) or :func:`number` (which raises the
reader's one-line error with file and field). Both refuse null, booleans,
NaN and infinities, and integers too large for a float.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

from ..errors import ConfigError, InputError
from .show import int_text, shown

FLOAT_MAX = sys.float_info.max
MODEL_LIMIT = 1e15
"""The largest magnitude of a number in a pipeline, profile or the optimizer settings (accuracy,
latency, throughput, power, weights, caps, thresholds): far beyond real values, and small
enough that weights x terms, sums and Q-values never overflow a float."""


class NumberError(ValueError):
    """A value that is not an acceptable number; the message says why (no location)."""


def _parse(value: Any, text: bool) -> float | int:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise NumberError(f"expected a number, got {shown(value)}")
    if isinstance(value, int):
        if not -FLOAT_MAX <= value <= FLOAT_MAX:
            raise NumberError(f"expected a number up to {FLOAT_MAX:.2g}, got {int_text(value).strip('<>')}")
        return value
    if isinstance(value, str):
        if not text:
            raise NumberError(f"expected a number, got {shown(value)}")
        try:
            x = float(value.strip())
        except ValueError:
            raise NumberError(f"expected a number, got {shown(value)}") from None
        if x != x or x in (float("inf"), float("-inf")):
            raise NumberError(f"expected a finite number, got {shown(value)}")
        return x
    if value != value or value in (float("inf"), float("-inf")):
        raise NumberError(f"expected a finite number, got {shown(value)}")
    return value


def _bound(b: float) -> str:
    if isinstance(b, int):
        return str(b)
    return str(int(b)) if b == int(b) and abs(b) < 1e15 else f"{b:g}"


def as_number(
    value: Any,
    *,
    integer: bool = False,
    positive: bool = False,
    minimum: float | None = None,
    maximum: float | None = None,
    text: bool = False,
) -> Any:
    """``value`` as a float (an int with ``integer``), or :class:`NumberError`.

    ``text`` also accepts a string holding a number (CSV cells, YAML strings).
    ``positive`` means > 0; ``minimum``/``maximum`` are inclusive bounds.
    """
    x = _parse(value, text)
    if integer and x != int(x):
        raise NumberError(f"must be a whole number, got {shown(value)}")
    if positive and x <= 0:
        raise NumberError(f"must be > 0, got {shown(value)}")
    if minimum is not None and x < minimum:
        raise NumberError(f"must be >= {_bound(minimum)}, got {shown(value)}")
    if maximum is not None and x > maximum:
        raise NumberError(f"must be <= {_bound(maximum)}, got {shown(value)}")
    if integer:
        return x if isinstance(x, int) else int(x)
    return float(x)


def number(
    value: Any,
    where: str,
    *,
    path: str | Path | None = None,
    error: Callable[..., InputError] = ConfigError,
    **checks: Any,
) -> Any:
    """:func:`as_number` whose failure is ``error(message, path=path, where=where)``."""
    try:
        return as_number(value, **checks)
    except NumberError as exc:
        raise error(str(exc), path=path, where=where) from None


def option(name: str, value: Any, **checks: Any) -> Any:
    """A plugin option read with :func:`as_number`; the ValueError names the option
    (a component factory's ValueError becomes a one-line config error)."""
    try:
        return as_number(value, **checks)
    except NumberError as exc:
        text = str(exc)
        raise NumberError(f"{name} {text}" if text.startswith("must") else f"{name}: {text}") from None
