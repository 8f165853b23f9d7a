"""The ``ilp`` optimizer: IPA's adaptation problem solved exactly as a small MILP with PuLP.

For the predicted rate λ every (variant, cpu, batch) choice of a stage becomes
one option with its fewest sustaining replicas, ``max(1, ceil(λ/throughput))``
(pinned under ``baseline_mode: switch``), so replicas need no variables and
the model is a multiple-choice selection (:mod:`ipa_ext.optimize.selection`): one binary
per option, one option per stage, ``sum latency <= SLA`` (queueing term
included), objective ``alpha*accuracy - beta*cores - gamma*batch``. Accuracy
``sum`` and ``average`` are linear; ``multiply`` is modelled exactly by a
McCormick chain over binaries. ``num_state_limit: k`` returns the k best
distinct configurations: by no-good cuts (one solve each) for small k, or, when
k is large next to the option combinations, by enumerating them with numpy; then
the decision holds a :class:`~ipa_ext.optimize.pool.CandidatePool` evaluated on demand,
and a k beyond the feasible configurations costs no more than listing them.

``ilp`` is IPA's objective: it ignores the energy weights ``delta`` and
``epsilon`` and ``power_cap_w`` even when the config sets them (the decision's
``info`` says so) and scores its candidates with those weights at 0; the
``energy-ilp`` optimizer includes them. Options: ``solver`` (auto, cbc,
highs), ``time_limit_s``, ``prune`` (dominance pruning, on by default) and
``pool_gap`` (stop the k-best list at this relative gap; 0 keeps only ties of
the optimum, as IPA's Gurobi solution pool with PoolGap 0 does).
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from typing import Any, Sequence

from ipa_ext import hookimpl
from ipa_ext.config.numeric import option
from ipa_ext.errors import ConfigError
from ipa_ext.model import Configuration
from ipa_ext.objectives import Objective
from ipa_ext.optimize.pool import TIE_TOLERANCE, CandidatePool
from ipa_ext.optimize.selection import Selection, k_best
from ipa_ext.optimize.solvers import SOLVER_CHOICES, choose_solver, make_solver
from ipa_ext.optimizers import Decision, Optimizer
from ipa_ext.problem.problem import Evaluation, Option, Problem
from ipa_ext_plugins.objectives.builtin import AccuracyObjective

ENERGY_WEIGHTS = ("delta", "epsilon")
"""Weights of the energy terms that plain ``ilp`` leaves out."""


class IlpOptimizer(Optimizer):
    """IPA's problem (no energy terms) as an exact MILP."""

    name = "ilp"
    deterministic = True
    """Same problem and rate, same decision: the adapter loop may memoise it."""
    ignored_weights = ENERGY_WEIGHTS
    k_best_engine = True

    def __init__(
        self,
        solver: str = "auto",
        time_limit_s: float | None = 30.0,
        prune: bool = True,
        pool_gap: float | None = None,
    ) -> None:
        if solver not in SOLVER_CHOICES:
            raise ValueError(f"solver must be one of {', '.join(SOLVER_CHOICES)}, got {solver!r}")
        if time_limit_s is not None:
            time_limit_s = option("time_limit_s", time_limit_s, positive=True)
        if not isinstance(prune, bool):
            raise ValueError(f"prune must be true or false, got {prune!r}")
        if pool_gap is not None:
            pool_gap = option("pool_gap", pool_gap, minimum=0)
        self.solver = solver
        self.time_limit_s = None if time_limit_s is None else float(time_limit_s)
        self.prune = prune
        self.pool_gap = None if pool_gap is None else float(pool_gap)
        self._derived: weakref.WeakKeyDictionary[Problem, Problem] = weakref.WeakKeyDictionary()

    # ------------------------------------------------------------------ the problem solved

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

    def effective_problem(self, problem: Problem) -> Problem:
        """The problem this optimizer solves (cached per problem object)."""
        cached = self._derived.get(problem)
        if cached is not None:
            return cached
        overrides = self.effective_overrides(problem)
        if not overrides:
            self.check(problem)
            return problem
        derived = Problem(problem.pipeline, dataclasses.replace(problem.settings, **overrides), problem.objectives)
        self.check(derived)
        self._derived[problem] = derived
        return derived

    def check(self, problem: Problem) -> None:
        """Refuse settings the optimizer cannot honour (a :class:`ConfigError`)."""

    # ------------------------------------------------------------------ deciding

    def optimize(
        self,
        problem: Problem,
        rate_rps: float,
        current: Configuration | None = None,
        k: int | None = None,
    ) -> Decision:
        decision = super().optimize(self.effective_problem(problem), rate_rps, current, k)
        notes = self.notes(problem)
        if notes:
            info = dict(decision.info)
            info["notes"] = notes
            decision = dataclasses.replace(decision, info=info)
        return decision

    def solve(
        self, problem: Problem, rate_rps: float, current: Configuration | None, k: int
    ) -> tuple[Sequence[Evaluation], dict[str, Any]]:
        p = self.effective_problem(problem)
        solver_name = choose_solver(self.solver)
        per_stage = p.options(rate_rps, current)
        info: dict[str, Any] = {
            "solver": solver_name,
            "weights": {o.weight: p.settings.weight(o.weight) for o in p.objectives},
            "power_cap_w": p.settings.power_cap_w,
        }
        if any(not opts for opts in per_stage):
            info.update(options=sum(map(len, per_stage)), variables=0, solves=0)
            return [], info
        sel = self.selection(p, per_stage, rate_rps)
        solver = make_solver(solver_name, self.time_limit_s)

        def accept(choice: tuple[int, ...]) -> bool:
            return not p.violations([per_stage[s][i] for s, i in enumerate(choice)], rate_rps)

        result = k_best(sel, k, solver, accept, prune=self.prune, pool_gap=self.pool_gap)
        info.update(
            options=result.options, variables=result.kept, solves=result.solves, rejected=result.rejected,
            k_best=result.method, complete=result.complete,
        )
        if result.product_method:
            info["product_method"] = result.product_method
        if result.method == "enumeration":
            assert result.values is not None
            info.update(combinations=result.combinations, feasible=result.feasible)
            pool = CandidatePool(per_stage, result.rows, result.values, TIE_TOLERANCE * max(1.0, sel.magnitude),
                                 lambda opts: p.evaluate_options(opts, rate_rps))
            return pool, info
        evaluations = [
            p.evaluate_options([per_stage[s][i] for s, i in enumerate(c)], rate_rps) for c in result.choices
        ]
        evaluations.sort(key=lambda e: -e.objective)  # stable: solver order among ties
        return evaluations, info

    def selection(self, p: Problem, per_stage: tuple[list[Option], ...], rate_rps: float) -> Selection:
        """The MILP data: per-option coefficients, latencies, powers and product factors."""
        linear: list[tuple[Objective, float]] = []
        product: tuple[Objective, float] | None = None
        for obj in p.active_objectives:
            scale = obj.sense * p.settings.weight(obj.weight)
            if obj.is_additive(p):
                linear.append((obj, scale))
            elif isinstance(obj, AccuracyObjective) and p.settings.accuracy_method == "multiply":
                product = (obj, scale)
            else:
                raise ConfigError(
                    f"objective {obj.name!r} is not additive, so the {self.name} optimizer cannot "
                    f"model it; use brute-force or set its weight to 0",
                    where=f"weights.{obj.weight}",
                )
        terms = [[[scale * obj.coefficient(p, o, rate_rps) for obj, scale in linear] for o in opts]
                 for opts in per_stage]
        coefficients = [[sum(t) for t in opts] for opts in terms]
        magnitude = sum(max((sum(map(abs, t)) for t in opts), default=0.0) for opts in terms)
        latencies = [[o.latency_s for o in opts] for opts in per_stage]
        powers = None
        cap = p.settings.power_cap_w
        if cap is not None and p.pipeline.has_power:
            powers = [[o.profile.power_at(rate_rps, o.replicas) for o in opts] for opts in per_stage]
        factors = None
        weight = 0.0
        if product is not None:
            obj, weight = product
            factors = [[obj.stage_value(p, o, rate_rps) for o in opts] for opts in per_stage]
            magnitude += abs(weight) * math.prod(max((abs(f) for f in st), default=0.0) for st in factors)
        sel = Selection(
            coefficients=coefficients,
            latencies=latencies,
            latency_bound=p.sla_s,
            powers=powers,
            power_bound=cap if powers is not None else None,
            factors=factors,
            factor_weight=weight,
            term_magnitude=magnitude,
        )
        _check_magnitudes(sel, self.name)
        return sel


MAX_MAGNITUDE = 1e15
"""The largest number the MILP model may hold: solvers treat 1e20 (HiGHS) as infinite and lose
precision well before; a larger objective coefficient, latency or power is refused plainly."""


def _check_magnitudes(sel: Selection, name: str) -> None:
    """Refuse a model whose numbers a MILP solver cannot represent (a one-line config error)."""
    parts = [("an objective coefficient", sel.coefficients, "weights"),
             ("a latency", sel.latencies, "sla_s"), ("a power", sel.powers or (), "power_cap_w"),
             ("an accuracy factor", sel.factors or (), "weights")]
    for what, rows, where in parts:
        worst = max((abs(x) for row in rows for x in row), default=0.0)
        if not worst <= MAX_MAGNITUDE:
            raise ConfigError(
                f"the {name} model needs {what} of {worst:.3g} (weights x profile values), beyond "
                f"the {MAX_MAGNITUDE:.0e} a MILP solver represents; scale the weights or the profile's "
                "units down, or use brute-force", where=where)


@hookimpl
def register_optimizers(register) -> None:
    register("ilp", IlpOptimizer)
