"""A greedy local-search optimizer for ipa-ext (example plugin).

Start: per stage, the option with the lowest latency. Without a power cap, if
that is infeasible nothing is (latency is additive and every other constraint
is per option), so it returns no candidates; with a power cap it may miss a
feasible configuration. Then hill-climb:
among all single-stage option changes that keep the configuration feasible,
take the one that raises the objective most; stop when none does.
"""

from __future__ import annotations

from typing import Any

from ipa_ext import hookimpl
from ipa_ext.model import Configuration
from ipa_ext.optimizers import Optimizer
from ipa_ext.problem import Evaluation, Problem

__version__ = "0.1.0"


class GreedyOptimizer(Optimizer):
    name = "greedy"

    def __init__(self, max_steps: int = 1000) -> None:
        if max_steps < 0:
            raise ValueError("max_steps must be >= 0")
        self.max_steps = int(max_steps)

    def solve(self, problem: Problem, rate_rps: float, current: Configuration | None,
              k: int) -> tuple[list[Evaluation], dict[str, Any]]:
        per_stage = problem.options(rate_rps, current)
        if any(not opts for opts in per_stage):
            return [], {"steps": 0}
        choice = [min(opts, key=lambda o: o.latency_s) for opts in per_stage]
        best = problem.evaluate_options(choice, rate_rps)
        if not best.feasible:
            return [], {"steps": 0}
        seen = {best.config: best}
        steps = 0
        while steps < self.max_steps:
            improved: Evaluation | None = None
            for s, opts in enumerate(per_stage):
                for o in opts:
                    if o == choice[s]:
                        continue
                    trial = list(choice)
                    trial[s] = o
                    ev = problem.evaluate_options(trial, rate_rps)
                    if ev.feasible:
                        seen.setdefault(ev.config, ev)
                        if ev.objective > (improved or best).objective:
                            improved = ev
            if improved is None:
                break
            best = improved
            choice = list(best.options)
            steps += 1
        ranked = sorted(seen.values(), key=lambda e: -e.objective)[:k]
        return ranked, {"steps": steps}


@hookimpl
def register_optimizers(register: Any) -> None:
    register("greedy", GreedyOptimizer)
