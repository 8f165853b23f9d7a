"""The ``ilp`` optimizer: IPA's adaptation problem (no energy terms) solved exactly as a small MILP.

The model is the core's selection MILP (:mod:`ipa_ext.optimize.milp`, described in
docs/optimizers.md); ``ilp`` zeroes the energy weights ``delta`` and ``epsilon`` and drops
``power_cap_w`` even when the config sets them, and the decision's ``info`` says so.
"""

from __future__ import annotations

from typing import Any

from ipa_ext import hookimpl
from ipa_ext.optimize.milp import SelectionOptimizer
from ipa_ext.problem import Problem

ENERGY_WEIGHTS = ("delta", "epsilon")
"""Weights of the energy terms that plain ``ilp`` leaves out."""


class IlpOptimizer(SelectionOptimizer):
    """IPA's problem (no energy terms) as an exact MILP."""

    name = "ilp"
    ignored_weights = ENERGY_WEIGHTS

    def effective_overrides(self, problem: Problem) -> dict[str, Any]:
        """Setting changes this optimizer makes (ilp: energy weights 0, no power cap)."""
        s = problem.settings
        out: dict[str, Any] = {}
        if any(s.weight(w) != 0 for w in ENERGY_WEIGHTS):
            out["weights"] = {**s.weights, **{w: 0.0 for w in ENERGY_WEIGHTS}}
        if s.power_cap_w is not None:
            out["power_cap_w"] = None
        return out

    def notes(self, problem: Problem) -> list[str]:
        """What the optimizer ignored of the problem's settings, for the decision's info."""
        s = problem.settings
        ignored = [f"{w} {s.weight(w):g}" for w in ENERGY_WEIGHTS if s.weight(w) != 0]
        if s.power_cap_w is not None:
            ignored.append(f"power_cap_w {s.power_cap_w:g}")
        if not ignored:
            return []
        return [f"ilp optimizes IPA's objective and ignores {', '.join(ignored)}; use energy-ilp"]


@hookimpl
def register_optimizers(register) -> None:
    register("ilp", IlpOptimizer)
