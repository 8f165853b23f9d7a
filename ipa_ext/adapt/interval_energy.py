"""Energy of one adaptation interval: the value, the meter seam, its log entry and run totals."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Protocol, Sequence

from ..backends import IntervalOutcome
from ..problem.carbon import CarbonIntensity
from ..units import grams_co2
from .results import RunResult


@dataclass(frozen=True)
class IntervalEnergy:
    """Energy of one interval, per stage and in total, and where the figure came from."""

    total_j: float
    by_stage_j: Mapping[str, float]
    quality: str
    """``measured`` or ``estimated``."""
    source: str
    idle_j: float | None = None
    unattributed_j: float | None = None

    def as_dict(self) -> dict[str, Any]:
        """The log's energy fields (idle and unattributed parts only when known)."""
        d: dict[str, Any] = {
            "total_j": self.total_j,
            "stages_j": dict(self.by_stage_j),
            "quality": self.quality,
            "source": self.source,
        }
        if self.idle_j is not None:
            d["idle_j"] = self.idle_j
        if self.unattributed_j is not None:
            d["unattributed_j"] = self.unattributed_j
        return d


class IntervalMeter(Protocol):
    """Measures the energy of one adaptation interval on a live backend.

    The energy meter (energy sources, attribution to stages by CPU-time share)
    plugs in here: ``begin_interval`` before the interval, ``end_interval``
    after it with the backend's outcome (whose ``busy_cpu_s_by_stage`` drives
    the attribution).
    """

    def begin_interval(self, key: str) -> None:
        """Open the window of interval ``key`` (the step begins)."""

    def end_interval(self, key: str, outcome: IntervalOutcome) -> IntervalEnergy:
        """Close the window of interval ``key``; its energy, attributed to stages by ``outcome``."""


def modelled_energy(outcome: IntervalOutcome) -> IntervalEnergy | None:
    """The backend's own energy figure for an interval (None when it has none)."""
    if outcome.energy_j_by_stage is None:
        return None
    return IntervalEnergy(
        total_j=float(sum(outcome.energy_j_by_stage.values())),
        by_stage_j=dict(outcome.energy_j_by_stage),
        quality=outcome.energy_quality or "estimated",
        source=outcome.energy_source or "backend",
    )


def interval_carbon_g(carbon: CarbonIntensity, outcome: IntervalOutcome, energy: IntervalEnergy) -> float:
    """Grams of CO2 of an interval's energy; a changing intensity is weighted by time in the interval."""
    if len(carbon.times_s) < 2:
        return grams_co2(energy.total_j, carbon.at(outcome.start_s))
    # intensity may change inside the interval: weight by time (energy spread evenly)
    dur = outcome.end_s - outcome.start_s
    if dur <= 0:
        return 0.0
    edges = [outcome.start_s] + [t for t in carbon.times_s if outcome.start_s < t < outcome.end_s] + [outcome.end_s]
    g = sum(carbon.at(a) * (b - a) for a, b in zip(edges, edges[1:])) / dur
    return grams_co2(energy.total_j, g)


def energy_record(energy: IntervalEnergy, outcome: IntervalOutcome) -> dict[str, Any]:
    """The log line's ``energy`` entry: the figures, mean power and joules per request."""
    e = energy.as_dict()
    e["power_w"] = energy.total_j / outcome.duration_s if outcome.duration_s > 0 else None
    # per request: over the served requests, or the arrivals where a live
    # backend does not observe completions
    basis, requests = "served", outcome.served
    if not math.isfinite(requests):
        basis, requests = "arrivals", outcome.arrivals
    ok = math.isfinite(requests) and requests > 0
    e["j_per_request"] = energy.total_j / requests if ok else None
    e["stages_j_per_request"] = {n: (float(j) / requests if ok else None) for n, j in energy.by_stage_j.items()}
    e["requests_basis"] = basis
    return e


class EnergyTotals:
    """Sums a run's interval energy and carbon; one interval without energy voids the totals."""

    def __init__(self, stage_names: Sequence[str], *, carbon: bool) -> None:
        self.stages_j = {n: 0.0 for n in stage_names}
        self.total_j = 0.0
        self.complete = True
        self.carbon_g: float | None = 0.0 if carbon else None

    def add(self, energy: IntervalEnergy | None, result: RunResult) -> None:
        """Count one interval's energy (None: the interval had no figure)."""
        if energy is None:
            self.complete = False
            return
        for n in self.stages_j:
            self.stages_j[n] += float(energy.by_stage_j.get(n, 0.0))
        self.total_j += energy.total_j
        if energy.idle_j is not None:
            result.idle_j = (result.idle_j or 0.0) + energy.idle_j
        if energy.unattributed_j is not None:
            result.unattributed_j = (result.unattributed_j or 0.0) + energy.unattributed_j
        result.energy_quality = merge_label(result.energy_quality, energy.quality)
        result.energy_source = merge_label(result.energy_source, energy.source)

    def add_carbon(self, grams: float) -> None:
        """Count one interval's carbon."""
        if self.carbon_g is not None:
            self.carbon_g += grams

    def finish(self, result: RunResult) -> None:
        """Write the totals into the run's result."""
        result.stage_energy_j = self.stages_j
        result.outcomes_energy_j = self.total_j if self.complete else None
        result.carbon_g = self.carbon_g if self.complete else None


def merge_label(old: str | None, new: str) -> str:
    """Join quality or source labels with ``+``, each once."""
    if old is None or old == new:
        return new
    parts = old.split("+")
    return old if new in parts else old + "+" + new
