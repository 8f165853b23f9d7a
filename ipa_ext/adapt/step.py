"""One adaptation step's state (what was observed, decided and applied) and its log line."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..backends import IntervalOutcome
from ..model import Configuration
from ..optimizers import Decision
from ..problem.problem import Evaluation
from .forecast import Forecast, Forecaster
from .results import StepSummary


@dataclass
class Step:
    """What one step saw and did, filled in as it goes: observe, decide, apply."""

    index: int
    time_s: float
    current: Configuration | None
    """The configuration running when the step began (the last known one until read)."""
    config: Configuration | None
    """The configuration the step leaves in place (applied or kept)."""
    success: tuple[bool, ...]
    history: Sequence[float] = ()
    forecast: Forecast | None = None
    decision: Decision | None = None
    memo_hit: bool = False
    chosen_rank: int | None = None
    evaluation: Evaluation | None = None
    n_changes: int = 0
    fault: dict[str, Any] | None = None

    @property
    def key(self) -> str:
        """The energy meter's window key."""
        return f"step-{self.index}"

    @property
    def changed(self) -> bool:
        """Whether the step changed the configuration (or tried to)."""
        return self.n_changes > 0 or (self.evaluation is not None and self.config != self.current)

    def summary(self, outcome: IntervalOutcome) -> StepSummary:
        """The facts of this step a run summary needs."""
        return StepSummary(
            outcome.start_s,
            outcome.end_s,
            self.forecast.rate_rps if self.forecast is not None else None,
            self.decision.decision_time_s if self.decision is not None else None,
            self.memo_hit,
            self.decision.feasible if self.decision is not None else None,
            self.changed,
        )


def decision_record(step: Step, forecaster: Forecaster, monitoring_duration_s: float) -> dict[str, Any]:
    """The head of a step's log line: step, time, what was monitored and predicted, the decision."""
    record: dict[str, Any] = {"step": step.index, "time_s": step.time_s}
    forecast, history, decision = step.forecast, step.history, step.decision
    if forecast is not None:
        record["monitored"] = {
            "window_s": monitoring_duration_s,
            "seconds": len(history),
            "buckets_rps": list(forecast.buckets_rps),
            "last_rps": float(history[-1]) if len(history) else None,
        }
        record["predicted_rps"] = forecast.rate_rps
        record["prediction"] = {
            "predictor": forecast.predictor,
            "backup": forecast.backup,
            "raw_rps": forecast.raw_rps,
            "margin_pct": forecaster.margin_pct,
        }
    if decision is not None:
        d: dict[str, Any] = {
            "kind": "optimizer",
            "optimizer": decision.optimizer,
            "feasible": decision.feasible,
            "reason": decision.reason,
            "decision_time_s": decision.decision_time_s,
            "memoised": step.memo_hit,
            "candidates": len(decision.candidates),
            "chosen_rank": step.chosen_rank,
            "changes": step.n_changes,
            "config_changed": step.fault is None and step.evaluation is not None and step.config != step.current,
        }
        if decision.info:
            d["info"] = dict(decision.info)
        record["decision"] = d
    elif step.fault is not None:
        record["decision"] = {"kind": "fault"}
    else:
        record["decision"] = {"kind": "initial"}
    if step.fault is not None:
        record["fault"] = step.fault
    return record


def configuration_record(step: Step, stage_names: Sequence[str]) -> dict[str, Any]:
    """The log line's configuration, change success and objective entries."""
    config = step.config
    record: dict[str, Any] = {
        "config": {n: sc.as_dict() for n, sc in zip(stage_names, config)} if config is not None else None,
        "change_successful": list(step.success),
    }
    ev = step.evaluation
    if ev is not None:
        record["objective"] = {
            "value": ev.objective,
            "terms": dict(ev.terms),
            "weighted": dict(ev.weighted),
            "latency_s": ev.latency_s,
            "sla_s": ev.sla_s,
            "violations": list(ev.violations),
        }
    return record


def interval_record(outcome: IntervalOutcome) -> dict[str, Any]:
    """The log line's ``interval`` entry: the interval's requests, latency and cores."""
    return {
        "start_s": outcome.start_s,
        "end_s": outcome.end_s,
        "arrivals": outcome.arrivals,
        "served": outcome.served,
        "dropped": outcome.dropped,
        "late": outcome.late,
        "queued": outcome.queued,
        "slo_violation_pct": _pct(outcome.slo_violations, outcome.arrivals),
        "latency_mean_s": outcome.latency_mean_s,
        "latency_max_s": outcome.latency_max_s,
        "cores": (sum(outcome.reserved_core_s_by_stage.values()) / outcome.duration_s
                  if outcome.duration_s > 0 else None),
    }


def _pct(part: float, whole: float) -> float | None:
    """``100 * part / whole``; 0 with no requests, None when the requests were not observed (NaN)."""
    if not math.isfinite(whole):
        return None
    return 100.0 * part / whole if whole > 0 else 0.0
