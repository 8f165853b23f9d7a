"""Per-second records of real requests (the local backend's ``seconds.csv``): arrivals by the second a request
arrived; served, dropped, failed, late and latency by the second it finished; the configuration in force."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from .router import Done
from .stage import layout


@dataclass
class _Second:
    served: int = 0
    dropped: int = 0
    failed: int = 0
    late: int = 0
    latencies_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Config:
    start_s: float
    stages: tuple[tuple[str, float, int, int], ...]
    """(variant, cpu, batch, replicas) per stage."""
    cores: float
    accuracy_pct: float | None


class RequestSeconds:
    """Collects finished requests and configuration changes; :meth:`write_csv` writes one row per second."""

    def __init__(self, stages: Sequence[str], sla_s: float) -> None:
        self.stages = tuple(stages)
        self.sla_s = sla_s
        self._seconds: dict[int, _Second] = {}
        self._configs: list[_Config] = []
        self.arrivals: list[int] = []
        self.end_s = 0.0

    def record(self, done: Iterable[Done]) -> None:
        """Count finished requests in the second each finished."""
        for d in done:
            sec = self._seconds.setdefault(int(d.finished_s), _Second())
            if d.status == "served":
                sec.served += 1
                sec.latencies_s.append(d.latency_s)
                sec.late += d.latency_s > self.sla_s
            elif d.status == "dropped":
                sec.dropped += 1
            else:
                sec.failed += 1

    def configure(self, start_s: float, config: Sequence[Any], accuracy_pct: float | None) -> None:
        """The configuration in force from ``start_s``: its columns name each stage's main variant (a mix's
        largest part, an ensemble's first member); ``cores`` counts every part's and member's replicas."""
        stages = tuple((sc.variant, float(sc.cpu), int(sc.batch), int(sc.replicas)) for sc in config)
        cores = sum(p.cores * p.replicas for sc in config for p in layout(sc)[1])
        self._configs.append(_Config(start_s, stages, float(cores), accuracy_pct))

    def finish(self, arrivals: Sequence[int], end_s: float) -> None:
        """The router's arrivals per second and the run's end (seconds since the load started)."""
        self.arrivals = list(arrivals)
        self.end_s = max(self.end_s, end_s)

    def __len__(self) -> int:
        last = max([len(self.arrivals), *(s + 1 for s in self._seconds)], default=0)
        return max(last, int(math.ceil(self.end_s)))

    def _config_at(self, t_s: float) -> _Config | None:
        found = None
        for c in self._configs:
            if c.start_s <= t_s:
                found = c
        return found

    def header(self) -> list[str]:
        head = ["time_s", "arrivals", "served", "dropped", "failed", "late", "predicted_rps", "cores",
                "accuracy_pct", "latency_mean_s", "latency_p50_s", "latency_max_s"]
        for s in self.stages:
            head += [f"{s}_variant", f"{s}_cpu", f"{s}_batch", f"{s}_replicas"]
        return head

    def rows(self, predicted_rps: Sequence[float | None] = ()) -> list[list[str]]:
        """One row per second; ``dropped`` counts failed requests too (as the adaptation log does)."""
        g = "%.6g"
        out = []
        for i in range(len(self)):
            sec = self._seconds.get(i, _Second())
            lat = sec.latencies_s
            cfg = self._config_at(i)
            pred = predicted_rps[i] if i < len(predicted_rps) else None
            row = [str(i), str(self.arrivals[i] if i < len(self.arrivals) else 0), str(sec.served),
                   str(sec.dropped + sec.failed), str(sec.failed), str(sec.late), "" if pred is None else g % pred,
                   "" if cfg is None else g % cfg.cores,
                   "" if cfg is None or cfg.accuracy_pct is None or not sec.served else g % cfg.accuracy_pct,
                   g % float(np.mean(lat)) if lat else "", g % float(np.median(lat)) if lat else "",
                   g % max(lat) if lat else ""]
            for k in range(len(self.stages)):
                row += [str(x) if not isinstance(x, float) else g % x for x in cfg.stages[k]] if cfg else [""] * 4
            out.append(row)
        return out

    def write_csv(self, path: Path, predicted_rps: Sequence[float | None] = ()) -> int:
        """Write the table; the number of rows."""
        rows = self.rows(predicted_rps)
        with open(path, "w", encoding="utf-8", newline="") as f:
            f.write(",".join(self.header()) + "\n")
            f.writelines(",".join(r) + "\n" for r in rows)
        return len(rows)
