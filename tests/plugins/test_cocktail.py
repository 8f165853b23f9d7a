"""The ``cocktail`` policy: ensembles per stage at the least cost that reaches the target accuracy,
checked against an independent exhaustive search, and its ``ipa-ext optimize`` output."""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipa_ext.errors import ConfigError
from ipa_ext.problem import Problem, within
from ipa_ext.problem.ensemble import ACCURACY_MODEL, EnsembleOption
from ipa_ext.problem.mix import StageEnsemble, stage_members

from support.cli import assert_one_line_error, run_cli
from support.paths import VIDEO
from support.problems import make_pipeline, make_problem, pipelines, vote_by_outcomes

CONFIG = str(VIDEO / "config.yaml")


def cocktail(host, **opts):
    return host.registry.create("optimizer", "cocktail", opts)


def brute_keys(problem: Problem, rate, max_members=3, targets=None):
    """Every feasible configuration of ensembles, ranked as cocktail ranks: (-capped, cost, cores, -accuracy)."""
    s = problem.settings
    product = s.accuracy_method == "multiply"
    costs = [(o, s.weight(o.weight)) for o in problem.active_objectives if o.sense < 0]
    per_stage = []
    for i, stage in enumerate(problem.pipeline.stages):
        target = (targets[i] if targets else max(v.accuracy for v in stage.variants)) / 100
        by_variant = {}
        for o in problem.stage_options(i, rate):
            by_variant.setdefault(o.variant, []).append(o)
        ens = []
        for size in range(1, max_members + 1):
            for subset in itertools.combinations(sorted(by_variant), size):
                acc = vote_by_outcomes([stage.variant(v).accuracy / 100 for v in subset]) if size > 1 else \
                    stage.variant(subset[0]).accuracy / 100
                for ms in itertools.product(*(by_variant[v] for v in subset)):
                    ens.append((max(m.latency_s for m in ms),
                                sum(m.profile.power_at(rate, m.replicas) for m in ms) if s.power_cap_w else 0,
                                sum(w * o.stage_value(problem, m, rate) for m in ms for o, w in costs),
                                sum(m.cores for m in ms), min(acc, target), acc))
        per_stage.append(ens)
    keys = []
    for combo in itertools.product(*per_stage):
        if not within(sum(c[0] for c in combo), problem.sla_s):
            continue
        if s.power_cap_w and not within(sum(c[1] for c in combo), s.power_cap_w):
            continue
        comb = math.prod if product else sum
        keys.append(rounded((-comb(c[4] for c in combo), sum(c[2] for c in combo), sum(c[3] for c in combo),
                             -comb(c[5] for c in combo))))
    return sorted(keys)


def rounded(key):
    """A ranking key to 12 significant digits: values equal but for rounding tie (as in cocktail)."""
    return tuple(float(f"{x:.12g}") for x in key)


def key_of(problem: Problem, ev, targets=None):
    s = problem.settings
    comb = math.prod if s.accuracy_method == "multiply" else sum
    accs, capped = [], []
    for i, o in enumerate(ev.options):
        stage = problem.pipeline.stages[i]
        t = (targets[i] if targets else max(v.accuracy for v in stage.variants)) / 100
        accs.append(o.accuracy_pct / 100)
        capped.append(min(o.accuracy_pct / 100, t))
    cost = sum(s.weight(o.weight) * ev.terms[o.name] for o in problem.active_objectives if o.sense < 0)
    return rounded((-comb(capped), cost, sum(o.cores for o in ev.options), -comb(accs)))


def same_key(a, b):
    return all(x == pytest.approx(y, rel=1e-9, abs=1e-12) for x, y in zip(a, b))


@st.composite
def graded(draw):
    """1-2 stages of 4 variants where accuracy costs compute, so that an ensemble of cheap variants
    often beats the most accurate one (random pipelines seldom make an ensemble worth it)."""
    spec = {}
    for si in range(draw(st.integers(1, 2))):
        accs = sorted(draw(st.lists(st.floats(70, 80), min_size=4, max_size=4)))
        variants = {f"v{si}_{j}": round(a, 2) for j, a in enumerate(accs)}
        cpus = draw(st.sampled_from([(1,), (1, 2)]))
        rows = []
        for j, v in enumerate(variants):
            base = 0.01 * draw(st.floats(3.0, 8.0)) ** j
            for c in cpus:
                for b in draw(st.sampled_from([(1,), (1, 2)])):
                    lat = base * b ** 0.8 / c ** 0.7
                    rows.append((v, c, b, round(lat, 6), round(b / lat, 4), float(c), round(base * 10, 4)))
        spec[f"s{si}"] = {"variants": variants, "rows": rows}
    return make_pipeline(spec)


def in_order(a, b):
    """``a`` ranks no later than ``b``, keys within rounding (1e-9) counting as equal."""
    for x, y in zip(a, b):
        if x != pytest.approx(y, rel=1e-9, abs=1e-12):
            return x < y
    return True


small = st.one_of(graded(), graded(), pipelines(max_stages=2, max_variants=3, max_cpus=2, max_batches=2))


@settings(max_examples=40)
@given(small, st.floats(1, 60), st.sampled_from(["sum", "average", "multiply"]), st.booleans(),
       st.sampled_from([(1.0, 0.0), (1.0, 0.02), (0.0, 0.5)]), st.sampled_from([None, 1.5, 0.0]),
       st.integers(1, 3), st.sampled_from([None, 40.0, 70.0, 90.0]), st.sampled_from([0.15, 0.4, 1.5]))
def test_the_k_best_equal_an_exhaustive_search(host, pipeline, rate, method, normalize, betas, cap_factor, k,
                                               target, sla):
    beta, delta = betas
    opts = {} if target is None else {"target_accuracy": target}
    targets = None if target is None else [target] * len(pipeline.stages)
    problem = make_problem(pipeline, sla_s=sla, allocation_mode="variable", threshold=0,
                           accuracy_method=method, normalize_accuracy=normalize,
                           weights={"alpha": 1.0, "beta": beta, "gamma": 1e-3, "delta": delta})
    if cap_factor:
        probe = cocktail(host, **opts).optimize(problem, rate)
        if probe.feasible:
            problem = Problem(pipeline, replace(problem.settings, power_cap_w=probe.best.power_w * cap_factor),
                              problem.objectives)
    d = cocktail(host, **opts).optimize(problem, rate, k=k)
    want = brute_keys(problem, rate, targets=targets)
    assert d.feasible == bool(want)
    if not want:
        return
    got = [key_of(problem, ev, targets) for ev in d.candidates]
    assert len(got) == min(k, len(want))
    for g, w in zip(got, want):
        assert same_key(g, w), (g, w)
    for ev in d.candidates:
        assert ev.feasible and within(ev.latency_s, problem.sla_s)
        assert all(isinstance(o, EnsembleOption) and isinstance(c, StageEnsemble)
                   for o, c in zip(ev.options, ev.config))
        assert ev.terms["cost"] == pytest.approx(sum(m.cores for o in ev.options for m in o.members))


def test_video_reaches_the_best_variant_cheaper_with_an_ensemble(host, video_problem):
    d = cocktail(host).optimize(video_problem, 20)
    assert d.feasible and d.info["accuracy_model"] == ACCURACY_MODEL == "modelled (independent errors, majority vote)"
    assert d.info["target_met"] and d.info["target_accuracy_pct"] == {"crop": 68.9, "classification": 78.31}
    ev = d.best
    cls = ev.config[1]
    assert len(stage_members(cls)) > 1 and "resnet152" not in [m.variant for m in stage_members(cls)]
    assert d.info["stage_accuracy_pct"]["classification"] >= 78.31
    # it costs less than the best single variant sized for the rate, which also reaches the target
    single = cocktail(host, max_members=1).optimize(video_problem, 20)
    assert [m.variant for m in stage_members(single.best.config[1])] == ["resnet152"]
    assert ev.options[1].cores < single.best.options[1].cores
    # terms: every member's cores and watts, at the full rate
    members = [m for o in ev.options for m in o.members]
    assert ev.terms["cost"] == sum(m.cores for m in members)
    assert ev.terms["power"] == pytest.approx(sum(m.profile.power_at(20, m.replicas) for m in members))
    assert ev.latency_s == sum(max(m.latency_s for m in o.members) for o in ev.options)


def test_an_unreachable_target_gives_the_most_accurate_feasible_and_says_so(host):
    pipe = make_pipeline({"A": {"variants": {"a": 60.0, "b": 62.0},
                                "rows": [("a", 1, 1, 0.1, 20.0, 1.0, 0.5), ("b", 1, 1, 0.1, 20.0, 1.0, 0.5)]}})
    problem = make_problem(pipe, sla_s=1.0, allocation_mode="variable", threshold=0)
    d = cocktail(host, target_accuracy=90).optimize(problem, 10)
    assert d.feasible and not d.info["target_met"]
    assert d.best.config[0].variant == "b"  # a pair is worth its better member: b alone
    assert "no feasible ensembles reach every stage's target accuracy" in d.info["notes"][0]
    assert "A 62 % < 90 %" in d.info["notes"][0]
    low = cocktail(host, target_accuracy={"A": 55}).optimize(problem, 10)
    assert low.info["target_met"] and low.best.config[0].variant in ("a", "b")
    assert low.best.options[0].cores == 1


@pytest.mark.parametrize("opts, message", [
    ({"max_members": 0}, "max_members must be >= 1"),
    ({"max_members": 2.5}, "max_members must be a whole number"),
    ({"target_accuracy": 120}, "target_accuracy must be <= 100"),
    ({"target_accuracy": "high"}, "target_accuracy: expected a number"),
    ({"target_accuracy": {}}, "empty mapping"),
])
def test_bad_options_are_config_errors(host, opts, message):
    with pytest.raises(ConfigError, match=message):
        cocktail(host, **opts)


def test_pipeline_dependent_mistakes_are_config_errors(host, video_problem):
    with pytest.raises(ConfigError, match="no stage 'detect' in pipeline 'video'") as err:
        cocktail(host, target_accuracy={"detect": 50}).optimize(video_problem, 20)
    assert err.value.where == "optimizer.options.target_accuracy"
    pipe = make_pipeline({"A": {"variants": {"a": 60.0, "b": 130.0},
                                "rows": [("a", 1, 1, 0.1, 20.0), ("b", 1, 1, 0.1, 20.0)]}})
    problem = make_problem(pipe, sla_s=1.0, allocation_mode="variable", threshold=0)
    with pytest.raises(ConfigError, match="variant 'b' has accuracy 130; use accuracies in 0..100"):
        cocktail(host).optimize(problem, 10)
    assert cocktail(host, max_members=1).optimize(problem, 10).best.config[0].variant == "b"


def test_a_large_k_lists_at_most_the_limit(host, video_problem):
    from ipa_ext_plugins.optimizers.cocktail import LIST_LIMIT

    d = cocktail(host).optimize(video_problem, 30, k=10**6)
    assert len(d.candidates) == LIST_LIMIT
    keys = [key_of(video_problem, ev) for ev in d.candidates]
    assert all(in_order(a, b) for a, b in zip(keys, keys[1:]))
    assert len({ev.config for ev in d.candidates}) == LIST_LIMIT
    assert same_key(keys[0], key_of(video_problem, cocktail(host).optimize(video_problem, 30).best))


def test_cli_prints_the_members_and_the_model():
    r = run_cli("optimize", CONFIG, "--rate", "20", "--optimizer", "cocktail")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "  + member" in out
    line = next(x for x in out.splitlines() if x.startswith("ensemble classification: "))
    assert "every member serves every request" in line and ACCURACY_MODEL in line
    assert "latency = the slowest member's" in line and "cores = the sum" in line
    acc = next(x for x in out.splitlines() if x.startswith("accuracy "))
    assert "classification resnet" in acc and "+resnet" in acc


def test_cli_json_carries_the_members():
    r = run_cli("optimize", CONFIG, "--rate", "20", "--optimizer", "cocktail:max_members=3", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert d["optimizer"] == "cocktail" and d["info"]["accuracy_model"] == ACCURACY_MODEL
    cls = d["stages"][1]
    assert cls["accuracy_model"] == ACCURACY_MODEL and cls["accuracy_pct"] >= 78.31
    assert len(cls["members"]) > 1 and cls["cores"] == sum(m["cores"] for m in cls["members"])
    assert cls["latency_s"] == max(m["latency_s"] for m in cls["members"])
    assert {"variant", "cpu", "batch", "replicas", "capacity_rps"} <= set(cls["members"][0])


@pytest.mark.parametrize("spec, field", [
    ("cocktail:max_members=0", "max_members must be >= 1"),
    ("cocktail:target_accuracy=-3", "target_accuracy must be > 0"),
    ("cocktail:colour=red", "unknown option 'colour'"),
])
def test_cli_bad_options_are_one_line_errors(spec, field):
    r = run_cli("optimize", CONFIG, "--rate", "20", "--optimizer", spec)
    assert_one_line_error(r, field)
