"""The ``energy-ilp`` optimizer: IPA's objective plus power and carbon terms and an optional power cap.

It solves the core's selection MILP (:mod:`ipa_ext.optimize.milp`) with the problem's ``delta``,
``epsilon`` and ``power_cap_w``, which its options of the same names override (docs/optimizers.md).
"""

from __future__ import annotations

from typing import Any

from ipa_ext import hookimpl
from ipa_ext.config.numeric import option
from ipa_ext.errors import ConfigError
from ipa_ext.optimize.milp import SelectionOptimizer
from ipa_ext.problem import Problem


def _number(name: str, value: Any, *, positive: bool = False) -> float | None:
    if value is None:
        return None
    return option(name, value, positive=positive, minimum=0)


ENERGY_BLIND_NOTE = (
    "delta and epsilon are 0 and there is no power cap, so energy-ilp optimizes IPA's objective and "
    "decides as ilp (and ipa) do; give it a power weight (weights.delta, or energy-ilp:delta=D) "
    "to make it energy-aware"
)


class EnergyIlpOptimizer(SelectionOptimizer):
    """IPA's problem plus energy and carbon terms and a power cap, as an exact MILP."""

    name = "energy-ilp"
    ignored_weights = ()

    def __init__(
        self,
        delta: float | None = None,
        epsilon: float | None = None,
        power_cap_w: float | None = None,
        carbon_intensity_g_per_kwh: float | None = None,
        **ilp_options: Any,
    ) -> None:
        super().__init__(**ilp_options)
        self.delta = _number("delta", delta)
        self.epsilon = _number("epsilon", epsilon)
        self.power_cap_w = _number("power_cap_w", power_cap_w, positive=True)
        self.carbon_intensity_g_per_kwh = _number("carbon_intensity_g_per_kwh", carbon_intensity_g_per_kwh)

    def effective_overrides(self, problem: Problem) -> dict[str, Any]:
        s = problem.settings
        out: dict[str, Any] = {}
        weights = {w: v for w, v in (("delta", self.delta), ("epsilon", self.epsilon)) if v is not None}
        if any(s.weight(w) != v for w, v in weights.items()):
            out["weights"] = {**s.weights, **weights}
        if self.power_cap_w is not None and s.power_cap_w != self.power_cap_w:
            out["power_cap_w"] = self.power_cap_w
        ci = self.carbon_intensity_g_per_kwh
        if ci is not None and s.carbon_intensity_g_per_kwh != ci:
            out["carbon_intensity_g_per_kwh"] = ci
        return out

    def notes(self, problem: Problem) -> list[str]:
        """Say so when nothing energy-related is weighted: then this is plain ``ilp``."""
        s = self.effective_problem(problem).settings
        if s.weight("delta") == 0 and s.weight("epsilon") == 0 and s.power_cap_w is None:
            return [ENERGY_BLIND_NOTE]
        return []

    def check(self, problem: Problem) -> None:
        if problem.settings.power_cap_w is not None and not problem.pipeline.has_power:
            raise ConfigError(
                "a power cap needs power_w or energy_j_per_request in every profile row",
                where="power_cap_w",
            )


@hookimpl
def register_optimizers(register) -> None:
    register("energy-ilp", EnergyIlpOptimizer)
