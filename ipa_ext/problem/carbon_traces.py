"""Electricity Maps' hourly carbon-intensity export, turned into run-time steps.

See docs/carbon.md for the format, the checks and how ``start`` and ``hours_per_run_hour`` map
grid hours onto run seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Sequence

from ..config.numeric import MODEL_LIMIT, number
from ..config.show import shown
from ..errors import ConfigError

HOUR_S = 3600
COLUMNS = ("direct", "lca")
"""The intensity columns ``carbon.column`` chooses from: operational (direct) or life-cycle."""

Row = tuple[int, list[str]]
"""A CSV row and its line number in the file."""


@dataclass(frozen=True)
class GridHours:
    """An hourly export's chosen column: one value per UTC hour, contiguous."""

    hours_s: tuple[float, ...]
    g_per_kwh: tuple[float, ...]
    lines: tuple[int, ...]
    zone: str
    column: str
    estimated: int


def is_grid_header(header: Sequence[str]) -> bool:
    """Whether a CSV header looks like Electricity Maps' export (a datetime, carbon-intensity columns)."""
    cells = [c.strip().lower() for c in header]
    return bool(cells) and cells[0].startswith("datetime") and any("carbon intensity" in c for c in cells)


def _find(header: Sequence[str], column: str) -> int | None:
    """The index of the ``direct`` or ``lca`` intensity column (matched loosely, as exports differ)."""
    for i, cell in enumerate(header):
        c = cell.strip().lower()
        if "carbon intensity" not in c:
            continue
        if column == "direct" and "(direct" in c:
            return i
        if column == "lca" and ("(lca" in c or "life cycle" in c or "lifecycle" in c):
            return i
    return None


def _named(header: Sequence[str], name: str) -> int | None:
    cells = [c.strip().lower() for c in header]
    return cells.index(name) if name in cells else None


def parse_time(value: Any) -> datetime | None:
    """A UTC time from ``2023-06-01 00:00:00``, ISO forms with ``T``/``Z``/offset, or a YAML date;
    a time without an offset is UTC. None when it is not a time."""
    if isinstance(value, datetime):
        t = value
    elif isinstance(value, date):
        t = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        text = value.strip()
        if text[-1:] in ("Z", "z"):
            text = text[:-1] + "+00:00"
        try:
            t = datetime.fromisoformat(text)
        except ValueError:
            return None
    else:
        return None
    return t.replace(tzinfo=timezone.utc) if t.tzinfo is None else t.astimezone(timezone.utc)


def _when(epoch_s: float) -> str:
    return datetime.fromtimestamp(epoch_s, tz=timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _hour(row: list[str], line: int, header: Sequence[str], path: Path) -> float:
    t = parse_time(row[0])
    if t is None:
        raise ConfigError(f"{header[0].strip()}: expected a time like 2023-01-01 00:00:00, got {shown(row[0])}",
                          path=path, where=f"row {line}")
    if t.minute or t.second or t.microsecond:
        raise ConfigError(f"{header[0].strip()}: {shown(row[0])} is not on the hour", path=path,
                          where=f"row {line}")
    return t.timestamp()


def _check_step(prev: float, now: float, lines: list[int], line: int, path: Path) -> None:
    """Consecutive rows must be one hour apart: no duplicated, missing or reordered hours."""
    if now == prev:
        raise ConfigError(f"duplicated hour {_when(now)} (also row {lines[-1]})", path=path, where=f"row {line}")
    if now < prev:
        raise ConfigError(f"hour {_when(now)} comes after {_when(prev)} (row {lines[-1]}): rows must be in "
                          "time order", path=path, where=f"row {line}")
    if now - prev > HOUR_S:
        missing = int((now - prev) // HOUR_S) - 1
        raise ConfigError(f"{missing} missing hour(s) after {_when(prev)} (row {lines[-1]}): the next row is "
                          f"{_when(now)}", path=path, where=f"row {line}")


def read_grid_hours(rows: Sequence[Row], path: Path, column: str) -> GridHours:
    """The chosen column of an export whose first row is the header; every problem is one line."""
    header_line, header = rows[0]
    col = _find(header, column)
    if col is None:
        raise ConfigError(f"no {column} carbon-intensity column in the header (carbon.column: direct or lca)",
                          path=path, where=f"row {header_line}")
    est, zone_col = _named(header, "data estimated"), _named(header, "zone id")
    hours: list[float] = []
    values: list[float] = []
    lines: list[int] = []
    estimated = 0
    for line, row in rows[1:]:
        if len(row) != len(header):
            raise ConfigError(f"expected {len(header)} fields as in the header, got {len(row)}", path=path,
                              where=f"row {line}")
        h = _hour(row, line, header, path)
        if hours:
            _check_step(hours[-1], h, lines, line, path)
        values.append(number(row[col], f"row {line}: {header[col].strip()}", path=path, text=True,
                             minimum=0.0, maximum=MODEL_LIMIT))
        hours.append(h)
        lines.append(line)
        if est is not None and row[est].strip().lower() == "true":
            estimated += 1
    if not hours:
        raise ConfigError("carbon trace has no rows", path=path)
    zone = rows[1][1][zone_col].strip() if zone_col is not None else "unknown zone"
    return GridHours(tuple(hours), tuple(values), tuple(lines), zone, column, estimated)


def start_index(grid: GridHours, start: Any, path: Path) -> tuple[int, float]:
    """The row holding ``start`` (the first hour when None) and ``start`` in epoch seconds."""
    if start is None:
        return 0, grid.hours_s[0]
    t = parse_time(start)
    if t is None:
        raise ConfigError(f"expected a UTC time like \"2023-06-01T00:00Z\", got {shown(start)}", path=path,
                          where="carbon.start")
    s = t.timestamp()
    first, last = grid.hours_s[0], grid.hours_s[-1]
    if not first <= s < last + HOUR_S:
        raise ConfigError(
            f"start {_when(s)} is outside the file's hours {_when(first)} to {_when(last)} "
            f"(rows {grid.lines[0]}-{grid.lines[-1]})", path=path, where="carbon.start")
    return int((s - first) // HOUR_S), s


def grid_steps(grid: GridHours, start: Any, hours_per_run_hour: float,
               path: Path) -> tuple[tuple[float, ...], tuple[float, ...], str]:
    """Step times in run seconds (0 = ``start``, ``hours_per_run_hour`` grid hours per run hour),
    their values and a description naming the zone, column, start and speed-up."""
    i, s = start_index(grid, start, path)
    times = tuple([0.0] + [(h - s) / hours_per_run_hour for h in grid.hours_s[i + 1:]])
    description = (f"{path.name}: Electricity Maps {grid.zone}, {grid.column} g/kWh from {_when(s)}, "
                   f"{hours_per_run_hour:g} grid h per run h, {grid.estimated} of {len(grid.hours_s)} "
                   "hours estimated")
    return times, grid.g_per_kwh[i:], description
