"""IPA's problem semantics, checked against hand-computed values."""

from __future__ import annotations

import pytest

from ipa_ext.errors import ConfigError
from ipa_ext.model import StageConfig
from ipa_ext.problem import queue_delay_s, replicas_needed

from support.problems import ONE_STAGE, make_pipeline, make_problem


def problem(**kw):
    kw.setdefault("sla_factor", 2)
    return make_problem(make_pipeline(ONE_STAGE), **kw)


def test_sla_is_ipa_task_sla():
    # a1: batch-1 latency at its largest cpu (2) = 0.06 -> *2 = 0.12; a2: 0.20*2 = 0.40
    # task SLA = mean(0.12, 0.40) * 5 = 1.3
    p = problem()
    assert p.stage_slas_s == pytest.approx((1.3,))
    assert p.sla_s == pytest.approx(1.3)
    assert problem(sla_s=0.5).sla_s == 0.5


def test_sla_sums_over_stages():
    spec = dict(ONE_STAGE)
    spec["B"] = {"variants": {"b1": 60.0}, "rows": [("b1", 1, 1, 0.2, 5.0)]}
    p = make_problem(make_pipeline(spec), sla_factor=2)
    # B: 0.2 * 2 * 5 = 2.0
    assert p.sla_s == pytest.approx(1.3 + 2.0)


def test_normalised_and_raw_accuracy():
    assert dict(problem().stage_accuracies[0]) == {"a1": 0.0, "a2": 1.0}
    assert dict(problem(normalize_accuracy=False).stage_accuracies[0]) == {"a1": 0.5, "a2": 0.7}
    single = make_pipeline({"S": {"variants": {"only": 10.0}, "rows": [("only", 1, 1, 0.1, 10.0)]}})
    assert dict(make_problem(single).stage_accuracies[0]) == {"only": 1.0}
    three = make_pipeline({"S": {"variants": {"x": 30.0, "y": 10.0, "z": 20.0},
                                 "rows": [(v, 1, 1, 0.1, 10.0) for v in "xyz"]}})
    assert dict(make_problem(three).stage_accuracies[0]) == {"y": 0.0, "z": 0.5, "x": 1.0}


def test_base_allocation_follows_ipa_walk():
    # threshold 4: a1 sustains 2 batches at cpu 1 -> 1.
    # a2 at cpu 1 sustains 1 batch (b2: 4 rps), at cpu 2 two batches: IPA moves up one
    # step when the next cpu sustains more, so a2 gets cpu 2 (not the smallest, 1).
    assert dict(problem(threshold=4).base_allocations()[0]) == {"a1": 1.0, "a2": 2.0}
    # threshold 5: a2 sustains nothing at cpu 1 -> cpu 2
    assert dict(problem(threshold=5).base_allocations()[0]) == {"a1": 1.0, "a2": 2.0}
    # threshold 3: a2 sustains 2 at cpu 1 and 2 at cpu 2: no move up
    assert dict(problem(threshold=3).base_allocations()[0]) == {"a1": 1.0, "a2": 1.0}


def test_base_allocation_never_decreases_with_accuracy():
    rows = [
        ("lo", 1, 1, 0.1, 2.0), ("lo", 2, 1, 0.05, 5.0),   # lo needs cpu 2
        ("hi", 1, 1, 0.1, 9.0), ("hi", 2, 1, 0.05, 9.0),   # hi would do with cpu 1
    ]
    p = make_problem(make_pipeline({"S": {"variants": {"lo": 10.0, "hi": 20.0}, "rows": rows}}), threshold=4)
    assert dict(p.base_allocations()[0]) == {"lo": 2.0, "hi": 2.0}


def test_base_allocation_unreachable_threshold_is_a_config_error():
    with pytest.raises(ConfigError, match="threshold"):
        problem(threshold=7).base_allocations()


def test_queueing_term_and_replicas():
    assert queue_delay_s(1, 10) == 0
    assert queue_delay_s(4, 10) == pytest.approx(0.3)
    assert queue_delay_s(4, 0) == 0
    assert replicas_needed(10, 10) == 1
    assert replicas_needed(10.01, 10) == 2
    assert replicas_needed(0, 10) == 1


def _opts(p, rate, current=None):
    return {(o.variant, o.cpu, o.batch, o.replicas, round(o.latency_s, 9))
            for o in p.options(rate, current)[0]}


def test_options_in_base_mode():
    p = problem(threshold=4)
    assert _opts(p, 10) == {
        ("a1", 1.0, 1, 1, 0.1),
        ("a1", 1.0, 2, 1, 0.25),    # 0.15 + (2-1)/10
        ("a2", 2.0, 1, 2, 0.2),     # ceil(10/5) = 2
        ("a2", 2.0, 2, 2, 0.4),     # ceil(10/6.5) = 2, 0.3 + 0.1
    }


def test_options_in_variable_and_fix_modes():
    assert len(_opts(problem(allocation_mode="variable"), 10)) == 8
    init = (StageConfig("a1", 1.0, 1, 1),)
    fixed = _opts(problem(allocation_mode="fix", initial=init), 10)
    assert {(v, c) for v, c, *_ in fixed} == {("a1", 1.0), ("a2", 1.0)}
    with pytest.raises(ConfigError, match="initial"):
        problem(allocation_mode="fix")


def test_caps_and_sla_prune_options():
    assert {o[2] for o in _opts(problem(batching_cap=1), 10)} == {1}
    # scaling_cap 1: a2 needs 2 replicas at 10 rps
    assert {o[0] for o in _opts(problem(scaling_cap=1), 10)} == {"a1"}
    assert _opts(problem(sla_s=0.15), 10) == {("a1", 1.0, 1, 1, 0.1)}


def test_baseline_modes():
    cur = (StageConfig("a2", 2.0, 1, 1),)
    assert {o[0] for o in _opts(problem(baseline_mode="scale"), 10, cur)} == {"a2"}
    cur1 = (StageConfig("a1", 1.0, 1, 1),)
    switch = _opts(problem(baseline_mode="switch"), 10, cur1)
    # replicas pinned to 1: only a1 at cpu 1 reaches 10 rps
    assert switch == {("a1", 1.0, 1, 1, 0.1), ("a1", 1.0, 2, 1, 0.25)}


def test_evaluate_reports_terms_and_violations():
    p = problem(weights={"alpha": 10, "beta": 1, "gamma": 1, "delta": 0.5})
    ev = p.evaluate((StageConfig("a2", 2.0, 1, 2),), 10)
    assert ev.feasible
    assert ev.terms["accuracy"] == 1.0
    assert ev.terms["cost"] == 4.0
    assert ev.terms["batch"] == 1.0
    # power = replicas*idle + rate*epr = 2*2 + 10*1.5
    assert ev.terms["energy"] == pytest.approx(19.0)
    assert ev.objective == pytest.approx(10 - 4 - 1 - 0.5 * 19.0)
    bad = p.evaluate((StageConfig("a2", 2.0, 1, 1),), 10)
    assert not bad.feasible
    assert any("capacity 5 rps < rate 10 rps" in v for v in bad.violations)
    slow = problem(sla_s=0.1).evaluate((StageConfig("a2", 2.0, 1, 2),), 10)
    assert any("SLA" in v for v in slow.violations)


def test_accuracy_methods_combine_stages():
    spec = dict(ONE_STAGE)
    spec["B"] = {"variants": {"b1": 60.0, "b2": 80.0}, "rows": [("b1", 1, 1, 0.1, 50.0), ("b2", 1, 1, 0.1, 50.0)]}
    pipe = make_pipeline(spec)
    cfg = (StageConfig("a2", 2.0, 1, 2), StageConfig("b1", 1.0, 1, 1))
    raw = dict(normalize_accuracy=False, sla_factor=2)
    assert make_problem(pipe, accuracy_method="sum", **raw).evaluate(cfg, 10).terms["accuracy"] == pytest.approx(0.7 + 0.6)
    assert make_problem(pipe, accuracy_method="average", **raw).evaluate(cfg, 10).terms["accuracy"] == pytest.approx(0.65)
    assert make_problem(pipe, accuracy_method="multiply", **raw).evaluate(cfg, 10).terms["accuracy"] == pytest.approx(0.42)


def test_infeasible_reasons_name_the_binding_constraint():
    msg = problem(scaling_cap=10).explain_infeasible(1000)
    assert "rate 1000 rps exceeds the capacity of every variant of stage 'A' at scaling_cap 10" in msg
    msg = problem(sla_s=0.05).explain_infeasible(10)
    assert "SLA 0.05 s cannot be met" in msg and "0.1 s" in msg
    cur = (StageConfig("a2", 2.0, 1, 1),)
    msg = problem(baseline_mode="switch").explain_infeasible(100, cur)
    assert "pinned 1 replicas" in msg


def test_power_cap_is_a_constraint():
    p = problem(power_cap_w=10.0)
    ev = p.evaluate((StageConfig("a1", 1.0, 1, 1),), 10)   # 1 + 10*0.5 = 6 W
    assert ev.feasible
    ev = p.evaluate((StageConfig("a2", 2.0, 1, 2),), 10)   # 19 W
    assert any("power_cap_w" in v for v in ev.violations)


def test_settings_reject_bad_values():
    with pytest.raises(ConfigError, match="accuracy_method"):
        problem(accuracy_method="max")
    with pytest.raises(ConfigError, match="allocation_mode"):
        problem(allocation_mode="auto")
    with pytest.raises(ConfigError, match="baseline_mode"):
        problem(baseline_mode="both")
    with pytest.raises(ConfigError, match="scaling_cap"):
        problem(scaling_cap=0)
