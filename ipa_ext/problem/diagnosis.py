"""Why no configuration is feasible at a rate: the binding constraint, in one line.

:func:`explain_infeasible` is :class:`~ipa_ext.problem.Problem`'s method of the same name.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from ..model import Configuration
from .options import queue_delay_s, replicas_needed
from .settings import within

if TYPE_CHECKING:  # pragma: no cover
    from .problem import Problem


def explain_infeasible(problem: Problem, rate_rps: float, current: Configuration | None = None) -> str:
    """The binding reason no configuration is feasible (best effort, one line)."""
    s = problem.settings
    current = problem.resolve_current(current)
    capacity = _capacity_reason(problem, rate_rps, current)
    if capacity:
        return capacity
    per_stage = problem.options(rate_rps, current)
    min_lat = sum(min(o.latency_s for o in opts) if opts else math.inf for opts in per_stage)
    if any(not opts for opts in per_stage) or not within(min_lat, problem.sla_s):
        return (
            f"SLA {problem.sla_s:.4g} s cannot be met at rate {rate_rps:g} rps: the fastest "
            f"end-to-end latency is {_fastest_latency_s(problem, rate_rps, current):.4g} s"
        )
    if s.power_cap_w is not None:
        return f"no configuration meeting the SLA stays under power_cap_w {s.power_cap_w:g} W"
    return "no configuration satisfies the constraints"


def _capacity_reason(problem: Problem, rate_rps: float, current: Configuration | None) -> str | None:
    """A stage with no choice, or none that sustains the rate within its replica limit."""
    s = problem.settings
    for i, stage in enumerate(problem.pipeline.stages):
        cur = current[i] if current else None
        choices = problem.stage_choices(i, cur)
        if not choices:
            return f"stage {stage.name!r} has no (variant, cpu, batch) choice under the settings"
        best_thr = max(stage.profiles[c].throughput_rps for c in choices)
        if s.baseline_mode == "switch":
            assert cur is not None
            cap = cur.replicas * best_thr
            if cap < rate_rps:
                return (
                    f"rate {rate_rps:g} rps exceeds the capacity of every variant of stage "
                    f"{stage.name!r} at the pinned {cur.replicas} replicas ({cap:.4g} rps)"
                )
        elif s.scaling_cap * best_thr < rate_rps:
            return (
                f"rate {rate_rps:g} rps exceeds the capacity of every variant of stage "
                f"{stage.name!r} at scaling_cap {s.scaling_cap} ({s.scaling_cap * best_thr:.4g} rps)"
            )
    return None


def _fastest_latency_s(problem: Problem, rate_rps: float, current: Configuration | None) -> float:
    """The smallest end-to-end latency of choices that sustain the rate, SLA aside."""
    s = problem.settings
    fastest = 0.0
    for i, stage in enumerate(problem.pipeline.stages):
        cur = current[i] if current else None
        lats = []
        for v, c, b in problem.stage_choices(i, cur):
            prof = stage.profiles[(v, c, b)]
            n = cur.replicas if s.baseline_mode == "switch" and cur else replicas_needed(rate_rps, prof.throughput_rps)
            if n <= s.scaling_cap and n * prof.throughput_rps >= rate_rps:
                lats.append(prof.latency_s + queue_delay_s(b, rate_rps))
        fastest += min(lats) if lats else math.inf
    return fastest
