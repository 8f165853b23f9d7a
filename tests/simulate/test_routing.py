"""Mixed stages (weighted routing), ensemble stages (fan-out) and drawn service times in the simulator."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.problems import make_pipeline, make_problem
from support.simulation import run_conserving
from ipa_ext.model import Pipeline, Profile, Stage, StageConfig, Variant
from ipa_ext.problem.mix import StageEnsemble, StageMix
from ipa_ext.problem.ensemble import ensemble_accuracy_pct, ensemble_score
from ipa_ext.simulate.model import build_model
from ipa_ext.simulate.simulator import PipelineSimulator

# v: 80 %, 0.1 s per batch, 10 rps per replica, idle 2 W, 0.5 J/request;
# w: 90 %, 0.2 s, 5 rps, idle 3 W, 1 J/request (as in test_simulator.py)
ONE = make_pipeline({"s": {"variants": {"v": 80.0, "w": 90.0, "u": 70.0},
                           "rows": [("v", 1, 1, 0.1, 10.0, 2.0, 0.5),
                                    ("w", 1, 1, 0.2, 5.0, 3.0, 1.0),
                                    ("u", 1, 1, 0.05, 20.0, 1.0, 0.25),
                                    ("v", 1, 4, 0.3, 12.0, 2.0, 0.4)]}})
V = StageConfig("v", 1.0, 1, 1)
W = StageConfig("w", 1.0, 1, 1)
U = StageConfig("u", 1.0, 1, 1)


def problem(sla_s: float = 0.9, pipeline=ONE):
    return make_problem(pipeline, sla_s=sla_s, allocation_mode="variable", threshold=0)


def test_a_mix_routes_each_second_by_the_shares_and_each_part_keeps_its_latency():
    sim = PipelineSimulator(problem(), (StageMix.of([(V, 3), (W, 1)]),))
    tot = sim.run([8, 4, 8])
    assert [r.weight for r in sim.active.routes] == [0.75, 0.25]
    assert sim.series.route_served == {0: (6.0, 2.0), 1: (3.0, 1.0), 2: (6.0, 2.0)}
    assert list(sim.series.cols["latency_max_s"]) == pytest.approx([0.2, 0.2, 0.2])  # w's part
    assert list(sim.series.cols["latency_sum_s"]) == pytest.approx([6 * 0.1 + 2 * 0.2, 3 * 0.1 + 1 * 0.2, 1.0])
    assert sim.histogram.quantile(0.5) == pytest.approx(0.1, abs=2 * sim.histogram.width_s)
    assert tot.acc_pct_sum / tot.served == pytest.approx(82.5)
    # energy per part: idle of both parts, then 0.5 J per request on v and 1 J on w
    assert sim.series.energy_j(0) == pytest.approx(2 + 3 + 6 * 0.5 + 2 * 1.0)
    assert tot.stage_energy_j == pytest.approx([3 * 5 + 15 * 0.5 + 5 * 1.0])
    assert tot.stage_busy_cpu_s == pytest.approx([15 * 0.1 + 5 * 0.2])


def test_an_overloaded_part_drops_while_the_other_serves_everything():
    sim = PipelineSimulator(problem(), (StageMix.of([(V, 1), (W, 1)]),))
    tot = sim.run([16] * 10)
    per_route = [sim.series.route_served[i] for i in range(10)]
    assert all(v == pytest.approx(8.0) for v, _ in per_route)  # v: 8 of its 10 rps
    assert all(w <= 5.0 + 1e-9 for _, w in per_route) and per_route[-1][1] == pytest.approx(5.0)
    assert tot.dropped > 0 and tot.served < 160
    # accuracy is weighted by the requests each part actually served, not by the shares
    v_served = sum(v for v, _ in per_route)
    w_served = sum(w for _, w in per_route)
    assert tot.acc_pct_sum / tot.served == pytest.approx((80 * v_served + 90 * w_served) / (v_served + w_served))
    assert tot.acc_pct_sum / tot.served < 85.0
    assert tot.arrivals == pytest.approx(tot.served + tot.dropped + sim.queued)


def test_a_one_part_mix_gives_exactly_the_plain_numbers():
    def once(cfg):
        sim = PipelineSimulator(problem(), cfg, reconfiguration_delay_s=1)
        sim.run([3, 25, 7, 0, 12])
        sim.schedule((StageConfig("v", 1.0, 4, 2),))
        sim.run([14, 40, 9, 30])
        return ({k: list(c) for k, c in sim.series.cols.items()}, sim.totals, sim.histogram.counts())

    assert build_model(problem(), (StageMix.of([(V, 1.0)]),)).routes == ()
    assert once((StageMix.of([(V, 1.0)]),)) == once((V,))


def test_two_stages_route_over_every_combination_of_parts():
    two = make_pipeline({"a": {"variants": {"v": 80.0, "w": 90.0},
                               "rows": [("v", 1, 1, 0.1, 10.0, 2.0, 0.5), ("w", 1, 1, 0.2, 5.0, 3.0, 1.0)]},
                         "b": {"variants": {"x": 60.0},
                               "rows": [("x", 1, 2, 0.1, 20.0, 1.0, 0.1)]}})
    cfg = (StageMix.of([(V, 0.6), (W, 0.4)]), StageConfig("x", 1.0, 2, 1))
    m = build_model(problem(2.0, two), cfg)
    assert [r.weight for r in m.routes] == pytest.approx([0.6, 0.4])
    # stage b's 20 rps are shared by load: 12 for v's requests, 8 for w's; w's own part serves 5
    assert [r.capacity_rps for r in m.routes] == pytest.approx([10.0, 5.0])
    assert m.capacity_rps == pytest.approx(min(10 / 0.6, 5 / 0.4))
    sim = PipelineSimulator(problem(2.0, two), cfg, max_batch_wait_s=10)
    sim.run([10])
    # stage b fills its batch of 2 at the whole stage's 10 rps: 0.05 s on every route
    assert sim.series.cols["latency_sum_s"][0] == pytest.approx(6 * (0.1 + 0.1 + 0.05) + 4 * (0.2 + 0.1 + 0.05))


def test_an_ensemble_waits_for_its_slowest_member_and_pays_for_every_member():
    sim = PipelineSimulator(problem(), (StageEnsemble.of([W, V]),))
    tot = sim.run([4, 4])
    assert list(sim.series.cols["latency_max_s"]) == pytest.approx([0.2, 0.2])
    assert tot.served == pytest.approx(8)
    assert tot.stage_energy_j == pytest.approx([2 * (2 + 3) + 8 * (0.5 + 1.0)])
    assert tot.stage_busy_cpu_s == pytest.approx([8 * (0.1 + 0.2)])
    assert tot.stage_core_s == [4.0]
    # two members: a tie goes to the more accurate one
    assert tot.acc_pct_sum / tot.served == pytest.approx(90.0)


def test_an_ensemble_drops_what_its_slowest_member_drops():
    ens = PipelineSimulator(problem(), (StageEnsemble.of([W, V]),))
    alone = PipelineSimulator(problem(), (W,))
    load = [8, 12, 3, 9, 0, 7]
    a, b = ens.run(load), alone.run(load)
    assert a.dropped > 0
    assert (a.served, a.dropped, a.late, a.lat_sum) == pytest.approx((b.served, b.dropped, b.late, b.lat_sum))
    assert list(ens.series.cols["dropped"]) == pytest.approx(list(alone.series.cols["dropped"]))


def test_the_simulator_scores_an_ensemble_with_the_optimizers_model():
    """The simulator's accuracy of an ensemble is problem.ensemble's (the model cocktail decides with)."""
    for normalized in (True, False):
        prob = make_problem(ONE, sla_s=0.9, allocation_mode="variable", threshold=0, normalize_accuracy=normalized)
        ens = StageEnsemble.of([W, V, U])
        m = build_model(prob, (ens,))
        names = ["w", "v", "u"]
        assert m.accuracy_pct == pytest.approx(ensemble_accuracy_pct(ONE.stages[0], names))
        assert m.accuracy == pytest.approx(ensemble_score(prob, 0, names))
        # three members at 90, 80 and 70 %: at least two right, independently
        assert m.accuracy_pct == pytest.approx(100 * (0.9 * 0.8 * 0.7 + 0.9 * 0.8 * 0.3 + 0.9 * 0.2 * 0.7
                                                      + 0.1 * 0.8 * 0.7))


def spread_problem() -> tuple:
    # p99 0.3 s and p50 0.1 s per batch; 100 rps, so no request waits
    rows = {("v", 1.0, 1): Profile("s", "v", 1.0, 1, 0.3, 100.0, None, 1.0, 0.1, 0.1),
            ("v", 1.0, 2): Profile("s", "v", 1.0, 2, 0.3, 100.0, None, 1.0, 0.1)}
    pipe = Pipeline("p", (Stage("s", (Variant("v", 80.0),), rows),))
    return problem(2.0, pipe), (StageConfig("v", 1.0, 1, 1),)


def test_drawn_service_times_have_the_profiles_median_and_p99():
    prob, cfg = spread_problem()
    sim = PipelineSimulator(prob, cfg, seed=3)
    tot = sim.run([5] * 2000)
    h = sim.histogram
    assert h.quantile(0.5) == pytest.approx(0.1, rel=0.05)
    assert h.quantile(0.99) == pytest.approx(0.3, rel=0.08)
    assert tot.served == pytest.approx(10000)
    assert tot.late == pytest.approx(0.0)
    # seeded: the same seed gives the same draws, another seed other ones
    again = PipelineSimulator(prob, cfg, seed=3)
    again.run([5] * 2000)
    other = PipelineSimulator(prob, cfg, seed=4)
    other.run([5] * 2000)
    assert again.histogram.counts() == h.counts() and again.totals.lat_sum == tot.lat_sum
    assert other.histogram.counts() != h.counts()


def test_profiled_service_times_and_profiles_without_a_p50_stay_deterministic():
    prob, cfg = spread_problem()
    sim = PipelineSimulator(prob, cfg, service_times="profiled")
    sim.run([5] * 50)
    assert sim.histogram.quantile(0.5) == pytest.approx(0.3) and sim.totals.lat_max == pytest.approx(0.3)
    assert build_model(prob, (StageConfig("v", 1.0, 2, 1),), spread=True).routes == ()  # that row has no p50
    with pytest.raises(ValueError, match="service_times"):
        PipelineSimulator(prob, cfg, service_times="p50")


configs = st.sampled_from([
    (V,), (W,), (StageMix.of([(V, 3), (W, 1)]),), (StageMix.of([(V, 1), (W, 1), (U, 2)]),),
    (StageEnsemble.of([W, V]),), (StageMix.of([(StageEnsemble.of([W, U]), 1), (V, 1)]),),
])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 60), min_size=1, max_size=6), configs), min_size=1, max_size=6),
       st.integers(0, 2))
def test_conservation_with_mixes_and_ensembles(chunks, delay):
    sim = PipelineSimulator(problem(0.9), (V,), reconfiguration_delay_s=delay)
    served = 0.0
    for served in run_conserving(sim, chunks):
        pass
    per_energy = sum(sim.series.energy_j(i) for i in range(len(sim.series)))
    assert per_energy == pytest.approx(sum(sim.totals.stage_energy_j), rel=1e-9)
    assert sim.totals.late <= served + 1e-6


def test_drawn_service_times_change_latencies_not_capacity_or_drops():
    prob, cfg = spread_problem()
    load = [150, 400, 20, 0, 300, 90]  # over the 100 rps capacity: a queue and drops
    drawn = PipelineSimulator(prob, cfg, seed=1)
    fixed = PipelineSimulator(prob, cfg, service_times="profiled")
    a, b = drawn.run(load), fixed.run(load)
    assert b.dropped > 0 and max(fixed.series.cols["queued"]) > 0
    assert (a.served, a.dropped) == pytest.approx((b.served, b.dropped))
    assert list(drawn.series.cols["queued"]) == pytest.approx(list(fixed.series.cols["queued"]))
    assert a.lat_sum < b.lat_sum  # medians of 0.1 s instead of 0.3 s per batch
    assert drawn.histogram.total == pytest.approx(a.served)
    assert drawn.histogram.quantile(0.5) < fixed.histogram.quantile(0.5)


def test_the_simulation_section_chooses_service_times_and_their_seed(tmp_path):
    """Measured profiles have a p50: spread draws below the p99, profiled keeps the p99, one seed repeats."""
    import json
    import shutil

    import yaml

    from support.cli import run_cli
    from support.paths import ROOT

    src = ROOT / "examples" / "video-measured"
    for name in ("pipeline.yaml", "profiles.csv"):
        shutil.copy(src / name, tmp_path / name)
    base = yaml.safe_load((src / "config.yaml").read_text())
    base["workload"] = {"type": "synthetic", "pattern": "steady", "base_rps": 4, "duration_s": 60, "seed": 0}

    def p50(name, section):
        cfg = tmp_path / f"{name}.yaml"
        cfg.write_text(yaml.safe_dump({**base, "simulation": section}))
        r = run_cli("simulate", str(cfg), "--quiet", "--out", str(tmp_path / name))
        assert r.returncode == 0, r.stderr
        return json.loads((tmp_path / name / "summary.json").read_text())["latency_s"]["p50"]

    spread, again, other = p50("a", {"seed": 1}), p50("b", {"seed": 1}), p50("c", {"seed": 2})
    profiled = p50("d", {"service_times": "profiled"})
    assert spread == again and spread < profiled and other < profiled
    r = run_cli("validate", str(_bad(tmp_path, base)))
    assert r.returncode == 2 and "simulation" in r.stderr and "service_times must be one of spread, profiled" in r.stderr, \
        r.stderr


def _bad(tmp_path, base):
    import yaml

    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump({**base, "simulation": {"service_times": "p95"}}))
    return p
