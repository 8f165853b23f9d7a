"""The one selection model the exact MILP optimizers share (``ilp`` and ``energy-ilp``).

:func:`build_selection` turns a problem's per-stage options at a rate into a
:class:`~ipa_ext.optimize.selection.Selection`; :class:`SelectionOptimizer` solves it for the
k best and leaves a plugin only the settings it changes (see docs/optimizers.md).
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from typing import Any, Sequence

from ..config.numeric import option
from ..errors import ConfigError
from ..model import Configuration
from ..objectives import Objective
from ..optimizers import Decision, Optimizer
from ..problem import Evaluation, Option, Problem
from .pool import TIE_TOLERANCE, CandidatePool
from .selection import Selection, k_best
from .solvers import SOLVER_CHOICES, choose_solver, make_solver

MAX_MAGNITUDE = 1e15
"""The largest number the MILP model may hold: solvers treat 1e20 (HiGHS) as infinite and lose
precision well before; a larger objective coefficient, latency or power is refused plainly."""


class SelectionOptimizer(Optimizer):
    """An exact optimizer over the selection MILP; subclasses say which settings they change.

    Options: ``solver`` (auto, cbc, highs), ``time_limit_s``, ``prune`` (dominance pruning)
    and ``pool_gap`` (stop the k-best list at this relative gap; 0 keeps only ties of the
    optimum, as IPA's Gurobi solution pool with PoolGap 0 does).
    """

    deterministic = True
    """Same problem and rate, same decision: the adapter loop may memoise it."""
    k_best_engine = True
    """It lists up to ``num_state_limit`` candidates exactly (validate and pareto read this)."""

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
        """Setting changes this optimizer makes (``dataclasses.replace`` keywords; none here)."""
        return {}

    def notes(self, problem: Problem) -> list[str]:
        """What the optimizer ignored of the problem's settings, for the decision's info."""
        return []

    def check(self, problem: Problem) -> None:
        """Refuse settings the optimizer cannot honour (a :class:`ConfigError`)."""

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
        """The MILP data of ``p`` at the rate (:func:`build_selection`)."""
        return build_selection(p, per_stage, rate_rps, self.name)


def _split_objectives(p: Problem, optimizer: str) -> tuple[list[tuple[Objective, float]], tuple[Objective, float] | None]:
    """The weighted objectives as linear terms and at most one product term, each with its
    scale ``sense * weight``; one the model cannot hold is a :class:`ConfigError`."""
    linear: list[tuple[Objective, float]] = []
    product: tuple[Objective, float] | None = None
    for obj in p.active_objectives:
        scale = obj.sense * p.settings.weight(obj.weight)
        if obj.is_additive(p):
            linear.append((obj, scale))
        elif obj.is_product(p) and product is None:
            product = (obj, scale)
        else:
            why = "a second product term" if obj.is_product(p) else "not additive"
            raise ConfigError(
                f"objective {obj.name!r} is {why}, so the {optimizer} optimizer cannot "
                f"model it; use brute-force or set its weight to 0",
                where=f"weights.{obj.weight}",
            )
    return linear, product


def build_selection(p: Problem, per_stage: tuple[list[Option], ...], rate_rps: float, optimizer: str) -> Selection:
    """Per-option coefficients, latencies, powers (with a power cap) and product factors.

    Additive objectives sum into one coefficient per option; an objective that declares
    itself a product term (:meth:`~ipa_ext.objectives.Objective.is_product`) gives the
    per-stage factors of the McCormick chain. ``optimizer`` names the caller in errors.
    """
    linear, product = _split_objectives(p, optimizer)
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
    check_magnitudes(sel, optimizer)
    return sel


def check_magnitudes(sel: Selection, name: str) -> None:
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
