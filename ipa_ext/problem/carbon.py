"""Carbon intensity: a constant, or a step-wise time series read from CSV.

A trace file has a header ``time_s,g_per_kwh`` and rows sorted by time. The
intensity at time ``t`` is the value of the last row at or before ``t`` (the
first row's value before it).
"""

from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass
from pathlib import Path

from ..config.numeric import MODEL_LIMIT, number
from ..config.show import shown
from ..errors import ConfigError


@dataclass(frozen=True)
class CarbonIntensity:
    """Grams of CO2 per kWh over time."""

    times_s: tuple[float, ...]
    g_per_kwh: tuple[float, ...]
    source: str

    @classmethod
    def constant(cls, value: float) -> CarbonIntensity:
        return cls((0.0,), (number(value, "carbon.intensity_g_per_kwh", minimum=0.0, maximum=MODEL_LIMIT),),
                   "constant")

    @classmethod
    def from_csv(cls, path: str | Path) -> CarbonIntensity:
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read carbon trace: {exc.strerror or exc}", path=p) from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"carbon trace is not UTF-8 text (byte {exc.start})", path=p) from None
        try:
            rows = list(csv.reader(line for line in text.splitlines() if line.strip() and not line.startswith("#")))
        except csv.Error as exc:
            raise ConfigError(f"malformed CSV: {exc}", path=p) from None
        if not rows or [c.strip() for c in rows[0]] != ["time_s", "g_per_kwh"]:
            raise ConfigError("carbon trace needs the header 'time_s,g_per_kwh'", path=p, where="line 1")
        times: list[float] = []
        values: list[float] = []
        for n, row in enumerate(rows[1:], start=2):
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
        return cls(tuple(times), tuple(values), str(p))

    def at(self, t_s: float) -> float:
        i = bisect.bisect_right(self.times_s, t_s) - 1
        return self.g_per_kwh[max(i, 0)]
