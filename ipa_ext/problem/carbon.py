"""Carbon intensity: a constant, or a step-wise time series read from a CSV file.

A trace is either ``time_s,g_per_kwh`` rows sorted by time or Electricity Maps' hourly export
(:mod:`.carbon_traces`). The intensity at run time ``t`` is the value of the last step at or
before ``t`` (the first step's value before it, the last one's after the file ends).
"""

from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..config.numeric import MODEL_LIMIT, number
from ..config.show import shown
from ..config.yamlsafe import MAX_BYTES, read_text
from ..errors import ConfigError
from .carbon_traces import COLUMNS, Row, grid_steps, is_grid_header, read_grid_hours

SIMPLE_HEADER = ["time_s", "g_per_kwh"]


@dataclass(frozen=True)
class CarbonIntensity:
    """Grams of CO2 per kWh over run time."""

    times_s: tuple[float, ...]
    g_per_kwh: tuple[float, ...]
    source: str

    @classmethod
    def constant(cls, value: float) -> CarbonIntensity:
        return cls((0.0,), (number(value, "carbon.intensity_g_per_kwh", minimum=0.0, maximum=MODEL_LIMIT),),
                   "constant")

    @classmethod
    def from_csv(cls, path: str | Path, *, start: Any = None, column: str | None = None,
                 hours_per_run_hour: float | None = None) -> CarbonIntensity:
        """A trace file in either format; ``start`` and ``column`` apply to the hourly export only,
        ``hours_per_run_hour`` (trace time per run time, default 1) to both."""
        p = Path(path)
        rows = _rows(p)
        speed = 1.0 if hours_per_run_hour is None else number(
            hours_per_run_hour, "carbon.hours_per_run_hour", positive=True, maximum=MODEL_LIMIT, text=True)
        header = [c.strip() for c in rows[0][1]] if rows else []
        if header == SIMPLE_HEADER:
            if start is not None or column is not None:
                key = "carbon.start" if start is not None else "carbon.column"
                raise ConfigError("applies to Electricity Maps' hourly export only, not to a time_s,g_per_kwh "
                                  "trace", path=p, where=key)
            times, values = _simple(rows, p)
            return cls(tuple(t / speed for t in times), values, str(p) if speed == 1 else f"{p} (x{speed:g})")
        if rows and is_grid_header(header):
            col = column or "direct"
            if col not in COLUMNS:
                raise ConfigError(f"must be direct or lca, got {shown(column)}", path=p, where="carbon.column")
            times, values, description = grid_steps(read_grid_hours(rows, p, col), start, speed, p)
            return cls(times, values, description)
        raise ConfigError("not a carbon trace: expected the header 'time_s,g_per_kwh' or Electricity Maps' "
                          "hourly export ('Datetime (UTC)', ..., 'Carbon Intensity gCO2eq/kWh (direct)', ...)",
                          path=p, where=f"row {rows[0][0]}" if rows else "row 1")

    def at(self, t_s: float) -> float:
        i = bisect.bisect_right(self.times_s, t_s) - 1
        return self.g_per_kwh[max(i, 0)]


def _rows(p: Path) -> list[Row]:
    """The file's non-empty, non-comment CSV rows with their line numbers (at most MAX_BYTES read)."""
    text = read_text(p, ConfigError, what="carbon trace", limit=MAX_BYTES)
    out: list[Row] = []
    reader = csv.reader(text.splitlines())
    try:
        for row in reader:
            if row and any(c.strip() for c in row) and not row[0].startswith("#"):
                out.append((reader.line_num, row))
    except csv.Error as exc:
        raise ConfigError(f"malformed CSV: {exc}", path=p, where=f"row {reader.line_num}") from None
    return out


def _simple(rows: Sequence[Row], p: Path) -> tuple[list[float], tuple[float, ...]]:
    """``time_s,g_per_kwh`` rows: strictly increasing times, intensities >= 0."""
    times: list[float] = []
    values: list[float] = []
    for n, row in rows[1:]:
        if len(row) != 2:
            raise ConfigError(f"expected two numbers, got {shown(row)}", path=p, where=f"row {n}")
        t = number(row[0], f"row {n}: time_s", path=p, text=True)
        v = number(row[1], f"row {n}: g_per_kwh", path=p, text=True, minimum=0.0, maximum=MODEL_LIMIT)
        if times and t <= times[-1]:
            raise ConfigError("time_s must increase", path=p, where=f"row {n}")
        times.append(t)
        values.append(v)
    if not times:
        raise ConfigError("carbon trace has no rows", path=p)
    return times, tuple(values)
