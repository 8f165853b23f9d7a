"""The multiple-choice selection MILP behind the ILP optimizers (PuLP): the model, its exact
product term, dominance pruning and the k best by no-good cuts or enumeration.

The design and the exactness argument are in docs/optimizers.md ("The selection MILP").
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pulp

from ..errors import SolverError
from .enumeration import enumerate_k_best, feasible_options
from .solvers import OPTIMAL, MilpSolver, constraints_of

_REL_TOL = 1e-9

CONDITION_LIMIT = 1e-6
"""Smallest ratio, in any stage, of smallest non-zero |factor| to largest |factor| that
the McCormick chain is trusted with; below it the product is enumerated exactly."""
ENUMERATION_LIMIT = 20_000_000
"""Most option combinations an enumeration visits (about a second of numpy work)."""
ENUMERATION_MIN_K = 10
"""Smallest k for which k best may be enumerated instead of solved (ill-conditioned
products are always enumerated)."""
COMBINATIONS_PER_SOLVE = 20_000
"""Combinations enumerated in about the time of one MILP solve (about 1 ms)."""


@dataclass(frozen=True)
class Selection:
    """One selection problem: per stage, per option, its data."""

    coefficients: Sequence[Sequence[float]]
    latencies: Sequence[Sequence[float]]
    latency_bound: float
    powers: Sequence[Sequence[float]] | None = None
    power_bound: float | None = None
    factors: Sequence[Sequence[float]] | None = None
    factor_weight: float = 0.0
    term_magnitude: float | None = None
    """Largest sum of the absolute objective terms a choice can have (the scale of
    rounding errors in its value); default: from the coefficients and factors."""

    def __post_init__(self) -> None:
        n = [len(c) for c in self.coefficients]
        for name in ("latencies", "powers", "factors"):
            data = getattr(self, name)
            if data is not None and [len(d) for d in data] != n:
                raise ValueError(f"{name} must match the coefficients' shape")
        if (self.powers is None) != (self.power_bound is None):
            raise ValueError("powers and power_bound go together")

    @property
    def stages(self) -> int:
        return len(self.coefficients)

    @property
    def has_product(self) -> bool:
        return self.factors is not None and self.factor_weight != 0

    @property
    def magnitude(self) -> float:
        """:attr:`term_magnitude`, or the largest |value| the coefficients and factors allow."""
        if self.term_magnitude is not None:
            return float(self.term_magnitude)
        total = sum(max((abs(float(c)) for c in st), default=0.0) for st in self.coefficients)
        if self.has_product:
            assert self.factors is not None
            total += abs(self.factor_weight) * math.prod(
                max((abs(float(f)) for f in st), default=0.0) for st in self.factors)
        return total

    def value(self, choice: Sequence[int]) -> float:
        """The objective of a choice (one option index per stage).

        A running sum in stage order (Python 3.12's ``sum`` compensates rounding),
        so it is the very number the enumeration computes.
        """
        total = 0.0
        for s, i in enumerate(choice):
            total += float(self.coefficients[s][i])
        if self.has_product:
            assert self.factors is not None
            prod = 1.0
            for s, i in enumerate(choice):
                prod *= float(self.factors[s][i])
            total += self.factor_weight * prod
        return float(total)


@dataclass
class KBest:
    """The outcome of :func:`k_best`: accepted choices best first, plus statistics."""

    rows: np.ndarray = field(default_factory=lambda: np.empty((0, 0), dtype=np.intp))
    """One row per choice, the chosen option index of every stage."""
    values: np.ndarray | None = None
    """Enumeration only: the rows' values (:meth:`Selection.value`)."""
    options: int = 0
    kept: int = 0
    solves: int = 0
    rejected: int = 0
    product_method: str | None = None
    method: str = "milp"
    """``milp`` (one solve per choice) or ``enumeration``."""
    combinations: int | None = None
    """Enumeration only: the option combinations visited (after dropping options in
    no feasible combination)."""
    feasible: int | None = None
    """Enumeration only: how many combinations are feasible."""
    complete: bool = False
    """True when the list is known to hold every feasible choice (within the pool gap):
    the enumeration always knows; the MILP knows when it ran out before k."""

    @property
    def choices(self) -> list[tuple[int, ...]]:
        return [tuple(int(i) for i in row) for row in self.rows]


def _relaxed(bound: float) -> float:
    return bound + _REL_TOL * max(1.0, abs(bound))


def dominance_keep(sel: Selection, k: int) -> list[list[int]]:
    """Per stage, indices of the options dominated by fewer than ``k`` others."""
    out: list[list[int]] = []
    nonneg = sel.factors is None or all(f >= 0 for st in sel.factors for f in st)
    for s in range(sel.stages):
        n = len(sel.coefficients[s])
        if n <= k:
            out.append(list(range(n)))
            continue
        crit = [np.asarray(sel.coefficients[s], float), -np.asarray(sel.latencies[s], float)]
        if sel.powers is not None:
            crit.append(-np.asarray(sel.powers[s], float))
        if sel.has_product:
            assert sel.factors is not None
            f = np.asarray(sel.factors[s], float)
            if nonneg:  # the product is monotone in each factor: the weight's sign says which way
                crit.append(f if sel.factor_weight > 0 else -f)
            else:  # no monotonicity: only equal factors compare
                crit.extend((f, -f))
        m = np.stack(crit)  # criteria x options, larger is better
        ge = np.all(m[:, :, None] >= m[:, None, :], axis=0)  # ge[j, i]: j at least as good as i
        eq = np.all(m[:, :, None] == m[:, None, :], axis=0)
        idx = np.arange(n)
        earlier = idx[:, None] < idx[None, :]
        dominates = ge & (~eq | earlier)  # a strict partial order: ties break by index
        count = dominates.sum(axis=0)
        out.append([int(i) for i in np.flatnonzero(count < k)])
    return out


OBJECTIVE_MAGNITUDE = 1e6
"""The largest objective coefficient after scaling (see :func:`_objective_scale`)."""


def _objective_scale(terms: Sequence[tuple[pulp.LpVariable, float]]) -> float:
    """A factor that brings the largest objective coefficient to :data:`OBJECTIVE_MAGNITUDE`.

    MILP solvers prune with absolute tolerances (CBC's cutoff increment, HiGHS's
    feasibility tolerance, about 1e-6): unscaled, they cannot tell apart
    configurations whose objectives differ by IPA's ``gamma = 1e-6`` per batch
    unit. Scaled, objective differences down to about 1e-12 of the largest
    coefficient are resolved.
    """
    biggest = max((abs(a) for _v, a in terms), default=0.0)
    if not 1e-12 <= biggest < math.inf:  # all (nearly) zero, or not finite: leave alone
        return 1.0
    return OBJECTIVE_MAGNITUDE / biggest


def _new_var(lp: pulp.LpProblem, name: str, low: float | None, up: float | None, cat: str) -> pulp.LpVariable:
    add = getattr(lp, "add_variable", None)  # PuLP >= 3.3; LpVariable(...) is deprecated there
    if add is not None:
        return add(name, low, up, cat)
    return pulp.LpVariable(name, low, up, cat)  # pragma: no cover - older PuLP


def _affine(terms: Sequence[tuple[pulp.LpVariable, float]], constant: float = 0.0) -> pulp.LpAffineExpression:
    """A PuLP expression; repeated variables add up (PuLP's constructor keeps the last)."""
    coef: dict[int, list] = {}
    for v, a in terms:
        entry = coef.get(id(v))
        if entry is None:
            coef[id(v)] = [v, a]
        else:
            entry[1] += a
    return pulp.LpAffineExpression([(v, a) for v, a in coef.values()], constant=constant)


class SelectionModel:
    """The PuLP model of a :class:`Selection` restricted to the kept options."""

    def __init__(self, sel: Selection, kept: Sequence[Sequence[int]]) -> None:
        self.sel = sel
        self.kept = [list(k) for k in kept]
        self.solved = False
        lp = pulp.LpProblem("ipa_ext_selection", pulp.LpMaximize)
        self.lp = lp
        self.variables: list[pulp.LpVariable] = []
        self.x: list[list[pulp.LpVariable]] = []
        for s, opts in enumerate(self.kept):
            row = [_new_var(lp, f"x_{s}_{i}", 0, 1, pulp.LpBinary) for i in opts]
            self.x.append(row)
            self.variables.extend(row)
        objective: list[tuple[pulp.LpVariable, float]] = []
        latency: list[tuple[pulp.LpVariable, float]] = []
        power: list[tuple[pulp.LpVariable, float]] = []
        for s, opts in enumerate(self.kept):
            xs = self.x[s]
            lp.addConstraint(pulp.LpConstraint(_affine([(v, 1.0) for v in xs]), pulp.LpConstraintEQ, f"one_{s}", 1.0))
            for v, i in zip(xs, opts):
                c = float(sel.coefficients[s][i])
                if c != 0:
                    objective.append((v, c))
                latency.append((v, float(sel.latencies[s][i])))
                if sel.powers is not None:
                    power.append((v, float(sel.powers[s][i])))
        lp.addConstraint(pulp.LpConstraint(_affine(latency), pulp.LpConstraintLE, "latency", _relaxed(sel.latency_bound)))
        if sel.powers is not None:
            assert sel.power_bound is not None
            lp.addConstraint(pulp.LpConstraint(_affine(power), pulp.LpConstraintLE, "power", _relaxed(sel.power_bound)))
        self.product_method: str | None = None
        if sel.has_product:
            self.product_method = "chain"
            objective.extend(self._product_chain())
        self.objective_scale = _objective_scale(objective)
        lp.setObjective(_affine([(v, a * self.objective_scale) for v, a in objective]))

    # ------------------------------------------------------------------ product: chain

    def _product_chain(self) -> list[tuple[pulp.LpVariable, float]]:
        """Model ``prod_s factor_s`` by the McCormick chain; returns its weighted terms."""
        sel, lp = self.sel, self.lp
        assert sel.factors is not None
        # Each stage's factors are divided by their largest magnitude (the weight
        # takes the product of the divisors), so every bound is within [-1, 1]:
        # tiny factors would otherwise meet the solvers' tolerances.
        scales = [max(abs(sel.factors[s][i]) for i in opts) for s, opts in enumerate(self.kept)]
        if min(scales) == 0:
            return []  # some stage's factors are all 0: the product is 0 whatever the choice
        groups: list[dict[float, list[pulp.LpVariable]]] = []
        for s, opts in enumerate(self.kept):
            g: dict[float, list[pulp.LpVariable]] = {}
            for v, i in zip(self.x[s], opts):
                g.setdefault(float(sel.factors[s][i]) / scales[s], []).append(v)
            groups.append(g)
        # P_1 as an expression over the first stage's binaries
        prev: list[tuple[pulp.LpVariable, float]] = [
            (v, f) for f, vs in groups[0].items() for v in vs if f != 0
        ]
        lo, hi = min(groups[0]), max(groups[0])
        for s in range(1, len(groups)):
            g = groups[s]
            if len(g) == 1:  # a constant factor: P_s = f * P_(s-1)
                (f,) = g
                prev = [(v, a * f) for v, a in prev]
                lo, hi = sorted((lo * f, hi * f))
                continue
            terms: list[tuple[pulp.LpVariable, float]] = []
            us: list[tuple[pulp.LpVariable, float]] = []
            neg_prev = [(v, -a) for v, a in prev]
            for j, (f, vs) in enumerate(g.items()):
                u = _new_var(lp, f"u_{s}_{j}", min(lo, 0.0), max(hi, 0.0), pulp.LpContinuous)
                self.variables.append(u)
                us.append((u, -1.0))
                for name, extra, sense, rhs in (
                    ("ub_w", [(v, -hi) for v in vs], pulp.LpConstraintLE, 0.0),
                    ("lb_w", [(v, -lo) for v in vs], pulp.LpConstraintGE, 0.0),
                    ("ub_p", neg_prev + [(v, -lo) for v in vs], pulp.LpConstraintLE, -lo),
                    ("lb_p", neg_prev + [(v, -hi) for v in vs], pulp.LpConstraintGE, -hi),
                ):
                    lp.addConstraint(pulp.LpConstraint(_affine([(u, 1.0)] + extra), sense, f"mc_{name}_{s}_{j}", rhs))
                if f != 0:
                    terms.append((u, f))
            lp.addConstraint(pulp.LpConstraint(_affine(prev + us), pulp.LpConstraintEQ, f"mc_sum_{s}", 0.0))
            cands = (lo * min(g), lo * max(g), hi * min(g), hi * max(g))
            lo, hi = min(cands), max(cands)
            prev = terms
        weight = sel.factor_weight * math.prod(scales)
        return [(v, a * weight) for v, a in prev]

    # ------------------------------------------------------------------ solving

    def decode(self, values: Sequence[float]) -> tuple[int, ...]:
        """The chosen option (original index) of every stage."""
        out = []
        pos = 0
        for s, opts in enumerate(self.kept):
            chosen = [i for j, i in enumerate(opts) if values[pos + j] > 0.5]
            pos += len(opts)
            if len(chosen) != 1:
                raise SolverError(f"solver returned {len(chosen)} choices for stage {s}")
            out.append(chosen[0])
        return tuple(out)

    def cut(self, choice: Sequence[int]) -> None:
        """Exclude one choice from the feasible set for good (a no-good cut)."""
        terms = [(self.x[s][self.kept[s].index(i)], 1.0) for s, i in enumerate(choice)]
        name = f"nogood_{len(constraints_of(self.lp))}"
        self.lp.addConstraint(pulp.LpConstraint(_affine(terms), pulp.LpConstraintLE, name, len(choice) - 1.0))

    def solve(self, solver: MilpSolver) -> tuple[int, ...] | None:
        """The optimal choice under the current rows, or None when infeasible."""
        if self.solved:
            result = solver.resolve(self.lp, self.variables)
        else:
            result = solver.solve(self.lp, self.variables)
            self.solved = True
        if result.status != OPTIMAL:
            return None
        return self.decode(result.values)


def _check_infeasible_without_product(sel: Selection, kept: Sequence[Sequence[int]], solver: MilpSolver) -> None:
    """The product term never changes feasibility; if the model without it is feasible,
    the solver failed numerically and must not report "infeasible"."""
    plain = SelectionModel(dataclasses.replace(sel, factors=None, factor_weight=0.0), kept)
    if plain.solve(solver) is not None:
        raise SolverError(
            f"{solver.name} solver reported the model with the accuracy product infeasible, "
            "but it is feasible: numerical trouble (do the accuracies of a stage span many "
            "orders of magnitude?)"
        )


K_BEST_METHODS = ("auto", "milp", "enumeration")


def k_best(
    sel: Selection,
    k: int,
    solver: MilpSolver,
    accept: Callable[[tuple[int, ...]], bool] | None = None,
    *,
    prune: bool = True,
    pool_gap: float | None = None,
    method: str = "auto",
) -> KBest:
    """The ``k`` best distinct feasible choices, best first.

    ``accept`` is the caller's exact feasibility test (the rule of
    :func:`ipa_ext.problem.within` on the same rows): the MILP path checks every
    solver solution with it, the enumeration only the combinations within
    rounding distance of a bound. ``pool_gap`` (relative, like Gurobi's
    PoolGap) stops once a solution is worse than the best by more than
    ``pool_gap * |best|``; 0 keeps only ties of the optimum. ``method``:
    ``auto`` (see the module docstring), ``milp`` or ``enumeration``.
    """
    if k < 1:
        raise ValueError("k must be >= 1")
    if method not in K_BEST_METHODS:
        raise ValueError(f"method must be one of {', '.join(K_BEST_METHODS)}, got {method!r}")
    out = KBest(options=sum(len(c) for c in sel.coefficients),
                rows=np.empty((0, sel.stages), dtype=np.intp))
    kept = dominance_keep(sel, k) if prune else [list(range(len(c))) for c in sel.coefficients]
    out.kept = sum(len(k_) for k_ in kept)
    if any(not k_ for k_ in kept) or sel.stages == 0:
        out.complete = True
        return out
    ill = sel.has_product and product_condition(sel, kept) < CONDITION_LIMIT
    if method == "milp" or (method == "auto" and not ill and k < ENUMERATION_MIN_K):
        return _solve_k_best(sel, kept, k, solver, accept, pool_gap, out)
    reachable = feasible_options(sel, kept)
    combos = math.prod(len(o) for o in reachable)
    if method == "auto" and not ill and combos > min(ENUMERATION_LIMIT, k * COMBINATIONS_PER_SOLVE):
        return _solve_k_best(sel, kept, k, solver, accept, pool_gap, out)  # cheaper than enumerating
    return _enumerate(sel, reachable, k, accept, pool_gap, out, ill)


def _solve_k_best(
    sel: Selection,
    kept: Sequence[Sequence[int]],
    k: int,
    solver: MilpSolver,
    accept: Callable[[tuple[int, ...]], bool] | None,
    pool_gap: float | None,
    out: KBest,
) -> KBest:
    """k best by repeated solves with no-good cuts."""
    model = SelectionModel(sel, kept)
    out.product_method = model.product_method
    choices: list[tuple[int, ...]] = []
    best: float | None = None
    while len(choices) < k:
        choice = model.solve(solver)
        out.solves += 1
        if choice is None:
            if out.solves == 1 and model.product_method:
                _check_infeasible_without_product(sel, kept, solver)
            out.complete = True
            break
        model.cut(choice)
        if accept is not None and not accept(choice):  # violates the constraints exactly
            out.rejected += 1
            continue
        value = sel.value(choice)
        if best is None:
            best = value
        elif pool_gap is not None and value < best - pool_gap * abs(best) - _REL_TOL * max(1.0, abs(best)):
            out.complete = True
            break
        choices.append(choice)
    out.rows = np.asarray(choices, dtype=np.intp).reshape(len(choices), sel.stages)
    return out


def _enumerate(
    sel: Selection,
    kept: Sequence[Sequence[int]],
    k: int,
    accept: Callable[[tuple[int, ...]], bool] | None,
    pool_gap: float | None,
    out: KBest,
    ill: bool,
) -> KBest:
    """k best by exact enumeration of the kept combinations (:mod:`ipa_ext.optimize.enumeration`);
    ``kept`` holds only options that fit in some feasible combination."""
    total = math.prod(len(o) for o in kept)
    if total > ENUMERATION_LIMIT:
        if ill:
            raise SolverError(
                f"the accuracy factors span too many orders of magnitude (condition "
                f"{product_condition(sel, kept):.2g}) for the MILP solvers' tolerances, and exact "
                f"enumeration would visit {total} combinations (limit {ENUMERATION_LIMIT}); "
                "use accuracy_method sum or average, normalize_accuracy, or the brute-force optimizer"
            )
        raise SolverError(f"enumeration would visit {total} combinations (limit {ENUMERATION_LIMIT})")
    ranked = enumerate_k_best(sel, kept, k, accept, pool_gap)
    out.method = "enumeration"
    if sel.has_product:
        out.product_method = "enumeration"
    out.rows, out.values = ranked.rows, ranked.values
    out.combinations, out.feasible = ranked.combinations, ranked.feasible
    out.rejected, out.complete = ranked.rejected, ranked.complete
    return out


def product_condition(sel: Selection, kept: Sequence[Sequence[int]]) -> float:
    """Smallest, over stages, of (smallest non-zero |factor| / largest |factor|) among kept options."""
    assert sel.factors is not None
    cond = 1.0
    for s, opts in enumerate(kept):
        mags = [abs(float(sel.factors[s][i])) for i in opts if sel.factors[s][i] != 0]
        if mags:
            cond = min(cond, min(mags) / max(mags))
    return cond


def count_feasible(sel: Selection) -> int | None:
    """How many option combinations meet the bounds (None when there are too many to count)."""
    reachable = feasible_options(sel, [list(range(len(c))) for c in sel.coefficients])
    if sel.stages == 0 or any(not r for r in reachable):
        return 0
    if math.prod(len(o) for o in reachable) > ENUMERATION_LIMIT:
        return None
    return enumerate_k_best(sel, reachable, 1).feasible
