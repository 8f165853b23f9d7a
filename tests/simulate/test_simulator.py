"""The simulation backend's model: a hand-computed scenario, conservation, drops, delay, energy."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.problems import make_pipeline, make_problem
from support.simulation import run_conserving
from ipa_ext.model import StageConfig
from ipa_ext.simulate.simulator import PipelineSimulator

# One stage, one variant (80 %): batch 1 takes 0.1 s, one replica serves 10 rps,
# an idle replica draws 2 W and each request costs 0.5 J on top.
ONE = make_pipeline({"s": {"variants": {"v": 80.0, "w": 90.0},
                           "rows": [("v", 1, 1, 0.1, 10.0, 2.0, 0.5),
                                    ("w", 1, 1, 0.2, 5.0, 3.0, 1.0),
                                    ("v", 1, 4, 0.3, 12.0, 2.0, 0.4)]}})
V1 = (StageConfig("v", 1.0, 1, 1),)
W2 = (StageConfig("w", 1.0, 1, 2),)


def problem(sla_s: float = 0.9):
    return make_problem(ONE, sla_s=sla_s, allocation_mode="variable", threshold=0)


def test_hand_computed_three_seconds():
    """SLA 0.9 s, drop limit 1.0 s, arrivals 5, 20, 0 (worked out by hand).

    second 0: 5 arrive and are served at once: latency 0.1 s; energy 2 + 5*0.5 = 4.5 J.
    second 1: 20 arrive at 20 rps > 10 rps. The queue may hold (1.0 - 0.1) * 10 = 9
      requests; it grows at 10/s and is full at x = 0.9 s, after which arrivals are
      admitted at the service rate: admitted 18 + 1 = 19, dropped 1. The server
      serves 10 of the first 18 (arriving in [1, 1.5]); their waits grow from 0 to
      0.5 s: latencies 0.1..0.6 s. 9 stay queued. Energy 2 + 10*0.5 = 7 J.
    second 2: the 8 left of the first slice arrived over [1.5, 1.9] and leave over
      [2.0, 2.8]: waits 0.5..0.9, latencies 0.6..1.0, so those above 0.9 s, a quarter
      of them (2), are late; the last request (arrived over [1.9, 2.0]) leaves at
      2.8..2.9: latency 1.0, late. Served 9, late 3. Energy 2 + 9*0.5 = 6.5 J.
    Totals: 25 arrived = 24 served + 1 dropped; latency sum 0.5 + 3.5 + 6.4 + 1.0 = 11.4 s.
    """
    sim = PipelineSimulator(problem(0.9), V1, drop_limit_s=1.0)
    tot = sim.run([5, 20, 0])
    c = sim.series.cols
    assert list(c["served"]) == pytest.approx([5, 10, 9])
    assert list(c["dropped"]) == pytest.approx([0, 1, 0])
    assert list(c["queued"]) == pytest.approx([0, 9, 0])
    assert list(c["late"]) == pytest.approx([0, 0, 3], abs=1e-6)
    assert [sim.series.energy_j(i) for i in range(3)] == pytest.approx([4.5, 7.0, 6.5])
    assert list(c["latency_max_s"]) == pytest.approx([0.1, 0.6, 1.0])
    assert tot.arrivals == 25 and tot.served == pytest.approx(24) and tot.dropped == pytest.approx(1)
    assert tot.lat_sum == pytest.approx(11.4)
    assert tot.stage_energy_j == pytest.approx([18.0])
    assert tot.stage_core_s == [3.0]
    assert tot.stage_busy_cpu_s == pytest.approx([24 * 0.1])  # 1 core / 10 rps per request
    assert tot.acc_pct_sum / tot.served == pytest.approx(80.0)
    # median latency: 5 at 0.1 s, then the 7th of 10 spread evenly over 0.1..0.6 s
    assert sim.histogram.quantile(0.5) == pytest.approx(0.45, abs=2 * sim.histogram.width_s)


def test_drop_limit_defaults_to_the_sla_so_nothing_is_late():
    sim = PipelineSimulator(problem(0.9), V1)
    tot = sim.run([30] * 20 + [0] * 5)
    assert tot.late == pytest.approx(0, abs=1e-6)
    assert tot.dropped > 0
    assert tot.lat_max <= 0.9 + 1e-9


def test_idle_seconds_cost_idle_power_only():
    sim = PipelineSimulator(problem(), W2)
    tot = sim.run([0, 0, 0])
    assert tot.stage_energy_j == pytest.approx([3 * 2 * 3.0])  # 3 s x 2 replicas x 3 W
    assert tot.served == 0 and tot.stage_busy_cpu_s == [0.0]


def test_reconfiguration_takes_effect_after_the_delay():
    sim = PipelineSimulator(problem(), V1, reconfiguration_delay_s=2)
    sim.run([1, 1])
    assert sim.schedule(W2) == 4  # applied at t=2, effective at t=4
    sim.run([1] * 4)
    idx = list(sim.series.config_index)
    assert [sim.series.models[i].config for i in idx] == [V1] * 4 + [W2] * 2
    assert sim.reconfigurations == 1
    # the old configuration is the one billed meanwhile
    assert sim.series.energy_j(3) == pytest.approx(2.0 + 0.5)
    assert sim.series.energy_j(4) == pytest.approx(2 * 3.0 + 1.0)


def test_batch_fill_wait_is_half_the_batch_at_the_arrival_rate():
    sim = PipelineSimulator(problem(5.0), (StageConfig("v", 1.0, 4, 1),), max_batch_wait_s=10)
    sim.run([6])
    # latency 0.3 s + mean fill (4-1)/6/2 = 0.25 s
    assert sim.series.cols["latency_max_s"][0] == pytest.approx(0.55)
    capped = PipelineSimulator(problem(5.0), (StageConfig("v", 1.0, 4, 1),), max_batch_wait_s=0.2)
    capped.run([6])
    assert capped.series.cols["latency_max_s"][0] == pytest.approx(0.3 + 0.1)


def test_a_configuration_slower_than_the_drop_limit_drops_everything():
    sim = PipelineSimulator(problem(0.15), W2, drop_limit_s=0.15)
    tot = sim.run([3, 3])
    assert tot.served == 0 and tot.dropped == 6


def test_same_inputs_same_results():
    def once():
        sim = PipelineSimulator(problem(), V1, reconfiguration_delay_s=1)
        sim.run([3, 25, 7])
        sim.schedule(W2)
        sim.run([14, 0, 9, 30])
        return list(sim.series.cols["served"]), list(sim.series.cols["late"]), sim.totals.stage_energy_j

    assert once() == once()


configs = st.sampled_from([V1, W2, (StageConfig("v", 1.0, 4, 2),), (StageConfig("w", 1.0, 1, 1),)])


@settings(max_examples=60)
@given(
    st.lists(st.tuples(st.lists(st.integers(0, 60), min_size=1, max_size=8), configs), min_size=1, max_size=8),
    st.integers(0, 3),
    st.sampled_from([None, 0.5, 2.0, 10.0]),
)
def test_conservation_arrivals_equal_served_dropped_and_queued(chunks, delay, drop_limit):
    sim = PipelineSimulator(problem(0.9), V1, reconfiguration_delay_s=delay, drop_limit_s=drop_limit)
    served = 0.0
    for served in run_conserving(sim, chunks):
        assert min(sim.series.cols["served"]) >= 0 and min(sim.series.cols["dropped"]) >= -1e-9
    assert sum(sim.series.cols["served"]) == pytest.approx(served)
    assert sim.totals.late <= served + 1e-6
    per_energy = sum(sim.series.energy_j(i) for i in range(len(sim.series)))
    assert per_energy == pytest.approx(sum(sim.totals.stage_energy_j), rel=1e-9)
