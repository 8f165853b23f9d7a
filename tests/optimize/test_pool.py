"""Large k: the ilp optimizers' candidate pool equals brute force's list, and the
adapter's least-change choice over it equals the plain loop."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import event, given, settings, strategies as st

from ipa_ext.adapt.adapter import least_change
from ipa_ext.model import StageConfig, changes
from ipa_ext.optimize.pool import CandidatePool
from ipa_ext.problem import Problem

from support.problems import initial_of, pipelines
from support.optimizers import SOLVERS, WEIGHTS, assert_same_values, brute, energy_ilp, ilp, problem_or_none

HUGE = 1_000_000


def configs(decision):
    return [c.config for c in decision.candidates]


def loop_least_change(candidates, current):
    """The adapter's rule written out: fewest changes, the earlier candidate on ties."""
    best, best_n = 0, None
    for i, c in enumerate(candidates):
        n = changes(c.config, current)
        if best_n is None or n < best_n:
            best, best_n = i, n
    return best


@pytest.mark.parametrize("solver", SOLVERS)
def test_every_feasible_configuration_in_brute_force_order(solver, video_problem):
    """num_state_limit beyond the feasible set: brute force's whole list, same order, no solve."""
    for rate in (0.5, 7, 31, 60, 150):
        d = ilp(solver).optimize(video_problem, rate, None, HUGE)
        ref = brute(video_problem, rate, HUGE)
        assert isinstance(d.candidates, CandidatePool)
        assert d.info["k_best"] == "enumeration" and d.info["solves"] == 0 and d.info["complete"]
        assert d.info["feasible"] == len(ref.candidates) == len(d.candidates)
        assert configs(d) == configs(ref)
        assert [c.objective for c in d.candidates] == [c.objective for c in ref.candidates]


@pytest.mark.parametrize("solver", SOLVERS)
def test_a_pool_stops_at_k(solver, video_problem):
    d = ilp(solver).optimize(video_problem, 31, None, 25)
    assert len(d.candidates) == 25 and not d.info["complete"] and d.info["feasible"] == 400
    assert_same_values(d, brute(video_problem, 31, 25))


@pytest.mark.parametrize("solver", SOLVERS)
@settings(max_examples=30, deadline=None)
@given(
    pipe=pipelines(),
    rate=st.floats(0.5, 40),
    sla_factor=st.floats(0.3, 4),
    method=st.sampled_from(["sum", "average", "multiply"]),
    mode=st.sampled_from(["fix", "base", "variable"]),
    weights=WEIGHTS,
    delta=st.sampled_from([0.0, 0.05]),
    cap=st.one_of(st.none(), st.floats(2, 150)),
    k=st.sampled_from([10, 1000, HUGE]),
)
def test_energy_ilp_pool_equals_brute_force(solver, pipe, rate, sla_factor, method, mode, weights, delta, cap, k):
    p = problem_or_none(pipe, sla_factor=sla_factor, accuracy_method=method, allocation_mode=mode,
                        scaling_cap=12, batching_cap=4, initial=initial_of(pipe, replicas=3),
                        weights={**weights, "delta": delta}, power_cap_w=cap)
    if p is None:
        return
    d = energy_ilp(solver).optimize(p, rate, None, k)
    ref = brute(p, rate, k)
    event(f"{d.info.get('k_best')}, {len(ref.candidates)} candidate(s)")
    assert_same_values(d, ref)
    if d.info.get("complete") and d.info.get("k_best") == "enumeration":
        assert configs(d) == configs(ref)  # the whole feasible set: the same order, ties included


@settings(max_examples=60, deadline=None)
@given(rate=st.sampled_from([1, 7, 31, 60]), data=st.data())
def test_least_change_over_a_pool_equals_the_loop(video_problem, rate, data):
    d = ilp("cbc").optimize(video_problem, rate, None, HUGE)
    pool = d.candidates
    stages = video_problem.pipeline.stages
    current = tuple(
        StageConfig(
            data.draw(st.sampled_from([*s.variant_names, "gone"])),
            1.0,
            data.draw(st.sampled_from([1, 2, 4, 8, 3])),
            data.draw(st.integers(1, 9)),
        )
        for s in stages
    )
    assert least_change(pool, current) == loop_least_change(list(pool), current)


def test_least_change_without_a_current_configuration_is_the_best(video_problem):
    pool = ilp("cbc").optimize(video_problem, 20, None, HUGE).candidates
    assert least_change(pool, None) == 0
    assert least_change(pool, initial_of(video_problem.pipeline)[:1]) == 0  # wrong stage count


def test_a_pool_is_evaluated_only_where_it_is_read(video_problem):
    d = ilp("cbc").optimize(video_problem, 31, None, HUGE)
    pool = d.candidates
    assert len(pool) == 400 and pool._evaluated == {}
    best = d.best
    assert best is pool[0] and best.feasible
    assert len(pool._evaluated) < 20  # the first block of near-ties, not the pool
    assert pool[-1].objective <= pool[-2].objective <= best.objective
    assert [c.config for c in pool[3:6]] == [pool[i].config for i in range(3, 6)]
    with pytest.raises(IndexError):
        pool[400]


def test_a_policy_re_scores_a_pool_lazily(video_problem, host):
    """A baseline policy over ilp keeps the pool's order and re-scores as it is read."""
    energy = Problem(video_problem.pipeline,
                     replace(video_problem.settings, weights={**video_problem.settings.weights, "delta": 0.5}),
                     video_problem.objectives)
    policy = host.registry.create("optimizer", "ipa", {})
    d = policy.optimize(energy, 31, None, HUGE)
    base = ilp("cbc").optimize(video_problem, 31, None, HUGE)
    assert isinstance(d.candidates, CandidatePool) and len(d.candidates) == len(base.candidates)
    assert configs(d) == configs(base)
    first = d.candidates[0]
    assert first.weighted["energy"] == pytest.approx(0.5 * first.terms["energy"])
