"""The exhaustive reference optimizer (``brute-force``).

For the predicted rate λ it enumerates every combination of per-stage
(variant, cpu, batch) choices, each with ``max(1, ceil(λ/throughput))``
replicas (capped by ``scaling_cap``; pinned under ``baseline_mode: switch``),
keeps the ones within the SLA and the optional power cap, and returns the k
best by objective. Ties are broken by enumeration order, so results are
deterministic. Tests use it as the ground truth for every other optimizer.
"""

from __future__ import annotations

import heapq
import itertools
import math
from typing import Any

from ipa_ext import hookimpl
from ipa_ext.config.numeric import option
from ipa_ext.errors import ConfigError
from ipa_ext.model import Configuration
from ipa_ext.optimizers import Optimizer
from ipa_ext.problem.problem import Evaluation, Problem, within


class BruteForceOptimizer(Optimizer):
    name = "brute-force"
    deterministic = True

    def __init__(self, max_combinations: int = 5_000_000) -> None:
        self.max_combinations = option("max_combinations", max_combinations, integer=True, minimum=1)

    def solve(
        self, problem: Problem, rate_rps: float, current: Configuration | None, k: int
    ) -> tuple[list[Evaluation], dict[str, Any]]:
        per_stage = problem.options(rate_rps, current)
        total = math.prod(len(o) for o in per_stage)
        if total > self.max_combinations:
            raise ConfigError(
                f"brute-force would enumerate {total} combinations (max_combinations "
                f"{self.max_combinations}); use the ilp optimizer",
                where="optimizer.options.max_combinations",
            )
        objectives = problem.active_objectives
        # stage values per objective, per stage, per option
        values = [
            [[obj.stage_value(problem, o, rate_rps) for o in opts] for opts in per_stage]
            for obj in objectives
        ]
        scale = [obj.sense * problem.settings.weight(obj.weight) for obj in objectives]
        latencies = [[o.latency_s for o in opts] for opts in per_stage]
        cap = problem.settings.power_cap_w
        powers = None
        if cap is not None and problem.pipeline.has_power:
            powers = [[o.profile.power_at(rate_rps, o.replicas) for o in opts] for opts in per_stage]
        sla = problem.sla_s
        heap: list[tuple[float, int, tuple[int, ...]]] = []
        counter = 0
        feasible = 0
        ranges = [range(len(o)) for o in per_stage]
        for idx in itertools.product(*ranges):
            lat = sum(latencies[s][i] for s, i in enumerate(idx))
            if not within(lat, sla):
                continue
            if powers is not None and not within(sum(powers[s][i] for s, i in enumerate(idx)), cap):  # type: ignore[arg-type]
                continue
            feasible += 1
            obj = 0.0
            for j, objective in enumerate(objectives):
                obj += scale[j] * objective.combine(
                    problem, [values[j][s][i] for s, i in enumerate(idx)]
                )
            counter += 1
            # min-heap of the k best; ties keep the earlier combination
            key = (obj, -counter, idx)
            if len(heap) < k:
                heapq.heappush(heap, key)
            elif key > heap[0]:
                heapq.heapreplace(heap, key)
        best = sorted(heap, reverse=True)
        out = [
            problem.evaluate_options([per_stage[s][i] for s, i in enumerate(idx)], rate_rps)
            for _, _, idx in best
        ]
        return out, {"combinations": total, "feasible": feasible}


@hookimpl
def register_optimizers(register) -> None:
    register("brute-force", BruteForceOptimizer)
