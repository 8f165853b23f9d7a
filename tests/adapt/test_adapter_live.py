"""The loop on live backends: transient faults, per-stage results, requests it cannot see,
stage-attributed energy, and the metrics each log line feeds.

The backend here is a scripted implementation of ipa-ext's own ``Backend`` interface (a
virtual clock, faults at chosen steps); the loop, optimizer, forecaster, log and metrics
are the real ones. The kubernetes backend itself is tested against a real Prometheus and
the API mock in ``test_adapt_kubernetes.py``.
"""

from __future__ import annotations

import math

import pytest

from ipa_ext.adapt.adapter import AdaptationLog, Adapter, read_log
from ipa_ext.adapt.measured import MeasuredIntervals
from ipa_ext.adapt.metrics import AdapterMetrics
from ipa_ext.backends import Backend, IntervalOutcome, RunContext
from ipa_ext.config.config import load_config
from ipa_ext.energy import Domain, EnergySource, ProbeResult, Reading, Status
from ipa_ext.energy.export import EnergyMetrics
from ipa_ext.energy.meter import Meter
from ipa_ext.errors import ConfigError, TransientError
from ipa_ext.model import StageConfig
from ipa_ext.run.runner import prepare

from support.configs import write_config
from support.metrics import scrape

NAN = math.nan
START = (StageConfig("yolov5n", 1, 1, 1), StageConfig("resnet18", 1, 1, 1))


class Down(TransientError):
    component = "testserver"


class Scripted(Backend):
    """A live backend on a virtual clock: ``faults[(phase, step)]`` is raised in that phase."""

    name = "scripted"
    live = True

    def __init__(self, rates, faults=None, start_faults=0, flags=None):
        self.rates = list(rates)  # the observed rate in each step
        self.faults = dict(faults or {})
        self.start_faults = start_faults
        self.flags = dict(flags or {})  # step -> per-stage apply results
        self.config = START
        self.step = 0
        self.t = 0.0
        self.started = 0

    def _fault(self, phase):
        exc = self.faults.get((phase, self.step))
        if exc is not None:
            raise exc

    def start(self, context):
        self.started += 1
        if self.start_faults:
            self.start_faults -= 1
            raise Down("testserver: down at start")

    def now_s(self):
        return self.t

    def finished(self):
        return self.step >= len(self.rates)

    def observe_rates(self, duration_s):
        self._fault("observe")
        return [float(self.rates[self.step])] * int(duration_s)

    def current_configuration(self):
        self._fault("configuration")
        return self.config

    def apply(self, config):
        self._fault("apply")
        ok = self.flags.get(self.step, (True,) * len(config))
        self.config = tuple(n if good else o for n, o, good in zip(config, self.config, ok))
        return ok

    def advance(self, duration_s, stop=None):
        start, self.t = self.t, self.t + duration_s
        arrivals = float(self.rates[self.step]) * duration_s
        self.step += 1
        return IntervalOutcome(start, self.t, arrivals, NAN, NAN, NAN, NAN, {}, {"crop": duration_s,
                               "classification": duration_s})


@pytest.fixture(scope="module")
def prepared(tmp_path_factory, host):
    path = write_config(tmp_path_factory.mktemp("live"), adaptation={"interval_s": 1},
                        predictor={"name": "reactive", "backup": "reactive", "bucket_s": 1,
                                   "monitoring_duration_s": 1})
    return prepare(load_config(path), host)


def run(prepared, backend, tmp_path, *, meter=None, on_record=None):
    faults = []
    adapter = Adapter(prepared.problem, prepared.new_optimizer(), backend, prepared.forecaster,
                      prepared.settings, log=AdaptationLog(tmp_path / "log.jsonl"), meter=meter,
                      on_record=on_record, on_fault=lambda phase, exc: faults.append((phase, str(exc))))
    try:
        result = adapter.run(RunContext(prepared.problem, None), handle_signals=False)
    except ConfigError as exc:
        return None, read_log(tmp_path / "log.jsonl"), faults, exc
    return result, read_log(tmp_path / "log.jsonl"), faults, None


def test_transient_faults_keep_the_configuration_and_the_loop_goes_on(prepared, tmp_path):
    b = Scripted([20, 20, 20, 20, 20, 40, 40],
                 faults={("observe", 2): Down("testserver: rates unavailable"),
                         ("configuration", 3): Down("testserver: cannot read the workloads"),
                         ("apply", 5): Down("testserver: refused the patch")},
                 start_faults=1)
    records = []
    result, lines, faults, err = run(prepared, b, tmp_path, on_record=records.append)
    assert err is None and b.started == 2  # the first start failed and was retried
    assert [f[0] for f in faults] == ["start", "observe", "configuration", "apply"]
    assert result.faults == 4 and len(lines) == 7
    assert lines == [_json(r) for r in records]  # on_record sees exactly what the log holds
    chosen = lines[1]["config"]
    assert chosen != lines[0]["config"] and lines[1]["change_successful"] == [True, True]
    for step, phase in ((2, "observe"), (3, "configuration")):
        l = lines[step]
        assert l["decision"] == {"kind": "fault"}
        assert l["fault"] == {"phase": phase, "component": "testserver", "message": faults[step - 1][1]}
        assert l["config"] == chosen and l["change_successful"] == [False, False]
        assert "objective" not in l
    # a fault while applying: the decision is logged, the running configuration kept
    l = lines[5]
    assert l["decision"]["kind"] == "optimizer" and l["fault"]["phase"] == "apply"
    assert l["config"] == lines[4]["config"] and l["change_successful"] == [False, False]
    assert not l["decision"]["config_changed"]
    assert lines[6]["config"] != lines[4]["config"] and "fault" not in lines[6]  # 40 rps, applied now


def test_a_configuration_error_ends_the_run_and_the_log_is_complete(prepared, tmp_path):
    b = Scripted([20] * 6, faults={("observe", 3): ConfigError("bad query", where="prometheus.rate_query")})
    result, lines, faults, err = run(prepared, b, tmp_path)
    assert isinstance(err, ConfigError) and "prometheus.rate_query: bad query" in str(err)
    assert len(lines) == 3 and faults == []


def test_partial_apply_keeps_what_failed_and_requests_it_cannot_see(prepared, tmp_path):
    b = Scripted([20, 20, 20], flags={1: (True, False)},
                 faults={("configuration", 2): Down("testserver: cannot read the workloads")})
    result, lines, _, err = run(prepared, b, tmp_path)
    assert err is None
    assert lines[1]["change_successful"] == [True, False]
    # what runs after a partial apply: the new crop, the old classification
    assert lines[2]["config"] == {"crop": lines[1]["config"]["crop"], "classification": lines[0]["config"]["classification"]}
    assert b.config == (StageConfig(**lines[1]["config"]["crop"]), START[1])
    for l in lines:  # served requests are not observed: unknown, not zero
        assert l["interval"]["served"] is None and l["interval"]["slo_violation_pct"] is None
        assert l["interval"]["arrivals"] == pytest.approx(20.0)
    assert result.arrivals == pytest.approx(60.0) and math.isnan(result.served)


# --------------------------------------------------------------------------- stage-attributed energy


class SteadySource(EnergySource):
    """A measured source whose joules grow at fixed watts over a clock the test sets (``t``)."""

    quality = "measured"

    def __init__(self, watts):
        self.watts = watts
        self.t = 0.0

    def probe(self):
        return ProbeResult(Status.AVAILABLE)


class StageSource(SteadySource):
    """Joules already split by stage, as Kepler reports them (domains ``<stage>/package``)."""

    name = "staged"

    def domains(self):
        return [Domain(f"{s}/package", "package") for s in self.watts]

    def stage_of(self, domain):
        return domain.rsplit("/", 1)[0]

    def read(self):
        return Reading(self.t, {f"{s}/package": w * self.t for s, w in self.watts.items()}, "measured")


class MachineSource(SteadySource):
    name = "machine"

    def domains(self):
        return [Domain("gpu0", "gpu")]

    def read(self):
        return Reading(self.t, {"gpu0": self.watts * self.t}, "measured")


def test_stage_attributed_sources_are_not_split_again():
    staged, machine = StageSource({"crop": 15.0, "classification": 7.0}), MachineSource(100.0)
    mi = MeasuredIntervals(Meter([staged, machine]), idle_power_w=0.0)
    mi.begin_interval("k")
    staged.t = machine.t = 2.0
    out = IntervalOutcome(0, 2, 10, 10, 0, 0, 0, {"crop": 3.0, "classification": 1.0}, {})
    e = mi.end_interval("k", out)
    # the machine's 200 J split 3:1 by CPU time; the staged joules added as they were measured
    assert e.idle_j == 0.0 and e.unattributed_j == pytest.approx(0.0)
    assert e.by_stage_j == pytest.approx({"crop": 30.0 + 150.0, "classification": 14.0 + 50.0})
    assert e.total_j == pytest.approx(244.0) == pytest.approx(sum(e.by_stage_j.values()))
    only = MeasuredIntervals(Meter([StageSource({"crop": 15.0, "classification": 7.0})]))
    only.begin_interval("k")
    only.meter.sources[0].t = 2.0
    e = only.end_interval("k", IntervalOutcome(0, 2, 1, 1, 0, 0, 0, {}, {}))
    assert e.by_stage_j == {"crop": 30.0, "classification": 14.0} and e.total_j == 44.0
    assert e.idle_j is None and e.unattributed_j is None  # nothing was split here


def test_energy_per_request_uses_arrivals_when_completions_are_not_observed(prepared, tmp_path):
    src = StageSource({"crop": 15.0, "classification": 7.0})

    class Clocked(Scripted):
        def advance(self, duration_s, stop=None):
            out = super().advance(duration_s, stop)
            src.t = self.t
            return out

    meter = MeasuredIntervals(Meter([src]))
    result, lines, _, err = run(prepared, Clocked([10, 10, 10]), tmp_path, meter=meter)
    assert err is None
    for l in lines:
        e = l["energy"]
        assert e["source"] == "staged" and e["requests_basis"] == "arrivals"
        assert e["stages_j"] == pytest.approx({"crop": 15.0, "classification": 7.0})
        assert e["j_per_request"] == pytest.approx(22.0 / 10)
        assert e["stages_j_per_request"] == pytest.approx({"crop": 1.5, "classification": 0.7})


# --------------------------------------------------------------------------- metrics from the log


def test_metrics_follow_the_log_lines(prepared, tmp_path):
    metrics = AdapterMetrics(["crop", "classification"])
    energy = EnergyMetrics()
    metrics.add_collector(energy)
    src = StageSource({"crop": 15.0, "classification": 7.0})

    class Clocked(Scripted):
        def advance(self, duration_s, stop=None):
            out = super().advance(duration_s, stop)
            src.t = self.t
            return out

    b = Clocked([20, 20, 20, 20], faults={("observe", 2): Down("testserver: rates unavailable")})
    result, lines, _, err = run(prepared, b, tmp_path, meter=MeasuredIntervals(Meter([src])),
                                on_record=lambda r: metrics.record_step(r, energy))
    server = metrics.serve(0, addr="127.0.0.1")
    try:
        m = scrape(server.port)
    finally:
        server.close()
    last = lines[-1]
    for stage in ("crop", "classification"):
        c = last["config"][stage]
        assert m[("ipa_ext_stage_replicas", (("stage", stage),))] == c["replicas"]
        assert m[("ipa_ext_stage_batch", (("stage", stage),))] == c["batch"]
        assert m[("ipa_ext_stage_cpu_cores", (("stage", stage),))] == c["cpu"]
        assert m[("ipa_ext_stage_variant_info", (("stage", stage), ("variant", c["variant"])))] == 1
        total = sum(l["energy"]["stages_j"][stage] for l in lines)
        key = ("ipa_ext_energy_joules_total", (("domain", "all"), ("quality", "measured"), ("source", "staged"),
                                               ("stage", stage)))
        assert m[key] == pytest.approx(total)
    assert m[("ipa_ext_energy_joules_total", (("domain", "all"), ("quality", "measured"), ("source", "staged"),
                                              ("stage", "")))] == pytest.approx(sum(l["energy"]["total_j"] for l in lines))
    assert m[("ipa_ext_predicted_rate_rps", ())] == last["predicted_rps"] == 20
    assert m[("ipa_ext_observed_rate_rps", ())] == 20
    assert m[("ipa_ext_objective", ())] == pytest.approx(last["objective"]["value"])
    outcomes = {k[1][0][1]: v for k, v in m.items() if k[0] == "ipa_ext_adaptations_total"}
    assert outcomes["applied"] == 1 and outcomes["skipped"] == 1 and outcomes["unchanged"] == 1
    solves = sum(1 for l in lines if l["decision"].get("kind") == "optimizer" and not l["decision"]["memoised"])
    assert m[("ipa_ext_decision_seconds_count", (("optimizer", prepared.config.optimizer.name),))] == solves


def _json(record):
    import json

    from ipa_ext.adapt.adapter import json_safe

    return json.loads(json.dumps(json_safe(dict(record))))
