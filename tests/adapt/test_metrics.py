"""The adapter's metrics, scraped over real HTTP and parsed with prometheus-client's parser."""

from __future__ import annotations

import pytest
from prometheus_client.core import CounterMetricFamily

from ipa_ext.adapt.metrics import AdapterMetrics
from ipa_ext.model import StageConfig

from support.metrics import scrape


@pytest.fixture
def served():
    m = AdapterMetrics(["crop", "classification"])
    server = m.serve(0, addr="127.0.0.1")
    try:
        yield m, server.port
    finally:
        server.close()


def test_a_decision_is_exported(served):
    m, port = served
    m.record_rates(observed_rps=18.5, predicted_rps=22.0)
    m.record_decision("ilp", 0.012)
    m.record_decision("ilp", 0.3)
    m.record_configuration((StageConfig("yolov5s", 2.0, 4, 3), StageConfig("resnet50", 0.5, 1, 2)))
    m.record_objective(1.25, {"accuracy": 1.5, "cost": 7.0, "batch": 5.0})
    m.record_outcome("applied")
    got = scrape(port)
    assert got[("ipa_ext_observed_rate_rps", ())] == 18.5
    assert got[("ipa_ext_predicted_rate_rps", ())] == 22.0
    assert got[("ipa_ext_decision_seconds_count", (("optimizer", "ilp"),))] == 2
    assert got[("ipa_ext_decision_seconds_sum", (("optimizer", "ilp"),))] == pytest.approx(0.312)
    assert got[("ipa_ext_decision_seconds_bucket", (("le", "0.025"), ("optimizer", "ilp")))] == 1
    assert got[("ipa_ext_stage_replicas", (("stage", "crop"),))] == 3
    assert got[("ipa_ext_stage_batch", (("stage", "crop"),))] == 4
    assert got[("ipa_ext_stage_cpu_cores", (("stage", "classification"),))] == 0.5
    assert got[("ipa_ext_stage_variant_info", (("stage", "crop"), ("variant", "yolov5s")))] == 1
    assert got[("ipa_ext_objective", ())] == 1.25
    assert got[("ipa_ext_objective_term", (("term", "cost"),))] == 7.0
    assert got[("ipa_ext_adaptations_total", (("outcome", "applied"),))] == 1
    assert got[("ipa_ext_adaptations_total", (("outcome", "infeasible"),))] == 0


def test_a_variant_change_replaces_the_info_series(served):
    m, port = served
    m.record_configuration((StageConfig("yolov5s", 1.0, 1, 1), StageConfig("resnet18", 1.0, 1, 1)))
    m.record_configuration((StageConfig("yolov5x", 1.0, 1, 1), StageConfig("resnet18", 1.0, 1, 1)))
    variants = {k: v for k, v in scrape(port).items() if k[0] == "ipa_ext_stage_variant_info"}
    assert variants == {
        ("ipa_ext_stage_variant_info", (("stage", "crop"), ("variant", "yolov5x"))): 1.0,
        ("ipa_ext_stage_variant_info", (("stage", "classification"), ("variant", "resnet18"))): 1.0,
    }


def test_failures_faults_and_extra_collectors(served):
    m, port = served

    class Energy:
        def collect(self):
            c = CounterMetricFamily("ipa_ext_energy_joules", "joules", labels=["stage"])
            c.add_metric(["crop"], 12.5)
            yield c

    m.add_collector(Energy())
    m.record_outcome("partial", failed_stages=["crop"])
    m.record_fault("prometheus")
    m.record_fault("prometheus")
    got = scrape(port)
    assert got[("ipa_ext_stage_apply_failures_total", (("stage", "crop"),))] == 1
    assert got[("ipa_ext_stage_apply_failures_total", (("stage", "classification"),))] == 0
    assert got[("ipa_ext_faults_total", (("component", "prometheus"),))] == 2
    assert got[("ipa_ext_energy_joules_total", (("stage", "crop"),))] == 12.5
    with pytest.raises(ValueError, match="unknown outcome"):
        m.record_outcome("great")


def test_a_configuration_must_cover_every_stage():
    m = AdapterMetrics(["crop", "classification"])
    with pytest.raises(ValueError):
        m.record_configuration((StageConfig("yolov5s", 1.0, 1, 1),))
