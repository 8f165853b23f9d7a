"""The greedy optimizer: always feasible when anything is, never worse than its start,
and compared with ipa-ext's exhaustive search on the bundled video example."""

from __future__ import annotations

import pytest
from hypothesis import given, settings, strategies as st

from ipa_ext.model import Pipeline, Profile, Stage, Variant
from ipa_ext.problem import Problem, Settings

from ipa_ext_greedy import GreedyOptimizer


def test_discovered_and_runs_on_the_video_example(ipa_ext_host, video_problem):
    assert ipa_ext_host.record("greedy").status == "loaded"
    greedy = ipa_ext_host.registry.create("optimizer", "greedy")
    exact = ipa_ext_host.registry.create("optimizer", "brute-force")
    for rate in (5, 20, 40):
        d = greedy.optimize(video_problem, rate)
        assert d.feasible and d.best.feasible
        assert d.best.objective <= exact.optimize(video_problem, rate).best.objective + 1e-9


def test_bad_option(ipa_ext_host):
    from ipa_ext.errors import ConfigError

    with pytest.raises(ConfigError, match="max_steps must be >= 0"):
        ipa_ext_host.registry.create("optimizer", "greedy", {"max_steps": -1})


@st.composite
def small_problems(draw, objectives):
    stages = []
    for s in range(draw(st.integers(1, 3))):
        variants = tuple(Variant(f"v{j}", draw(st.floats(10, 90))) for j in range(draw(st.integers(1, 3))))
        profiles = {}
        for v in variants:
            for b in (1, 2, 4):
                lat = draw(st.floats(0.01, 0.4))
                profiles[(v.name, 1.0, b)] = Profile(f"s{s}", v.name, 1.0, b, lat, b / lat)
        stages.append(Stage(f"s{s}", variants, profiles))
    settings_ = Settings(allocation_mode="variable", sla_s=draw(st.floats(0.05, 1.5)), scaling_cap=20,
                         weights={"alpha": draw(st.floats(0, 10)), "beta": 1, "gamma": 0.01})
    return Problem(Pipeline("p", tuple(stages)), settings_, objectives)


def _host():
    from ipa_ext.host import load_plugins

    return load_plugins()


HOST = _host()
OBJECTIVES = [HOST.registry.create("objective", n) for n in HOST.registry.names("objective")]


@settings(max_examples=40, deadline=None)
@given(problem=small_problems(OBJECTIVES), rate=st.floats(1, 60))
def test_feasible_whenever_brute_force_is(problem, rate):
    exact = HOST.registry.create("optimizer", "brute-force").optimize(problem, rate)
    d = GreedyOptimizer().optimize(problem, rate)
    assert d.feasible == exact.feasible
    if d.feasible:
        assert d.best.feasible
        assert d.best.objective <= exact.best.objective + 1e-9
