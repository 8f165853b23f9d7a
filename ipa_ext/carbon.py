"""Carbon intensity: a constant, or a step-wise time series read from CSV.

A trace file has a header ``time_s,g_per_kwh`` and rows sorted by time. The
intensity at time ``t`` is the value of the last row at or before ``t`` (the
first row's value before it).
"""

from __future__ import annotations

import bisect
import csv
import math
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError


@dataclass(frozen=True)
class CarbonIntensity:
    """Grams of CO2 per kWh over time."""

    times_s: tuple[float, ...]
    g_per_kwh: tuple[float, ...]
    source: str

    @classmethod
    def constant(cls, value: float) -> CarbonIntensity:
        return cls((0.0,), (float(value),), "constant")

    @classmethod
    def from_csv(cls, path: str | Path) -> CarbonIntensity:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read carbon trace: {exc.strerror or exc}", path=p) from None
        rows = list(csv.reader(line for line in text.splitlines() if line.strip() and not line.startswith("#")))
        if not rows or [c.strip() for c in rows[0]] != ["time_s", "g_per_kwh"]:
            raise ConfigError("carbon trace needs the header 'time_s,g_per_kwh'", path=p, where="line 1")
        times: list[float] = []
        values: list[float] = []
        for n, row in enumerate(rows[1:], start=2):
            try:
                t, v = (float(c) for c in row)
            except ValueError:
                raise ConfigError(f"expected two numbers, got {row}", path=p, where=f"row {n}") from None
            if not (math.isfinite(t) and math.isfinite(v)) or v < 0:
                raise ConfigError(f"invalid values {row}", path=p, where=f"row {n}")
            if times and t <= times[-1]:
                raise ConfigError("time_s must increase", path=p, where=f"row {n}")
            times.append(t)
            values.append(v)
        if not times:
            raise ConfigError("carbon trace has no rows", path=p)
        return cls(tuple(times), tuple(values), str(p))

    def at(self, t_s: float) -> float:
        i = bisect.bisect_right(self.times_s, t_s) - 1
        return self.g_per_kwh[max(i, 0)]
