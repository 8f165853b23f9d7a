"""The selection MILP itself: exact k-best against enumeration, pruning, the product chain, solvers."""

from __future__ import annotations

import itertools
import os

import pytest
from hypothesis import given, settings, strategies as st

from ipa_ext.errors import ConfigError, SolverError
from ipa_ext.optimize.selection import Selection, dominance_keep, k_best
from ipa_ext.optimize.solvers import SOLVER_ENV, available_solvers, choose_solver, highs_available, make_solver

from support.optimizers import SOLVERS, selections


def enumerate_top(sel: Selection, k: int) -> list[float]:
    values = []
    for choice in itertools.product(*(range(len(c)) for c in sel.coefficients)):
        lat = sum(sel.latencies[s][i] for s, i in enumerate(choice))
        if lat > sel.latency_bound * (1 + 1e-9):
            continue
        if sel.powers is not None and sum(sel.powers[s][i] for s, i in enumerate(choice)) > sel.power_bound * (1 + 1e-9):
            continue
        values.append(sel.value(choice))
    return sorted(values, reverse=True)[:k]


@pytest.mark.parametrize("solver", SOLVERS)
@settings(max_examples=60)
@given(sel=selections(), k=st.integers(1, 6), prune=st.booleans())
def test_k_best_equals_enumeration(solver, sel, k, prune):
    res = k_best(sel, k, make_solver(solver), prune=prune)
    got = [sel.value(c) for c in res.choices]
    ref = enumerate_top(sel, k)
    assert len(got) == len(ref), (got, ref)
    for a, b in zip(sorted(got, reverse=True), ref):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), (got, ref)
    assert len(set(res.choices)) == len(res.choices)


@settings(max_examples=100)
@given(sel=selections(), k=st.integers(1, 5))
def test_pruning_keeps_enough_undominated_options(sel, k):
    kept = dominance_keep(sel, k)
    for s, keep in enumerate(kept):
        n = len(sel.coefficients[s])
        assert len(keep) >= min(n, k)  # at least k (or all) survive in every stage
    restricted = Selection(
        [[sel.coefficients[s][i] for i in keep] for s, keep in enumerate(kept)],
        [[sel.latencies[s][i] for i in keep] for s, keep in enumerate(kept)],
        sel.latency_bound,
        None if sel.powers is None else [[sel.powers[s][i] for i in keep] for s, keep in enumerate(kept)],
        sel.power_bound,
        None if sel.factors is None else [[sel.factors[s][i] for i in keep] for s, keep in enumerate(kept)],
        sel.factor_weight,
    )
    assert enumerate_top(restricted, k) == pytest.approx(enumerate_top(sel, k), rel=1e-12, abs=1e-12)


def test_pruning_drops_dominated_options():
    # option 1 is worse than option 0 on every criterion; option 2 trades latency for value
    sel = Selection([[5.0, 4.0, 6.0]], [[0.1, 0.2, 0.3]], 1.0)
    assert dominance_keep(sel, 1) == [[0, 2]]
    assert dominance_keep(sel, 2) == [[0, 1, 2]]
    ties = Selection([[1.0, 1.0, 1.0]], [[0.5, 0.5, 0.5]], 1.0)  # identical: the earliest survive
    assert dominance_keep(ties, 1) == [[0]] and dominance_keep(ties, 2) == [[0, 1]]


@pytest.mark.parametrize("solver", SOLVERS)
def test_objective_differences_of_one_millionth_are_resolved(solver):
    """IPA's gamma 1e-6 per batch unit: unscaled, MILP tolerances would call these equal."""
    coef = [[-4.0 - 1e-6 * b for b in (8, 1, 4, 2)], [-2.0 - 1e-6 * b for b in (2, 8, 1)]]
    lat = [[0.1, 0.1, 0.1, 0.1], [0.2, 0.2, 0.2]]
    sel = Selection(coef, lat, 1.0)
    res = k_best(sel, 3, make_solver(solver), prune=False)
    assert res.choices[0] == (1, 2) and set(res.choices[1:]) == {(1, 0), (3, 2)}  # the last two tie
    assert [round(sel.value(c), 9) for c in res.choices] == [-6.000002, -6.000003, -6.000003]


@pytest.mark.parametrize("solver", SOLVERS)
def test_infeasible_selection_returns_nothing(solver):
    res = k_best(Selection([[1.0, 2.0]], [[2.0, 3.0]], 1.0), 2, make_solver(solver))
    assert res.choices == [] and res.solves == 1


@pytest.mark.parametrize("solver", SOLVERS)
def test_rejected_solutions_are_cut_and_not_counted(solver):
    sel = Selection([[3.0, 2.0, 1.0]], [[0.1, 0.1, 0.1]], 1.0)
    res = k_best(sel, 2, make_solver(solver), accept=lambda c: c != (0,), prune=False)
    assert res.choices == [(1,), (2,)] and res.rejected == 1 and res.solves == 3


@pytest.mark.parametrize("solver", SOLVERS)
def test_time_limit_is_a_solver_error_not_a_wrong_answer(solver):
    """A solve stopped before proving optimality raises; it never passes off a guess."""
    import random

    rng = random.Random(7)
    n_stages, n = 12, 40
    coef = [[rng.uniform(-10, 0) for _ in range(n)] for _ in range(n_stages)]
    lat = [[rng.uniform(0.05, 1) for _ in range(n)] for _ in range(n_stages)]
    factors = [[rng.uniform(0.1, 1) for _ in range(n)] for _ in range(n_stages)]
    sel = Selection(coef, lat, 3.0, factors=factors, factor_weight=20.0)
    with pytest.raises(SolverError, match=f"{solver} solver failed.*time_limit_s 0.001"):
        k_best(sel, 1, make_solver(solver, time_limit_s=0.001), prune=False)


def test_choose_solver_auto_and_explicit(monkeypatch):
    monkeypatch.delenv(SOLVER_ENV, raising=False)
    found = available_solvers()
    assert choose_solver("auto") == found[0]
    assert found[0] == ("highs" if highs_available() else "cbc")  # the fastest available
    for name in found:
        assert choose_solver(name) == name
    if not highs_available():  # the minimal install: a clear hint, not an ImportError
        with pytest.raises(ConfigError, match=r"solver: HiGHS needs highspy: pip install 'ipa-ext\[highs\]'"):
            choose_solver("highs")
    with pytest.raises(ConfigError, match="solver: must be one of auto, cbc, highs, got 'gurobi'"):
        choose_solver("gurobi")


def test_environment_picks_the_solver_for_auto(monkeypatch):
    for name in available_solvers():
        monkeypatch.setenv(SOLVER_ENV, name)
        assert choose_solver("auto") == name
    monkeypatch.setenv(SOLVER_ENV, "glpk")
    with pytest.raises(ConfigError, match="IPA_EXT_SOLVER: must be one of cbc, highs, got 'glpk'"):
        choose_solver("auto")
    assert choose_solver("cbc") == "cbc"  # an explicit choice does not consult the variable


def test_tox_factor_solver_is_available():
    """Under tox, the solver the factor names must be installed (else the cell tests nothing)."""
    env = os.environ.get(SOLVER_ENV)
    if env:
        assert env in available_solvers()
    assert SOLVERS


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_product_model_is_never_called_infeasible_when_the_constraints_are_feasible(solver):
    """The guard run when a model with the product term comes back infeasible."""
    from ipa_ext.optimize.selection import _check_infeasible_without_product

    feasible = Selection([[1.0, 2.0]], [[0.5, 0.7]], 1.0, factors=[[0.5, 1.0]], factor_weight=2.0)
    with pytest.raises(SolverError, match="numerical trouble"):
        _check_infeasible_without_product(feasible, [[0, 1]], make_solver(solver))
    infeasible = Selection([[1.0, 2.0]], [[1.5, 1.7]], 1.0, factors=[[0.5, 1.0]], factor_weight=2.0)
    assert _check_infeasible_without_product(infeasible, [[0, 1]], make_solver(solver)) is None
