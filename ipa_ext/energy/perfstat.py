"""Parsing ``perf stat`` output: the CSV form (``-x,``) and the human-readable form, with or without ``-I``.

One line gives one :class:`PerfRecord`: the interval end (seconds since perf
started, ``None`` without ``-I``), the event, its value (``None`` for
``<not counted>`` / ``<not supported>``) and unit. Comment and blank lines give
``None``; anything else that is not a perf record raises :class:`ValueError`,
which callers turn into an error naming the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config.show import shown

NOT_COUNTED = "<not counted>"
NOT_SUPPORTED = "<not supported>"
_SPECIAL = (NOT_COUNTED, NOT_SUPPORTED)

_NUM = r"[0-9][0-9,'.]*(?:[eE][-+]?[0-9]+)?"
_HUMAN = re.compile(
    rf"^\s*(?:(?P<time>[0-9]+\.[0-9]+)\s+)?(?P<count>{_NUM}|<not counted>|<not supported>)\s+(?P<rest>\S.*?)\s*$"
)
_TRAILER = re.compile(r"\s+(?:#.*|\(\s*[0-9.]+%\s*\))\s*$")
_UNITS = {"Joules", "msec", "ms", "Watts", "MiB", "ns"}
_ELAPSED = re.compile(r"^\s*[0-9.]+\s+seconds\s+(time elapsed|user|sys)\s*$")


@dataclass(frozen=True)
class PerfRecord:
    """One counter value from a ``perf stat`` line."""

    time_s: float | None
    """End of the interval in seconds since perf started (``-I``), else None."""
    event: str
    value: float | None
    """None when perf printed ``<not counted>`` or ``<not supported>``."""
    unit: str
    status: str = "ok"
    """``ok``, ``not counted`` or ``not supported``."""


def _number(text: str) -> float:
    return float(text.replace(",", "").replace("'", ""))


def _time(text: str) -> float:
    """An interval timestamp: a finite number of seconds >= 0."""
    t = _number(text)
    if not 0 <= t < float("inf"):
        raise ValueError(f"time {shown(text)} is not a finite number of seconds >= 0")
    return t


def _record(time_s: float | None, count: str, unit: str, event: str) -> PerfRecord:
    if not event:
        raise ValueError("no event name")
    if count in _SPECIAL:
        return PerfRecord(time_s, event, None, unit, count.strip("<>"))
    try:
        value = _number(count)
    except ValueError:
        raise ValueError(f"count {shown(count)} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"count {shown(count)} is not finite")
    if value < 0:
        raise ValueError(f"count {shown(count)} is negative; perf counts never are")
    return PerfRecord(time_s, event, value, unit)


def parse_csv_line(line: str) -> PerfRecord | None:
    """A line of ``perf stat -x,`` output, with or without ``-I``."""
    s = line.strip()
    if not s or s.startswith("#"):
        return None
    f = s.split(",")
    if len(f) < 3:
        raise ValueError(f"expected at least 3 comma-separated fields, got {len(f)}")
    interval = len(f) >= 4 and _is_float(f[0]) and not _is_float(f[3]) and f[3] != ""
    if interval:
        return _record(_time(f[0]), f[1], f[2], f[3])
    return _record(None, f[0], f[1], f[2])


def parse_human_line(line: str) -> PerfRecord | None:
    """A line of ``perf stat`` human-readable output (``-I`` or summary)."""
    s = line.rstrip("\n")
    if not s.strip() or s.lstrip().startswith("#"):
        return None
    if _ELAPSED.match(s) or s.strip().startswith("Performance counter stats"):
        return None
    m = _HUMAN.match(s)
    if m is None:
        raise ValueError("not a perf stat counter line")
    rest = _TRAILER.sub("", " " + m.group("rest")).strip()
    parts = rest.split()
    if parts and _is_float(parts[0]) and float(parts[0]) < 0:
        raise ValueError(f"count {shown(parts[0])} is negative; perf counts never are")
    if parts and (parts[0][:1].isdigit() or _is_float(parts[0])):
        raise ValueError(f"unexpected {shown(parts[0])} where a unit or event belongs")
    if len(parts) == 1 and parts[0] in _UNITS:
        raise ValueError(f"no event name after the unit {shown(parts[0])}")
    if len(parts) == 1:
        unit, event = "", parts[0]
    elif len(parts) >= 2:
        unit, event = parts[0], parts[1]
    else:
        raise ValueError("no event name")
    time_s = _time(m.group("time")) if m.group("time") else None
    return _record(time_s, m.group("count"), unit, event)


def detect_format(line: str) -> str | None:
    """``"csv"`` or ``"human"`` for a counter line, None for a comment or blank line."""
    s = line.strip()
    if not s or s.startswith("#"):
        return None
    m = _HUMAN.match(s)
    if m is not None and "," not in m.group("rest"):
        return "human"
    return "csv" if "," in s else "human"


def parse_line(line: str, fmt: str | None = None) -> PerfRecord | None:
    """A line in ``fmt`` (``"csv"`` or ``"human"``), detected from the line when None."""
    fmt = fmt or detect_format(line)
    if fmt is None:
        return None
    return parse_csv_line(line) if fmt == "csv" else parse_human_line(line)


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
