"""Built-in objective terms: accuracy (alpha), cost (beta), batch (gamma), power (delta; its
former name ``energy`` is an alias) and carbon (epsilon); the table is in docs/optimizers.md."""

from __future__ import annotations

import math
from typing import Sequence

from ipa_ext import hookimpl
from ipa_ext.objectives import Objective
from ipa_ext.problem import Option, Problem
from ipa_ext.units import JOULES_PER_KWH


class AccuracyObjective(Objective):
    """IPA's accuracy: normalised or raw (percent/100) per stage; sum, average or product."""

    name = "accuracy"
    weight = "alpha"
    sense = +1
    unit = ""

    def stage_value(self, problem: Problem, option: Option, rate_rps: float) -> float:
        return option.accuracy

    def combine(self, problem: Problem, values: Sequence[float]) -> float:
        method = problem.settings.accuracy_method
        if method == "multiply":
            return float(math.prod(values))
        if method == "average":
            return float(sum(values)) / len(values)
        return float(sum(values))

    def is_additive(self, problem: Problem) -> bool:
        return problem.settings.accuracy_method != "multiply"

    def is_product(self, problem: Problem) -> bool:
        return problem.settings.accuracy_method == "multiply"

    def coefficient(self, problem: Problem, option: Option, rate_rps: float) -> float:
        if problem.settings.accuracy_method == "average":
            return option.accuracy / len(problem.pipeline.stages)
        return option.accuracy


class CostObjective(Objective):
    """CPU cores: cpu per replica x replicas."""

    name = "cost"
    weight = "beta"
    sense = -1
    unit = "cores"

    def stage_value(self, problem: Problem, option: Option, rate_rps: float) -> float:
        return option.cores


class BatchObjective(Objective):
    """The batch size."""

    name = "batch"
    weight = "gamma"
    sense = -1
    unit = "requests"

    def stage_value(self, problem: Problem, option: Option, rate_rps: float) -> float:
        return float(option.batch)


class PowerObjective(Objective):
    """Power in watts at the rate: ``replicas*idle_w + rate*energy_j_per_request``."""

    name = "power"
    aliases = ("energy",)
    weight = "delta"
    sense = -1
    unit = "W"

    def stage_value(self, problem: Problem, option: Option, rate_rps: float) -> float:
        return option.profile.power_at(rate_rps, option.replicas)

    def unavailable_reason(self, problem: Problem) -> str | None:
        missing = [
            p.key
            for s in problem.pipeline.stages
            for p in s.profiles.values()
            if not p.has_power
        ]
        if missing:
            st, v, c, b = missing[0]
            return (
                f"{len(missing)} profile row(s) lack power_w or energy_j_per_request, "
                f"e.g. ({st}, {v}, cpu {c:g}, batch {b})"
            )
        return None


EnergyObjective = PowerObjective
"""The former name of :class:`PowerObjective` (the term was called ``energy``; it is watts)."""


class CarbonObjective(PowerObjective):
    """Grams of CO2 per second: watts x intensity (g/kWh) / 3.6e6 J/kWh."""

    name = "carbon"
    aliases = ()
    weight = "epsilon"
    sense = -1
    unit = "gCO2/s"

    def stage_value(self, problem: Problem, option: Option, rate_rps: float) -> float:
        intensity = problem.settings.carbon_intensity_g_per_kwh
        assert intensity is not None
        return super().stage_value(problem, option, rate_rps) * intensity / JOULES_PER_KWH

    def unavailable_reason(self, problem: Problem) -> str | None:
        if problem.settings.carbon_intensity_g_per_kwh is None:
            return "no carbon intensity configured (carbon.intensity_g_per_kwh or carbon.trace)"
        return super().unavailable_reason(problem)


@hookimpl
def register_objectives(register) -> None:
    register("accuracy", AccuracyObjective)
    register("cost", CostObjective)
    register("batch", BatchObjective)
    register("power", PowerObjective)
    register("carbon", CarbonObjective)
