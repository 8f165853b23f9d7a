"""Baseline policies: each restricts IPA's problem as the system it mimics does."""

from __future__ import annotations

import itertools
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.problems import make_pipeline, make_problem
from ipa_ext.errors import ConfigError
from ipa_ext.problem import Problem
from ipa_ext.problem.mix import StageMix
from ipa_ext.simulate.simulator import build_model

POLICIES = ("ipa", "fa2-low", "fa2-high", "rim", "ms", "infaas", "vpa", "infadapter")


def policy(host, name, **opts):
    from ipa_ext_plugins.optimizers.baselines import VpaPolicy  # noqa: F401  (registered)

    if name not in ("vpa", "infadapter"):
        opts.setdefault("base", "brute-force")
    return host.registry.create("optimizer", name, opts)


def all_feasible(problem: Problem, rate, current=None):
    """Every feasible configuration, by exhaustive enumeration of the option lists."""
    per_stage = problem.options(rate, current)
    for combo in itertools.product(*per_stage):
        ev = problem.evaluate_options(list(combo), rate)
        if ev.feasible:
            yield ev


def test_every_policy_is_registered_and_documented(host):
    import ipa_ext_plugins.optimizers.baselines as b
    import ipa_ext_plugins.optimizers.infadapter as i

    names = host.registry.names("optimizer")
    for p in POLICIES:
        assert p in names
        assert f"\n{p} " in b.__doc__ or p == "infadapter"
    assert "any length" in i.__doc__ and "any length" in b.__doc__


def test_unknown_base_is_a_config_error(host):
    with pytest.raises(ConfigError, match="delegates to optimizer 'nope'"):
        host.registry.create("optimizer", "ipa", {"base": "nope"})


rates = st.integers(1, 120)


@settings(max_examples=15)
@given(rates)
def test_ipa_is_the_base_optimizer_without_energy_terms(host, video_problem, rate):
    s = video_problem.settings
    heavy = Problem(video_problem.pipeline, replace(s, weights={**s.weights, "delta": 5.0}),
                    video_problem.objectives)
    d = policy(host, "ipa").optimize(heavy, rate)
    ref = host.registry.create("optimizer", "brute-force").optimize(video_problem, rate)
    assert d.best.config == ref.best.config
    assert d.best.terms["energy"] == pytest.approx(ref.best.terms["energy"])


@settings(max_examples=10)
@given(rates)
def test_fa2_low_and_high_pin_variants_and_optimise_the_rest(host, video_problem, rate):
    for name, want in (("fa2-low", ("yolov5n", "resnet18")), ("fa2-high", ("yolov5s", "resnet101"))):
        d = policy(host, name).optimize(video_problem, rate)
        if not d.feasible:
            continue
        assert tuple(sc.variant for sc in d.best.config) == want
        pinned = [ev for ev in all_feasible(video_problem, rate)
                  if tuple(sc.variant for sc in ev.config) == want]
        assert d.best.objective == pytest.approx(max(ev.objective for ev in pinned))


def test_fa2_high_variants_option(host, video_problem):
    d = policy(host, "fa2-high", variants={"crop": "yolov5m"}).optimize(video_problem, 10)
    assert [sc.variant for sc in d.best.config] == ["yolov5m", "resnet101"]
    with pytest.raises(ConfigError, match="unknown variant 'x'"):
        policy(host, "fa2-high", variants={"crop": "x"}).optimize(video_problem, 10)


@settings(max_examples=10)
@given(st.integers(1, 60))
def test_rim_keeps_three_replicas_per_stage(host, video_problem, rate):
    d = policy(host, "rim").optimize(video_problem, rate)
    if d.feasible:
        assert all(sc.replicas == 3 for sc in d.best.config)
        assert d.best.feasible
    assert all(sc.replicas == 2 for sc in policy(host, "rim", replicas=2).optimize(video_problem, 5).best.config)


@settings(max_examples=10)
@given(rates)
def test_ms_never_batches(host, video_problem, rate):
    d = policy(host, "ms").optimize(video_problem, rate)
    assert d.feasible and all(sc.batch == 1 for sc in d.best.config)


@settings(max_examples=15)
@given(rates)
def test_infaas_takes_the_cheapest_configuration(host, video_problem, rate):
    d = policy(host, "infaas").optimize(video_problem, rate)
    cheapest = min(ev.terms["cost"] for ev in all_feasible(video_problem, rate))
    assert d.best.terms["cost"] == cheapest


def test_vpa_follows_usage_within_bounds(host, video_problem):
    vpa = policy(host, "vpa", history=3)
    cur = video_problem.settings.initial  # yolov5n / resnet18, 1 cpu, 1 replica
    # saturated: usage is capped at the 1-core limit, so the target is 1.15 -> the next step, 2
    d = vpa.optimize(video_problem, 200, cur)
    assert [sc.cpu for sc in d.best.config] == [2.0, 2.0]
    assert not d.best.feasible  # VPA is not SLO-aware: 1 replica cannot carry 200 rps
    # samples 1, 2: the running 2 cores lie within [p50, p95] x 1.15 = [1.73, 2.24]: no change
    d = vpa.optimize(video_problem, 200, d.best.config)
    assert [sc.cpu for sc in d.best.config] == [2.0, 2.0]
    # samples 1, 2, 2: p50 x 1.15 = 2.3 > 2, so it moves to the target p90 x 1.15 = 2.3 -> 4
    d = vpa.optimize(video_problem, 200, d.best.config)
    assert [sc.cpu for sc in d.best.config] == [4.0, 4.0]
    # light load: once the window forgets the saturation the recommendation shrinks
    for _ in range(3):
        d = vpa.optimize(video_problem, 2, d.best.config)
    assert [sc.cpu for sc in d.best.config] == [1.0, 1.0]
    assert all(sc.replicas == 1 and sc.variant in ("yolov5n", "resnet18") for sc in d.best.config)
    assert not vpa.deterministic


def test_vpa_leaves_cpu_alone_inside_the_bounds(host, video_problem):
    vpa = policy(host, "vpa", history=5)
    cur = tuple(replace(sc, cpu=2.0) for sc in video_problem.settings.initial)
    # usage per replica: 12 rps x 2 cores / 30.5 rps = 0.79 cores; x 1.15 = 0.91, far below 2
    d = vpa.optimize(video_problem, 12, cur)
    assert [sc.cpu for sc in d.best.config] == [1.0, 1.0]
    # a steady load whose target rounds to the running value keeps it
    d2 = vpa.optimize(video_problem, 12, d.best.config)
    assert d2.best.config == d.best.config


def test_infadapter_mixes_on_two_stages(host, video_problem):
    """On the video pipeline every stage gets a mix; with batching allowed, IPA's single-variant
    optimum is one of the mixes it considers, so it is never better."""
    for rate in (5, 20, 60):
        d = policy(host, "infadapter", allow_batching=True).optimize(video_problem, rate)
        assert d.feasible and all(isinstance(c, StageMix) for c in d.best.config)
        assert d.best.feasible and d.best.objective >= policy(host, "ipa").optimize(
            video_problem, rate).best.objective - 1e-9
    assert any(len(c.parts) == 2 for c in policy(host, "infadapter").optimize(video_problem, 20).best.config)


def test_infadapter_keeps_its_core_budget(host, video_problem):
    """max_cores bounds the cores of every part of every stage; below the fewest, the reason."""
    weights = {**video_problem.settings.weights, "alpha": 40.0}  # accuracy worth more cores
    problem = Problem(video_problem.pipeline, replace(video_problem.settings, weights=weights),
                      video_problem.objectives)
    free = policy(host, "infadapter").optimize(problem, 60)
    used = sum(p.cpu * p.replicas for c in free.best.config for p, _ in c.parts)
    d = policy(host, "infadapter", max_cores=used - 1).optimize(problem, 60)
    assert d.feasible and sum(p.cpu * p.replicas for c in d.best.config for p, _ in c.parts) <= used - 1
    assert d.best.objective < free.best.objective
    d = policy(host, "infadapter", max_cores=2).optimize(problem, 60)
    assert not d.feasible and "fits max_cores 2 at rate 60 rps" in d.reason
    with pytest.raises(ConfigError, match="max_cores must be > 0"):
        policy(host, "infadapter", max_cores=-4)


SINGLE = make_pipeline({"cls": {
    "variants": {"small": 70.0, "mid": 75.0, "big": 80.0},
    "rows": [("small", 1, 1, 0.05, 20.0, 2.0, 0.2), ("mid", 1, 1, 0.1, 10.0, 2.0, 0.4),
             ("big", 1, 1, 0.2, 5.0, 2.0, 0.8)],
}})


def single(**kw):
    kw.setdefault("weights", {"alpha": 10.0, "beta": 1.0, "gamma": 0.0})
    return make_problem(SINGLE, sla_s=1.0, allocation_mode="variable", threshold=0, **kw)


def test_infadapter_terms_answer_to_the_power_alias(host):
    """infadapter scores its mixes itself; its terms name the watts term power and answer to energy."""
    d = policy(host, "infadapter").optimize(single(), 12.0)
    assert d.feasible and "power" in dict(d.best.terms) and "energy" not in dict(d.best.terms)
    assert d.best.terms["energy"] == d.best.terms["power"] == d.best.power_w > 0


def brute_mix_optimum(problem, rate, max_variants=2):
    """Independent search: every set of variants and replica counts; load most accurate first."""
    acc = problem.stage_accuracies[0]
    st_ = problem.pipeline.stages[0]
    alpha, beta = problem.settings.weight("alpha"), problem.settings.weight("beta")
    names = sorted(acc, key=lambda v: -acc[v])
    best = -math.inf
    for size in range(1, max_variants + 1):
        for subset in itertools.combinations(names, size):
            thr = [st_.profile(v, 1.0, 1).throughput_rps for v in subset]
            for counts in itertools.product(*(range(1, 40) for _ in subset)):
                cap = [n * t for n, t in zip(counts, thr)]
                if sum(cap) < rate:
                    continue
                loads, rem = [], rate
                for c in cap:
                    loads.append(min(c, rem))
                    rem -= loads[-1]
                if any(l <= 0 for l in loads):
                    continue
                val = alpha * sum(l * acc[v] for l, v in zip(loads, subset)) / rate - beta * sum(counts)
                best = max(best, val)
    return best


@pytest.mark.parametrize("rate", [4, 12, 27, 41])
def test_infadapter_finds_the_best_split(host, rate):
    problem = single()
    d = policy(host, "infadapter").optimize(problem, rate)
    assert d.feasible
    mix = d.best.config[0]
    assert isinstance(mix, StageMix)
    assert sum(s for _, s in mix.parts) == pytest.approx(1.0)
    assert d.best.objective == pytest.approx(brute_mix_optimum(problem, rate))
    m = build_model(problem, d.best.config)
    assert m.capacity_rps >= rate
    # the most accurate part is filled first: only the least accurate part has spare capacity
    parts = sorted(mix.parts, key=lambda ps: -problem.stage_accuracies[0][ps[0].variant])
    for p, share in parts[:-1]:
        thr = SINGLE.stages[0].profile(p.variant, p.cpu, p.batch).throughput_rps
        assert share * rate == pytest.approx(p.replicas * thr)


@pytest.mark.parametrize("name", ["fa2-low", "fa2-high", "rim", "ms", "infaas"])
def test_baselines_do_not_weigh_energy(host, video_problem, name):
    s = video_problem.settings
    heavy = Problem(video_problem.pipeline, replace(s, weights={**s.weights, "delta": 5.0}),
                    video_problem.objectives)
    for rate in (3, 17, 45):
        a = policy(host, name).optimize(video_problem, rate)
        b = policy(host, name).optimize(heavy, rate)
        assert a.best.config == b.best.config
