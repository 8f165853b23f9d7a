"""The simulator's records: per-second columns and the sums over a run of seconds."""

from __future__ import annotations

from array import array
from dataclasses import dataclass, field
from typing import Sequence

from .model import ActiveModel


SECOND_COLUMNS = ("arrivals", "served", "dropped", "late", "queued", "latency_sum_s", "latency_max_s")
"""Columns recorded every second; the rest (capacity, cores, power, accuracy) follow
from ``config_index`` and the :class:`ActiveModel` of that configuration."""


class SecondSeries:
    """Per-second records as compact columns (``array('d')``) starting at ``start_s``."""

    def __init__(self, stages: Sequence[str], start_s: int = 0) -> None:
        self.stages = tuple(stages)
        self.start_s = start_s
        self.cols: dict[str, array] = {c: array("d") for c in SECOND_COLUMNS}
        self.config_index = array("l")
        self.models: list[ActiveModel] = []
        """The models by config index (shared with the simulator)."""
        self.route_served: dict[int, tuple[float, ...]] = {}
        """Per second of a configuration with several routes: the requests each route served."""

    def __len__(self) -> int:
        return len(self.config_index)

    def stage_energy_j(self, i: int, stage: int) -> float:
        """Energy of a stage in second ``i``: idle watts plus served requests x J/request (per route)."""
        m = self.models[self.config_index[i]]
        by_route = self.route_served.get(i)
        if by_route is not None:
            return m.idle_w[stage] + sum(x * r.energy_j_per_request[stage] for r, x in zip(m.routes, by_route))
        return m.idle_w[stage] + self.cols["served"][i] * m.energy_j_per_request[stage]

    def energy_j(self, i: int) -> float:
        """Energy of all stages in second ``i``."""
        if i in self.route_served:
            return sum(self.stage_energy_j(i, k) for k in range(len(self.stages)))
        m = self.models[self.config_index[i]]
        served = self.cols["served"][i]
        return sum(m.idle_w[k] + served * m.energy_j_per_request[k] for k in range(len(self.stages)))


@dataclass
class Totals:
    """Sums over simulated seconds."""

    stage_energy_j: list[float]
    stage_busy_cpu_s: list[float]
    stage_core_s: list[float]
    arrivals: float = 0.0
    served: float = 0.0
    dropped: float = 0.0
    late: float = 0.0
    lat_sum: float = 0.0
    lat_max: float = 0.0
    acc_pct_sum: float = 0.0
    acc_sum: float = 0.0
    seconds_by_config: dict[int, int] = field(default_factory=dict)
