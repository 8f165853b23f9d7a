"""Built-in objectives: values, linear coefficients and availability."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings, strategies as st

from ipa_ext.model import StageConfig

from support.problems import make_pipeline, make_problem, pipelines
from support.problems import ONE_STAGE


def by_name(problem):
    return {o.name: o for o in problem.objectives}


def test_carbon_is_power_times_intensity():
    p = make_problem(make_pipeline(ONE_STAGE), carbon_intensity_g_per_kwh=360.0,
                     weights={"epsilon": 1000})
    ev = p.evaluate((StageConfig("a1", 1.0, 1, 1),), 10)   # power 1 + 10*0.5 = 6 W
    assert ev.terms["energy"] == pytest.approx(6.0)
    assert ev.terms["carbon"] == pytest.approx(6.0 * 360 / 3.6e6)
    assert ev.weighted["carbon"] == pytest.approx(1000 * 6.0 * 360 / 3.6e6)


def test_carbon_unavailable_without_intensity():
    p = make_problem(make_pipeline(ONE_STAGE))
    assert "carbon intensity" in by_name(p)["carbon"].unavailable_reason(p)
    assert "carbon" not in p.evaluate((StageConfig("a1", 1.0, 1, 1),), 10).terms


@settings(max_examples=40, deadline=None)
@given(pipe=pipelines(max_stages=3), method=st.sampled_from(["sum", "average", "multiply"]),
       rate=st.floats(0.1, 50), data=st.data())
def test_additive_objectives_coefficients_sum_to_value(pipe, method, rate, data):
    p = make_problem(pipe, accuracy_method=method, allocation_mode="variable",
                     carbon_intensity_g_per_kwh=250.0)
    options = [data.draw(st.sampled_from(
        [p.make_option(i, v, c, b, data.draw(st.integers(1, 5)), rate) for (v, c, b) in p.stage_choices(i, None)]
    )) for i in range(len(pipe.stages))]
    for obj in p.objectives:
        value = obj.combine(p, [obj.stage_value(p, o, rate) for o in options])
        if obj.is_additive(p):
            assert math.isclose(sum(obj.coefficient(p, o, rate) for o in options), value,
                                rel_tol=1e-12, abs_tol=1e-12)
        else:
            assert obj.name == "accuracy" and method == "multiply"


def test_power_is_the_canonical_name_and_energy_its_alias():
    """The watts term is named ``power``; ``energy`` (its former name) looks up the same value
    in terms and weighted terms, and ``EnergyObjective`` is the same class; output names ``power`` only."""
    import json

    from ipa_ext_plugins.objectives.builtin import EnergyObjective, PowerObjective

    assert EnergyObjective is PowerObjective and PowerObjective.aliases == ("energy",)
    p = make_problem(make_pipeline(ONE_STAGE), weights={"delta": 0.5})
    ev = p.evaluate((StageConfig("a1", 1.0, 1, 1),), 10)   # power 1 + 10*0.5 = 6 W
    assert ev.terms["power"] == ev.terms["energy"] == ev.power_w == pytest.approx(6.0)
    assert ev.weighted["energy"] == ev.weighted["power"] == pytest.approx(3.0)
    assert "energy" in ev.terms and ev.terms.get("energy") == ev.terms["power"]
    assert "energy" not in dict(ev.terms) and "energy" not in json.loads(json.dumps(ev.terms))
    assert "nope" not in ev.terms and ev.terms.get("nope") is None
    with pytest.raises(KeyError):
        ev.terms["nope"]
