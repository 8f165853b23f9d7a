"""The ``clover`` policy: least carbon under the SLA and an accuracy floor, exactly."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from ipa_ext.errors import ConfigError
from ipa_ext.problem import Problem
from ipa_ext.problem.mix import stage_parts
from ipa_ext.units import JOULES_PER_KWH

from support.cli import assert_one_line_error, run_cli
from support.paths import VIDEO
from support.problems import make_pipeline, make_problem

CONFIG = str(VIDEO / "config.yaml")


def clover(host, **opts):
    return host.registry.create("optimizer", "clover", opts)


def at(problem, ci):
    return Problem(problem.pipeline, dataclasses.replace(problem.settings, carbon_intensity_g_per_kwh=ci),
                   problem.objectives)


def cores(ev):
    return sum(p.cpu * p.replicas for sc in ev.config for p, _ in stage_parts(sc))


def test_cli_gives_a_mix_with_its_carbon():
    proc = run_cli("optimize", CONFIG, "--rate", "20", "--optimizer",
                   "clover:carbon_intensity_g_per_kwh=300:accuracy_drop=5")
    assert proc.returncode == 0, proc.stderr
    assert "share" in proc.stdout and "gCO2/s" in proc.stdout


@pytest.mark.parametrize("rate", [6, 20, 45])
def test_floor_holds_and_no_single_variant_configuration_is_cleaner(host, video_problem, rate):
    """Independent check: every single-variant, batch-1 configuration (brute force over the
    problem's options) that reaches the floor draws at least the power clover's mix draws."""
    problem = at(video_problem, 250.0)
    d = clover(host, accuracy_drop=20, max_cores=1000).optimize(problem, rate)
    assert d.feasible and d.best.feasible
    floor = d.info["accuracy_floor"]
    assert floor == pytest.approx(d.info["best_accuracy"] - 0.2)
    assert d.best.terms["accuracy"] >= floor - 1e-9
    assert d.info["carbon_g_per_s"] == pytest.approx(d.best.terms["power"] * 250.0 / JOULES_PER_KWH)
    per_stage = [[o for o in opts if o.batch == 1] for opts in problem.options(rate)]
    for combo in itertools.product(*per_stage):
        ev = problem.evaluate_options(list(combo), rate)
        if ev.feasible and ev.terms["accuracy"] >= floor:
            assert ev.terms["power"] >= d.best.terms["power"] - 1e-6


@pytest.mark.parametrize("budget", [6, 16, 32])
def test_the_budget_holds_in_both_solves(host, video_problem, budget):
    """Every decision keeps max_cores; no single-variant, batch-1 configuration within the budget
    is more accurate than the step-1 optimum, nor reaches the floor on less power."""
    problem = at(video_problem, 250.0)
    policy = clover(host, accuracy_drop=20, max_cores=budget)
    per_rate = {}
    for rate in (4, 25, 60):
        d = policy.optimize(problem, rate)
        if not d.feasible:
            assert f"max_cores {budget}" in d.reason
            continue
        per_rate[rate] = d.best.terms["accuracy"]
        assert cores(d.best) <= budget and d.info["cores"] == cores(d.best) and d.info["max_cores"] == budget
        floor, best = d.info["accuracy_floor"], d.info["best_accuracy"]
        per_stage = [[o for o in opts if o.batch == 1] for opts in problem.options(rate)]
        for combo in itertools.product(*per_stage):
            ev = problem.evaluate_options(list(combo), rate)
            if ev.feasible and sum(o.cpu * o.replicas for o in combo) <= budget:
                assert ev.terms["accuracy"] <= best + 1e-9
                if ev.terms["accuracy"] >= floor:
                    assert ev.terms["power"] >= d.best.terms["power"] - 1e-6
    assert per_rate  # a budget that never fits would test nothing


def test_a_larger_budget_is_never_less_accurate(host, video_problem):
    problem = at(video_problem, 250.0)
    best = [clover(host, max_cores=b).optimize(problem, 40).info["best_accuracy"] for b in (8, 16, 32, 64)]
    assert best == sorted(best) and best[0] < best[-1]


def test_a_budget_below_the_fewest_cores_is_infeasible_with_the_reason(host, video_problem):
    d = clover(host, max_cores=3).optimize(at(video_problem, 250.0), 60)
    assert not d.feasible and not d.candidates
    assert d.reason.startswith("no mix within the SLA fits max_cores 3 at rate 60 rps")
    assert d.info["fewest_cores"] > 3
    assert clover(host, max_cores=d.info["fewest_cores"]).optimize(at(video_problem, 250.0), 60).feasible


def test_a_larger_drop_never_costs_more_carbon(host, video_problem):
    problem = at(video_problem, 250.0)
    watts = [clover(host, accuracy_drop=drop).optimize(problem, 30).best.terms["power"] for drop in (0, 10, 40, 100)]
    assert watts == sorted(watts, reverse=True) and watts[0] > watts[-1]
    top = clover(host, accuracy_drop=0).optimize(problem, 30)
    assert top.best.terms["accuracy"] == pytest.approx(top.info["best_accuracy"], abs=1e-7)


def test_reference_intensity_loosens_the_floor_on_a_dirty_grid(host, video_problem):
    policy = clover(host, accuracy_drop=10, reference_g_per_kwh=100)
    clean = policy.optimize(at(video_problem, 50.0), 30)
    dirty = policy.optimize(at(video_problem, 400.0), 30)
    assert clean.info["accuracy_floor"] > dirty.info["accuracy_floor"]
    assert dirty.best.terms["power"] <= clean.best.terms["power"]


def test_absolute_floor(host, video_problem):
    d = clover(host, accuracy_floor=1.5).optimize(at(video_problem, 250.0), 20)
    assert d.info["accuracy_floor"] == 1.5 and d.best.terms["accuracy"] >= 1.5 - 1e-7
    d = clover(host, accuracy_floor=2.5).optimize(at(video_problem, 250.0), 20)
    assert not d.feasible and "accuracy floor 2.5" in d.reason


def test_needs_power_and_an_intensity(host, video_problem):
    bare = make_pipeline({"s": {"variants": {"a": 70.0}, "rows": [("a", 1, 1, 0.1, 10.0)]}})
    with pytest.raises(ConfigError, match="power_w or energy_j_per_request"):
        clover(host).optimize(make_problem(bare, sla_s=1.0, carbon_intensity_g_per_kwh=100.0), 5)
    proc = run_cli("optimize", CONFIG, "--rate", "20", "--optimizer", "clover")
    assert_one_line_error(proc, "carbon", "needs a carbon intensity")
    assert proc.returncode == 2


@pytest.mark.parametrize("opt, needle", [
    ("accuracy_drop=-1", "accuracy_drop must be >= 0"),
    ("accuracy_drop=abc", "accuracy_drop"),
    ("reference_g_per_kwh=100", "set accuracy_drop too"),
    ("max_variants=0", "max_variants"),
    ("max_cores=0", "max_cores must be > 0"),
    ("max_cores=many", "max_cores"),
    ("allow_batching=3", "allow_batching"),
    ("solver=gurobi", "solver must be one of"),
])
def test_bad_options_are_one_line_errors(opt, needle):
    if opt.startswith("reference"):
        opt = "accuracy_floor=1:" + opt
    proc = run_cli("optimize", CONFIG, "--rate", "20", "--optimizer", f"clover:{opt}")
    assert_one_line_error(proc, needle)
    assert proc.returncode == 2
