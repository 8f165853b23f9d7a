"""The ilp and energy-ilp optimizers reach brute force's optima and k-best lists exactly.

Every test runs with the solver tox's factor names in ``IPA_EXT_SOLVER``, or
with every solver available here when it is unset.
"""

from __future__ import annotations

import warnings

import pytest
from hypothesis import event, given, settings, strategies as st

from ipa_ext.errors import ConfigError
from ipa_ext.model import StageConfig

from support.ipa_reference import ipa_states
from support.optimizers import SOLVERS, WEIGHTS, assert_same_values, brute, energy_ilp, ilp, problem_or_none
from support.problems import ONE_STAGE, initial_of, make_pipeline, make_problem, pipelines


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("method", ["sum", "average", "multiply"])
@settings(max_examples=25)
@given(
    pipe=pipelines(),
    rate=st.floats(0.5, 30),
    sla_factor=st.floats(0.3, 4),
    mode=st.sampled_from(["fix", "base", "variable"]),
    baseline=st.sampled_from([None, "scale", "switch"]),
    normalize=st.booleans(),
    weights=WEIGHTS,
    k=st.integers(1, 4),
)
def test_ilp_equals_brute_force(solver, method, pipe, rate, sla_factor, mode, baseline, normalize, weights, k):
    p = problem_or_none(pipe, sla_factor=sla_factor, accuracy_method=method, allocation_mode=mode,
                        baseline_mode=baseline, normalize_accuracy=normalize, scaling_cap=12,
                        batching_cap=4, initial=initial_of(pipe, replicas=3), weights=weights)
    if p is None:
        return
    ref = brute(p, rate, k)
    event(f"{len(ref.candidates)} candidate(s)")
    assert_same_values(ilp(solver).optimize(p, rate, None, k), ref)


@pytest.mark.parametrize("solver", SOLVERS)
@settings(max_examples=40)
@given(
    pipe=pipelines(),
    rate=st.floats(0.5, 60),
    sla_factor=st.floats(0.3, 4),
    method=st.sampled_from(["sum", "average", "multiply"]),
    mode=st.sampled_from(["fix", "base", "variable"]),
    baseline=st.sampled_from([None, "scale", "switch"]),
    weights=WEIGHTS,
    delta=st.floats(0, 0.5),
    cap=st.one_of(st.none(), st.floats(2, 150)),
    carbon=st.one_of(st.none(), st.tuples(st.floats(0, 5), st.floats(50, 800))),
    k=st.integers(1, 4),
)
def test_energy_ilp_equals_brute_force(solver, pipe, rate, sla_factor, method, mode, baseline, weights,
                                       delta, cap, carbon, k):
    w = {**weights, "delta": delta}
    intensity = None
    if carbon is not None:
        w["epsilon"], intensity = carbon
    p = problem_or_none(pipe, sla_factor=sla_factor, accuracy_method=method, allocation_mode=mode,
                        baseline_mode=baseline, scaling_cap=12, batching_cap=4,
                        initial=initial_of(pipe, replicas=3), weights=w, power_cap_w=cap,
                        carbon_intensity_g_per_kwh=intensity)
    if p is None:
        return
    d = energy_ilp(solver).optimize(p, rate, None, k)
    ref = brute(p, rate, k)
    event(f"{len(ref.candidates)} candidate(s)")
    assert_same_values(d, ref)
    if cap is not None:
        assert all(c.power_w <= cap * (1 + 1e-9) for c in d.candidates)


@pytest.mark.parametrize("solver", SOLVERS)
@settings(max_examples=30)
@given(
    pipe=pipelines(power=False),
    negatives=st.lists(st.floats(-60, 60), min_size=1, max_size=12),
    rate=st.floats(0.5, 40),
    alpha=st.floats(-5, 5),
    k=st.integers(1, 3),
)
def test_multiply_with_factors_of_any_sign(solver, pipe, negatives, rate, alpha, k):
    """The McCormick chain is exact for negative factors too (raw accuracies may be < 0)."""
    from ipa_ext.model import Pipeline, Stage, Variant

    stages, n = [], 0
    for s in pipe.stages:
        vs = []
        for v in s.variants:
            vs.append(Variant(v.name, negatives[n % len(negatives)]))
            n += 1
        stages.append(Stage(s.name, tuple(vs), s.profiles))
    signed = Pipeline(pipe.name, tuple(stages))
    p = make_problem(signed, sla_factor=2, accuracy_method="multiply", normalize_accuracy=False,
                     allocation_mode="variable", scaling_cap=12, weights={"alpha": alpha, "beta": 0.3, "gamma": 0.01})
    assert_same_values(ilp(solver).optimize(p, rate, None, k), brute(p, rate, k))


@pytest.mark.parametrize("solver", SOLVERS)
def test_multiply_with_factors_below_solver_tolerance_is_still_exact(solver):
    """Factors 4.25 and -1.2e-7 in one stage (found by hypothesis): a product term of
    ~3e-8 of the largest is below the MILP tolerances, so the chain would pick a wrong
    configuration; the optimizer must notice and still return the exact k best."""

    rows = lambda v: [(v, 1, b, 0.5 * b, 2.0) for b in (1, 2, 4, 8)]
    spec = {
        f"s{i}": {"variants": {f"v{i}_{j}": f for j, f in enumerate(factors)},
                  "rows": [r for j in range(len(factors)) for r in rows(f"v{i}_{j}")]}
        for i, factors in enumerate([(4.25, -1.192092896e-07), (4.25, -1.192092896e-07, 4.25),
                                     (-1.192092896e-07, 4.25, -1.192092896e-07, 4.25)])
    }
    p = make_problem(make_pipeline(spec), sla_factor=2, accuracy_method="multiply",
                     normalize_accuracy=False, allocation_mode="variable", scaling_cap=12,
                     weights={"alpha": 1.0, "beta": 0.3, "gamma": 0.01})
    d = ilp(solver).optimize(p, 7.0, None, 3)
    assert_same_values(d, brute(p, 7.0, 3))
    assert d.info["product_method"] == "enumeration"


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("method", ["sum", "multiply"])
def test_video_example_matches_brute_force_and_ipa_reference(solver, method, video_problem):
    """IPA's video weights (gamma 1e-6) at many rates, one decision each, k = 5."""
    from dataclasses import replace

    from ipa_ext.problem import Problem

    p = video_problem
    if method != "sum":
        p = Problem(p.pipeline, replace(p.settings, accuracy_method=method), p.objectives)
    opt = ilp(solver)
    for rate in (0.5, 1, 7, 20, 33.3, 60, 97, 150):
        d = opt.optimize(p, rate, None, 5)
        assert_same_values(d, brute(p, rate, 5))
        assert d.info["solver"] == solver
        if rate in (7, 33.3):
            ref = ipa_states(p, rate, max_replicas=6)
            assert d.best.objective == pytest.approx(ref[0][0], rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("solver", SOLVERS)
def test_pruning_keeps_the_k_best(solver, video_problem):
    """Dominance pruning shrinks the model without changing any k-best list."""
    full, pruned = ilp(solver, prune=False), ilp(solver)
    for rate, k in ((12, 1), (12, 7), (45, 3), (45, 12)):
        a, b = pruned.optimize(video_problem, rate, None, k), full.optimize(video_problem, rate, None, k)
        assert_same_values(a, b)
        assert b.info["variables"] == b.info["options"]
        if k == 1:
            assert a.info["variables"] < a.info["options"]


@pytest.mark.parametrize("solver", SOLVERS)
def test_k_larger_than_the_feasible_set_returns_all_of_it(solver):
    p = make_problem(make_pipeline(ONE_STAGE), sla_factor=2)
    d = ilp(solver).optimize(p, 10, None, 50)
    assert_same_values(d, brute(p, 10, 50))
    assert [round(c.objective, 9) for c in d.candidates] == [-2, -3, -4, -5]  # hand-computed (test_brute_force)


@pytest.mark.parametrize("solver", SOLVERS)
def test_pool_gap_zero_keeps_only_ties_of_the_optimum(solver, video_problem):
    """IPA's Gurobi pool (PoolGap 0): the k best that tie with the optimum."""
    from dataclasses import replace

    from ipa_ext.problem import Problem

    # gamma 0: configurations that differ only in batch tie
    p = Problem(video_problem.pipeline, replace(video_problem.settings, weights={"alpha": 2, "beta": 1, "gamma": 0}),
                video_problem.objectives)
    ref = brute(p, 20, 40)
    best = ref.best.objective
    ties = [c for c in ref.candidates if abs(c.objective - best) <= 1e-9 * max(1, abs(best))]
    assert 1 < len(ties) < len(ref.candidates)
    d = ilp(solver, pool_gap=0).optimize(p, 20, None, 40)
    assert len(d.candidates) == len(ties)
    assert {c.config for c in d.candidates} == {c.config for c in ties}
    loose = ilp(solver, pool_gap=0.5).optimize(p, 20, None, 40)
    cutoff = best - 0.5 * abs(best)
    assert len(loose.candidates) == len([c for c in ref.candidates if c.objective >= cutoff - 1e-9])


@pytest.mark.parametrize("solver", SOLVERS)
def test_infeasible_returns_the_binding_reason_without_raising(solver, video_problem):
    from dataclasses import replace

    from ipa_ext.problem import Problem

    capped = Problem(video_problem.pipeline, replace(video_problem.settings, scaling_cap=2),
                     video_problem.objectives)
    d = ilp(solver).optimize(capped, 400)
    assert not d.feasible and d.best is None
    assert d.reason.startswith(
        "no feasible configuration: rate 400 rps exceeds the capacity of every variant of stage "
        "'crop' at scaling_cap 2 ("
    )
    assert d.reason == brute(capped, 400).reason
    tight = Problem(video_problem.pipeline, replace(video_problem.settings, sla_s=0.05), video_problem.objectives)
    d = ilp(solver).optimize(tight, 10)
    assert not d.feasible and "SLA 0.05 s cannot be met" in d.reason
    capped_power = Problem(video_problem.pipeline, replace(video_problem.settings, power_cap_w=5.0),
                           video_problem.objectives)
    d = energy_ilp(solver).optimize(capped_power, 10)
    assert d.reason == "no feasible configuration: no configuration meeting the SLA stays under power_cap_w 5 W"


@pytest.mark.parametrize("solver", SOLVERS)
def test_ilp_is_ipas_objective_and_says_what_it_ignores(solver, video_problem):
    from dataclasses import replace

    from ipa_ext.problem import Problem

    s = video_problem.settings
    energetic = Problem(video_problem.pipeline, replace(s, weights={**s.weights, "delta": 1.0}, power_cap_w=33.0),
                        video_problem.objectives)
    d = ilp(solver).optimize(energetic, 30, None, 3)
    assert d.info["notes"] == ["ilp optimizes IPA's objective and ignores delta 1, power_cap_w 33; use energy-ilp"]
    assert d.info["weights"]["delta"] == 0 and d.info["power_cap_w"] is None
    assert_same_values(d, brute(video_problem, 30, 3))  # the problem without energy terms
    for c in d.candidates:
        assert c.weighted["energy"] == 0 and c.terms["energy"] > 0  # reported, not weighted
    e = energy_ilp(solver).optimize(energetic, 30, None, 3)
    assert "notes" not in e.info and e.info["weights"]["delta"] == 1
    assert_same_values(e, brute(energetic, 30, 3))
    assert e.best.terms["energy"] <= 33 < d.best.terms["energy"]


@pytest.mark.parametrize("solver", SOLVERS)
def test_energy_ilp_options_override_the_config(solver, video_problem):
    from dataclasses import replace

    from ipa_ext.problem import Problem

    opt = energy_ilp(solver, delta=0.5, power_cap_w=30, epsilon=2.0, carbon_intensity_g_per_kwh=400)
    d = opt.optimize(video_problem, 30, None, 2)
    s = video_problem.settings
    same = Problem(video_problem.pipeline,
                   replace(s, weights={**s.weights, "delta": 0.5, "epsilon": 2.0}, power_cap_w=30,
                           carbon_intensity_g_per_kwh=400.0),
                   video_problem.objectives)
    assert_same_values(d, brute(same, 30, 2))
    assert d.best.terms["carbon"] == pytest.approx(d.best.terms["energy"] * 400 / 3.6e6)
    assert d.info["weights"]["epsilon"] == 2.0 and d.info["power_cap_w"] == 30


def test_power_cap_without_power_profiles_is_a_config_error():
    no_power = {"A": {**ONE_STAGE["A"], "rows": [r[:5] for r in ONE_STAGE["A"]["rows"]]}}
    p = make_problem(make_pipeline(no_power), sla_factor=2, power_cap_w=10)
    with pytest.raises(ConfigError, match="power_cap_w: a power cap needs power_w or energy_j_per_request"):
        energy_ilp(SOLVERS[0]).optimize(p, 10)


def test_bad_options_are_value_errors():
    for bad in ({"solver": "gurobi"}, {"time_limit_s": 0}, {"prune": "yes"}, {"pool_gap": -1}):
        with pytest.raises(ValueError):
            ilp(**{"solver": "auto", **bad})
    for bad in ({"delta": -1}, {"power_cap_w": 0}, {"epsilon": "high"}):
        with pytest.raises(ValueError):
            energy_ilp("auto", **bad)


def test_no_pulp_deprecation_warnings(video_problem):
    """PuLP 3.x warns about APIs PuLP 4 removes; the model avoids them."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        for solver in SOLVERS:
            assert ilp(solver).optimize(video_problem, 20, None, 3).feasible


@pytest.mark.parametrize("solver", SOLVERS)
def test_switch_and_scale_baselines_use_the_current_configuration(solver, video_problem):
    current = (StageConfig("yolov5m", 2.0, 1, 4), StageConfig("resnet50", 1.0, 2, 3))
    from dataclasses import replace

    from ipa_ext.problem import Problem

    for mode in ("scale", "switch"):
        p = Problem(video_problem.pipeline, replace(video_problem.settings, baseline_mode=mode),
                    video_problem.objectives)
        for rate in (5, 25):
            d = ilp(solver).optimize(p, rate, current, 3)
            assert_same_values(d, brute(p, rate, 3, current))
            for c in d.candidates:
                if mode == "scale":
                    assert [s.variant for s in c.config] == ["yolov5m", "resnet50"]
                else:
                    assert [s.replicas for s in c.config] == [4, 3]


def test_decisions_are_independent_of_the_order_they_are_asked_in(video_problem):
    """The per-problem caches (choices, derived problems) never leak between rates."""
    opt = ilp(SOLVERS[0])
    rates = [3, 40, 11, 3, 77, 40]
    first = [opt.optimize(video_problem, r).best.config for r in rates]
    again = [ilp(SOLVERS[0]).optimize(video_problem, r).best.config for r in reversed(rates)]
    assert first == list(reversed(again))


def test_a_non_additive_plugin_objective_is_refused_by_name(video_problem):
    """Only the accuracy product has an exact linear model; another non-additive term is a
    config error naming its weight (brute force still handles it)."""
    from ipa_ext.objectives import Objective
    from ipa_ext.problem import Problem

    class Bottleneck(Objective):  # the least accurate stage
        name, weight, sense = "bottleneck", "zeta", +1

        def stage_value(self, problem, option, rate_rps):
            return option.accuracy

        def combine(self, problem, values):
            return min(values)

        def is_additive(self, problem):
            return False

    from dataclasses import replace

    s = video_problem.settings
    p = Problem(video_problem.pipeline, replace(s, weights={**s.weights, "zeta": 1.0}),
                (*video_problem.objectives, Bottleneck()))
    assert brute(p, 20).feasible
    for solver in SOLVERS:
        with pytest.raises(ConfigError, match="weights.zeta: objective 'bottleneck' is not additive"):
            ilp(solver).optimize(p, 20)



def _inverse_batch_product(declared: bool):
    """A third-party objective (not a built-in class): the product over stages of 1/batch,
    maximised with weight ``zeta``; ``declared`` says whether it declares itself a product term."""
    import math

    from ipa_ext.objectives import Objective

    class InverseBatchProduct(Objective):
        name = "inverse_batch_product"
        weight = "zeta"
        sense = +1

        def stage_value(self, problem, option, rate_rps):
            return 1.0 / option.batch

        def combine(self, problem, values):
            return float(math.prod(values))

        def is_additive(self, problem):
            return False

        def is_product(self, problem):
            return declared

    return InverseBatchProduct()


@pytest.mark.parametrize("solver", SOLVERS)
@settings(max_examples=15, deadline=None)
@given(pipe=pipelines(power=False), rate=st.floats(0.5, 30), zeta=st.floats(0.5, 20), k=st.integers(1, 3))
def test_a_plugin_objective_declaring_a_product_is_modelled_exactly(solver, pipe, rate, zeta, k):
    """ilp takes "product term" from the objective's own declaration, not from a built-in class:
    a third-party product objective reaches brute force's optimum."""
    from ipa_ext.problem import Problem, Settings
    from support.problems import objectives

    p = Problem(pipe, Settings(allocation_mode="variable", sla_factor=2, scaling_cap=12,
                               weights={"alpha": 0.0, "beta": 0.3, "gamma": 0.0, "zeta": zeta}),
                [*objectives(), _inverse_batch_product(True)])
    assert_same_values(ilp(solver).optimize(p, rate, None, k), brute(p, rate, k))


def test_an_objective_neither_additive_nor_a_product_is_refused():
    from ipa_ext.problem import Problem, Settings
    from support.problems import objectives

    pipe = make_pipeline(ONE_STAGE)
    p = Problem(pipe, Settings(weights={"zeta": 1.0}), [*objectives(), _inverse_batch_product(False)])
    with pytest.raises(ConfigError, match=r"weights.zeta: objective 'inverse_batch_product' is not additive"):
        ilp(SOLVERS[0]).optimize(p, 10.0)


def test_ilp_and_energy_ilp_share_the_core_model_and_not_each_other():
    from ipa_ext.optimize.milp import SelectionOptimizer
    from ipa_ext_plugins.optimizers.energy_ilp import EnergyIlpOptimizer
    from ipa_ext_plugins.optimizers.ilp import IlpOptimizer

    assert issubclass(IlpOptimizer, SelectionOptimizer) and issubclass(EnergyIlpOptimizer, SelectionOptimizer)
    assert not issubclass(EnergyIlpOptimizer, IlpOptimizer)
