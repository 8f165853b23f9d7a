"""The adaptation loop's settings and what a run returns: per-step facts and run totals."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..backends import IntervalOutcome


@dataclass(frozen=True)
class AdapterSettings:
    """Loop settings (config section ``adaptation``; monitoring from ``predictor``)."""

    interval_s: float = 10.0
    monitoring_duration_s: float = 120.0
    memoize: bool = True
    num_candidates: int | None = None
    """k; defaults to the problem's ``num_state_limit``."""

    def __post_init__(self) -> None:
        if not (self.interval_s >= 1 and math.isfinite(self.interval_s)):
            raise ValueError(f"interval_s must be >= 1, got {self.interval_s!r}")
        if not (self.monitoring_duration_s >= 1 and math.isfinite(self.monitoring_duration_s)):
            raise ValueError(f"monitoring_duration_s must be >= 1, got {self.monitoring_duration_s!r}")
        if self.num_candidates is not None and self.num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {self.num_candidates!r}")


@dataclass
class StepSummary:
    """The few facts of a step a run summary needs."""

    start_s: float
    end_s: float
    predicted_rps: float | None
    decision_time_s: float | None
    memo_hit: bool
    feasible: bool | None
    changed: bool


@dataclass
class RunResult:
    """What :meth:`~ipa_ext.adapt.adapter.Adapter.run` returns besides the log."""

    steps: list[StepSummary] = field(default_factory=list)
    outcomes_energy_j: float | None = 0.0
    energy_quality: str | None = None
    energy_source: str | None = None
    stage_energy_j: dict[str, float] = field(default_factory=dict)
    idle_j: float | None = None
    """Measured energy attributed to idle (None for modelled energy)."""
    unattributed_j: float | None = None
    carbon_g: float | None = None
    optimizer_calls: int = 0
    memo_hits: int = 0
    infeasible: int = 0
    first_infeasible_reason: str | None = None
    faults: int = 0
    """Transient faults the loop rode out (at start and in steps)."""
    interrupted: str | None = None
    """The signal that stopped the run early, if one did."""
    wall_s: float = 0.0
    seconds: float = 0.0
    arrivals: float = 0.0
    served: float = 0.0
    dropped: float = 0.0
    late: float = 0.0
    queued_end: float = 0.0
    core_s: float = 0.0
    accuracy_pct_sum: float = 0.0
    accuracy_sum: float = 0.0
    latency_sum_s: float = 0.0
    latency_max_s: float | None = None

    def add(self, o: IntervalOutcome) -> None:
        """Accumulate one interval's outcome."""
        self.seconds += o.duration_s
        self.arrivals += o.arrivals
        self.served += o.served
        self.dropped += o.dropped
        self.late += o.late
        self.queued_end = o.queued
        self.core_s += sum(o.reserved_core_s_by_stage.values())
        if o.served > 0:
            if o.accuracy_pct is not None:
                self.accuracy_pct_sum += o.accuracy_pct * o.served
            if o.accuracy is not None:
                self.accuracy_sum += o.accuracy * o.served
            if o.latency_mean_s is not None:
                self.latency_sum_s += o.latency_mean_s * o.served
        if o.latency_max_s is not None:
            self.latency_max_s = max(self.latency_max_s or 0.0, o.latency_max_s)
