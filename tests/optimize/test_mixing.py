"""The core mixing model against an independent exhaustive search on small random pipelines."""

from __future__ import annotations

import dataclasses
import itertools
import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipa_ext.errors import ConfigError
from ipa_ext.optimize.mixing import MixSpec, combined_accuracy, solve_mix
from ipa_ext.problem import Problem
from ipa_ext.problem.mix import StageMix

from support.problems import make_pipeline, make_problem


def random_pipeline(seed: int, stages: int, batches=(1,)):
    rnd = random.Random(seed)
    spec = {}
    for s in range(stages):
        nv = rnd.randint(2, 3)
        cpus = [1.0] if stages == 3 else rnd.choice([[1.0], [1.0, 2.0]])
        variants = {f"v{s}{j}": round(rnd.uniform(40, 90), 2) for j in range(nv)}
        rows = []
        for v in variants:
            base = rnd.uniform(0.02, 0.2)
            for c in cpus:
                for b in batches:
                    lat = base * b ** 0.7 / c ** 0.6
                    rows.append((v, c, b, round(lat, 5), round(b / lat * rnd.uniform(0.7, 1.0), 3),
                                 round(c * rnd.uniform(1, 4), 3), round(rnd.uniform(0.2, 3), 3)))
        spec[f"s{s}"] = {"variants": variants, "rows": rows}
    return make_pipeline(spec)


def plans(problem, s, rate, maxv, fill_key):
    """Every plan of stage s: variant subsets, a (cpu, batch) each, every replica count of every
    part up to what the whole rate needs, loads filled in ``fill_key`` order (each part > 0)."""
    stage = problem.pipeline.stages[s]
    out = []
    for size in range(1, maxv + 1):
        for subset in itertools.combinations(stage.variant_names, size):
            for picks in itertools.product(*([k for k in stage.profiles if k[0] == v] for v in subset)):
                profs = [stage.profiles[k] for k in picks]
                ranges = [range(1, min(problem.settings.scaling_cap, math.ceil(rate / p.throughput_rps)) + 1)
                          for p in profs]
                for counts in itertools.product(*ranges):
                    if sum(n * p.throughput_rps for n, p in zip(counts, profs)) < rate * (1 - 1e-12):
                        continue
                    order = sorted(range(size), key=lambda i: fill_key(s, picks[i], profs[i]))
                    loads, rem = [0.0] * size, rate
                    for i in order:
                        loads[i] = min(counts[i] * profs[i].throughput_rps, rem)
                        rem -= loads[i]
                    if min(loads) <= 0:
                        continue
                    out.append((picks, profs, counts, loads))
    return out


def stage_numbers(problem, s, plan, rate):
    picks, profs, counts, loads = plan
    acc = problem.stage_accuracies[s]
    a = sum(x / rate * acc[k[0]] for k, x in zip(picks, loads))
    cores = sum(k[1] * n for k, n in zip(picks, counts))
    batch = sum(k[2] for k in picks)
    power = sum(n * p.idle_w + x * p.energy_j_per_request for p, n, x in zip(profs, counts, loads))
    latency = max(p.latency_s + (k[2] - 1) / x for k, p, x in zip(picks, profs, loads))
    return a, cores, batch, power, latency


def brute_force(problem, rate, maxv, max_cores=None):
    """The best objective over every combination of stage plans (independent of the model),
    with at most ``max_cores`` cores in all (cpu x replicas over every part)."""
    return search(problem, rate, maxv, max_cores)[0]


def search(problem, rate, maxv, max_cores=None):
    """(the best objective, the fewest cores) over every combination of stage plans meeting
    the SLA, the power cap and ``max_cores``; -inf and None when there is none."""
    w = problem.settings.weights
    method = problem.settings.accuracy_method
    n_st = len(problem.pipeline.stages)
    div = n_st if method == "average" else 1

    def coefficient(s, key, prof):  # what a unit of load earns: fill the best first
        if method == "multiply":
            return -problem.stage_accuracies[s][key[0]]
        return -(w["alpha"] * problem.stage_accuracies[s][key[0]] / rate / div
                 - w.get("delta", 0) * prof.energy_j_per_request)

    per_stage = []
    for s in range(n_st):
        rows = []
        for plan in plans(problem, s, rate, maxv, coefficient):
            a, cores, batch, power, lat = stage_numbers(problem, s, plan, rate)
            cost = -w["beta"] * cores - w["gamma"] * batch - w.get("delta", 0) * power
            rows.append((a, cost, power, lat, cores))
        per_stage.append(rows)
    best, fewest = -math.inf, None
    cap = problem.settings.power_cap_w
    for combo in itertools.product(*per_stage):
        if sum(r[3] for r in combo) > problem.sla_s * (1 + 1e-9):
            continue
        if cap is not None and sum(r[2] for r in combo) > cap * (1 + 1e-9):
            continue
        cores = sum(r[4] for r in combo)
        fewest = cores if fewest is None else min(fewest, cores)
        if max_cores is not None and cores > max_cores * (1 + 1e-9):
            continue
        accs = [r[0] for r in combo]
        acc = math.prod(accs) if method == "multiply" else sum(accs) / div
        best = max(best, w["alpha"] * acc + sum(r[1] for r in combo))
    return best, fewest


def problem_for(seed, stages, method, delta, cap, batches=(1,)):
    rnd = random.Random(seed + 1)
    pipe = random_pipeline(seed, stages, batches)
    slowest = sum(max(p.latency_s for p in st.profiles.values()) for st in pipe.stages)
    return make_problem(
        pipe, sla_s=slowest * rnd.uniform(0.6, 1.5), allocation_mode="variable", threshold=0,
        accuracy_method=method, normalize_accuracy=rnd.random() < 0.5, scaling_cap=rnd.randint(2, 6),
        weights={"alpha": rnd.uniform(1, 20), "beta": rnd.uniform(0, 1), "gamma": rnd.uniform(0, 0.1),
                 "delta": delta}, power_cap_w=cap)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 3), st.sampled_from(["sum", "average"]),
       st.sampled_from([0.0, 0.3]), st.sampled_from([None, 30.0, 60.0]), st.floats(1, 40))
def test_linear_mixing_equals_exhaustive_search(seed, stages, method, delta, cap, rate):
    """Summed or averaged accuracy, power weighted or not, with or without a power cap."""
    problem = problem_for(seed, stages, method, delta, cap)
    found, info = solve_mix(problem, rate, MixSpec(max_variants=2))
    want = brute_force(problem, rate, 2)
    if want == -math.inf:
        # the fill order finds nothing; under a power cap a free load split may still fit
        assert not found or (cap is not None and found[0].feasible)
        return
    assert found and info["method"] == "milp"
    best = found[0]
    assert best.feasible and all(isinstance(c, StageMix) and len(c.parts) <= 2 for c in best.config)
    if cap is None:
        assert best.objective == pytest.approx(want, rel=1e-6, abs=1e-6)
    else:  # under a binding cap the fill may trade accuracy for watts: the free split can win
        assert best.objective >= want - 1e-6 * max(1.0, abs(want))


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 3), st.sampled_from([None, 40.0]), st.floats(1, 40))
def test_product_mixing_equals_exhaustive_search(seed, stages, cap, rate):
    """accuracy_method multiply over 2-3 stages (power unweighted): the plan enumeration."""
    problem = problem_for(seed, stages, "multiply", 0.0, cap)
    found, info = solve_mix(problem, rate, MixSpec(max_variants=2))
    want = brute_force(problem, rate, 2)
    if want == -math.inf:
        assert not found
        return
    assert found and info["method"] == "plan enumeration" and found[0].feasible
    assert found[0].objective == pytest.approx(want, rel=1e-9, abs=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 10_000), st.floats(2, 40))
def test_batching_parts_meet_their_queueing_term_and_beat_the_greedy_fill(seed, rate):
    """With batches the queueing term (b-1)/load is convex: the tangent cuts must end with a mix
    whose every part meets it, at least as good as every most-accurate-first plan."""
    problem = problem_for(seed, 2, "sum", 0.0, None, batches=(1, 2, 4))
    found, info = solve_mix(problem, rate, MixSpec(max_variants=2, allow_batching=True))
    want = brute_force(problem, rate, 2)
    if want == -math.inf:
        return  # the free split may still find one; nothing to compare
    assert found and found[0].feasible
    assert found[0].objective >= want - 1e-6 * max(1.0, abs(want))


def cores_of(ev):
    return sum(p.cpu * p.replicas for c in ev.config for p, _ in c.parts)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000), st.integers(2, 3), st.sampled_from(["sum", "multiply"]),
       st.sampled_from([None, 40.0]), st.sampled_from([0.8, 1.0, 1.25, 1.6]), st.booleans(), st.floats(1, 40))
def test_core_budget_optimum_equals_exhaustive_search(seed, stages, method, cap, factor, free_cores, rate):
    """With max_cores (a factor of the fewest cores any mix needs; cores unweighted or not) the
    optimum is the exhaustive search's under the same budget, every mix found keeps it, and a
    budget below the fewest cores is the reason, with that figure."""
    problem = problem_for(seed, stages, method, 0.0, cap)
    if free_cores:  # accuracy alone buys cores: the budget binds
        weights = {**problem.settings.weights, "beta": 0.0}
        problem = Problem(problem.pipeline, dataclasses.replace(problem.settings, weights=weights), problem.objectives)
    fewest = search(problem, rate, 2)[1]
    budget = 4.0 if fewest is None else fewest * factor
    found, info = solve_mix(problem, rate, MixSpec(max_variants=2, max_cores=budget), k=3)
    want = brute_force(problem, rate, 2, budget)
    assert all(e.feasible and cores_of(e) <= budget * (1 + 1e-9) for e in found)
    if want == -math.inf and cap is not None:
        # the fill order finds nothing; under a power cap a free load split may still fit, and
        # may need fewer cores than the fill order's fewest
        if "reason" in info:
            assert not found and budget < info["fewest_cores"] <= (math.inf if fewest is None else fewest + 1e-9)
        return
    if want == -math.inf:
        assert not found
        if fewest is not None:  # feasible without the budget: the budget is the reason
            assert fewest > budget and info["fewest_cores"] == pytest.approx(fewest)
            assert f"max_cores {budget:g}" in info["reason"] and f"is {fewest:g}" in info["reason"]
        return
    assert found
    if cap is None or method == "multiply":
        assert found[0].objective == pytest.approx(want, rel=1e-6, abs=1e-6)
    else:  # under a binding power cap the free split can beat the fixed fill order
        assert found[0].objective >= want - 1e-6 * max(1.0, abs(want))


def test_accuracy_floor_and_k_best():
    problem = problem_for(7, 2, "sum", 0.3, None)
    best, _ = solve_mix(problem, 12.0, MixSpec(), k=3)
    assert len(best) >= 2 and best[0].objective >= best[1].objective
    assert len({tuple(c for c in e.config) for e in best}) == len(best)
    top = max(combined_accuracy(problem, [[_part(problem, s, p, sh, 12.0) for p, sh in c.parts]
                                          for s, c in enumerate(e.config)], 12.0) for e in best)
    floored, _ = solve_mix(problem, 12.0, MixSpec(accuracy_floor=top * 0.999))
    assert floored and floored[0].terms["accuracy"] >= top * 0.999 - 1e-9


def _part(problem, s, cfg, share, rate):
    from ipa_ext.optimize.mixing import MixPart

    return MixPart(s, cfg.variant, cfg.cpu, cfg.batch, cfg.replicas, share * rate)


def test_a_term_that_is_not_affine_is_refused():
    from ipa_ext.objectives import Objective

    class Squared(Objective):
        name, weight, sense = "squared", "alpha", -1

        def stage_value(self, problem, option, rate_rps):
            return option.replicas ** 2

    base = problem_for(3, 2, "sum", 0.0, None)
    objs = [o for o in base.objectives if o.name != "accuracy"] + [Squared()]
    problem = Problem(base.pipeline, base.settings, objs)
    with pytest.raises(ConfigError, match="not affine"):
        solve_mix(problem, 10.0, MixSpec())
