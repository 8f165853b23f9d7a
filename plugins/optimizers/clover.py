"""The ``clover`` policy: carbon-aware mixed-quality serving (Clover, Li et al., SC'23), on CPUs.

Every decision, at the carbon intensity now (the config's ``carbon`` constant or trace, or
the option ``carbon_intensity_g_per_kwh``), it chooses per stage a mix of variants and their
sizing that minimises carbon, grams of CO2 per second = watts x intensity / 3.6e6 (at a
fixed rate, the same choice as grams per request), under the SLA, an accuracy floor and
a core budget (``max_cores``, the fixed hardware Clover partitions). Two exact solves of
the core mixing model (:mod:`ipa_ext.optimize.mixing`), both within the budget: first the
highest accuracy any mix reaches at this rate, then the least carbon with accuracy at
least that minus ``accuracy_drop`` points (or an absolute ``accuracy_floor``). Clover's
MIG slices, simulated annealing and lambda-weighted objective, and why this differs:
docs/optimizers.md, "clover".
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ipa_ext import hookimpl
from ipa_ext.config.numeric import option
from ipa_ext.errors import ConfigError
from ipa_ext.model import Configuration
from ipa_ext.optimize.mixing import MixSpec, evaluate_mix, mix_cores, mix_of, solve_mix
from ipa_ext.optimizers import Optimizer
from ipa_ext.problem import Evaluation, Problem
from ipa_ext.units import JOULES_PER_KWH

DEFAULT_DROP = 1.0
"""Points (the accuracy term x 100) the floor lies below the most accurate mix by default."""
DEFAULT_MAX_CORES = 32.0
"""Cores the mixes may reserve by default (one 32-core server; docs/optimizers.md, "clover")."""


class CloverPolicy(Optimizer):
    name = "clover"
    deterministic = True

    def __init__(
        self,
        accuracy_drop: float | None = None,
        accuracy_floor: float | None = None,
        reference_g_per_kwh: float | None = None,
        carbon_intensity_g_per_kwh: float | None = None,
        max_cores: float = DEFAULT_MAX_CORES,
        max_variants: int = 2,
        allow_batching: bool = False,
        solver: str = "auto",
        time_limit_s: float = 30.0,
    ) -> None:
        self.spec = MixSpec.from_options(max_variants, allow_batching, max_cores, solver, time_limit_s)
        self.accuracy_drop = None if accuracy_drop is None else float(option("accuracy_drop", accuracy_drop, minimum=0))
        self.accuracy_floor = None if accuracy_floor is None else float(option("accuracy_floor", accuracy_floor))
        if self.accuracy_drop is None and self.accuracy_floor is None:
            self.accuracy_drop = DEFAULT_DROP
        self.reference_g_per_kwh = (None if reference_g_per_kwh is None
                                    else float(option("reference_g_per_kwh", reference_g_per_kwh, positive=True)))
        if self.reference_g_per_kwh is not None and self.accuracy_drop is None:
            raise ValueError("reference_g_per_kwh scales accuracy_drop; set accuracy_drop too")
        self.carbon_intensity_g_per_kwh = (
            None if carbon_intensity_g_per_kwh is None
            else float(option("carbon_intensity_g_per_kwh", carbon_intensity_g_per_kwh, minimum=0)))

    def _intensity(self, problem: Problem) -> float:
        ci = self.carbon_intensity_g_per_kwh
        if ci is None:
            ci = problem.settings.carbon_intensity_g_per_kwh
        if ci is None:
            raise ConfigError("clover minimises carbon, so it needs a carbon intensity: carbon.intensity_g_per_kwh, "
                              "carbon.trace, or clover:carbon_intensity_g_per_kwh=G", where="carbon")
        if not problem.pipeline.has_power:
            raise ConfigError("clover minimises carbon = power x intensity, so every profile row needs power_w "
                              "or energy_j_per_request", where="profiles")
        return ci

    def _weighted(self, problem: Problem, weights: dict[str, float], ci: float) -> Problem:
        zero = {o.weight: 0.0 for o in problem.objectives}
        settings = dataclasses.replace(problem.settings, weights={**zero, **weights}, carbon_intensity_g_per_kwh=ci)
        return Problem(problem.pipeline, settings, problem.objectives)

    def floor(self, best_accuracy: float, ci: float) -> float:
        """The accuracy floor at intensity ``ci``: the higher of the absolute floor and the best
        accuracy minus the drop (scaled by ``ci / reference_g_per_kwh`` when a reference is set)."""
        floors = []
        if self.accuracy_drop is not None:
            drop = self.accuracy_drop * (ci / self.reference_g_per_kwh if self.reference_g_per_kwh else 1.0)
            floors.append(best_accuracy - drop / 100.0)
        if self.accuracy_floor is not None:
            floors.append(self.accuracy_floor)
        return max(floors)

    def solve(
        self, problem: Problem, rate_rps: float, current: Configuration | None, k: int
    ) -> tuple[list[Evaluation], dict[str, Any]]:
        ci = self._intensity(problem)
        spec = self.spec
        top, info1 = solve_mix(self._weighted(problem, {"alpha": 1.0}, ci), rate_rps, spec, 1, current)
        if not top:
            return [], {"intensity_g_per_kwh": ci, "max_cores": self.spec.max_cores, **info1}
        best = top[0].terms["accuracy"]
        floor = self.floor(best, ci)
        spec = dataclasses.replace(spec, accuracy_floor=floor)
        # carbon first; 1e-9 per core breaks ties among mixes of equal carbon
        found, info2 = solve_mix(self._weighted(problem, {"epsilon": 1.0, "beta": 1e-9}, ci), rate_rps, spec, k, current)
        info = {"intensity_g_per_kwh": ci, "best_accuracy": best, "accuracy_floor": floor,
                "max_cores": self.spec.max_cores, "solves": info1.get("solves", 0) + info2.get("solves", 0),
                "method": info2.get("method")}
        if not found:
            info["reason"] = (f"no mix reaches accuracy floor {floor:.4g} within the SLA"
                              + (", power cap" if problem.settings.power_cap_w is not None else "")
                              + f" and max_cores {self.spec.max_cores:g}")
            return [], info
        rescored = [self._rescore(problem, ev, ci) for ev in found]
        if rescored:
            info["cores"] = mix_cores(mix_of(rescored[0], rate_rps))
            watts = rescored[0].terms.get("power") or 0.0
            info["carbon_g_per_s"] = watts * ci / JOULES_PER_KWH
            info["carbon_g_per_request"] = info["carbon_g_per_s"] / max(rate_rps, 1e-6)
        return rescored, info

    def _rescore(self, problem: Problem, ev: Evaluation, ci: float) -> Evaluation:
        """The chosen mix scored with the config's own weights (as every policy reports)."""
        rate = ev.rate_rps
        stages = mix_of(ev, rate)
        p = problem
        if problem.settings.carbon_intensity_g_per_kwh != ci:
            p = Problem(problem.pipeline, dataclasses.replace(problem.settings, carbon_intensity_g_per_kwh=ci),
                        problem.objectives)
        return evaluate_mix(p, stages, rate)


@hookimpl
def register_optimizers(register) -> None:
    register("clover", CloverPolicy)
