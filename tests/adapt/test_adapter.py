"""The adaptation loop: least change, the log, energy accounting, infeasibility, memo, signals."""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest
import yaml

from ipa_ext.adapt.adapter import least_change, read_log
from ipa_ext.config.config import load_config
from ipa_ext.model import StageConfig
from ipa_ext.run.runner import execute, prepare
from ipa_ext.workloads import Workload, synthetic

from support.cli import cli_command, run_cli
from support.configs import write_config
from support.paths import VIDEO

import numpy as np


def ev(problem, cfg, rate=20):
    return problem.evaluate(cfg, rate)


def test_least_change_picks_fewest_variant_and_batch_changes(video_problem):
    cur = (StageConfig("yolov5n", 1, 1, 1), StageConfig("resnet18", 1, 1, 1))
    two = ev(video_problem, (StageConfig("yolov5s", 1, 2, 3), StageConfig("resnet18", 1, 1, 2)))
    one = ev(video_problem, (StageConfig("yolov5n", 1, 2, 5), StageConfig("resnet18", 1, 1, 4)))
    one_b = ev(video_problem, (StageConfig("yolov5n", 1, 1, 5), StageConfig("resnet34", 1, 1, 4)))
    zero = ev(video_problem, (StageConfig("yolov5n", 1, 1, 9), StageConfig("resnet18", 1, 1, 9)))
    assert least_change([two, one, zero], cur) == 2  # replicas and cpu do not count
    assert least_change([two, one, one_b], cur) == 1  # ties go to the better (earlier) one
    assert least_change([two, one_b, one], cur) == 1
    assert least_change([two, one], None) == 0


def run_sim(tmp_path, rates, *, optimizer=None, **changes):
    cfg = load_config(write_config(tmp_path, **changes))
    from ipa_ext.host import load_plugins

    host = load_plugins()
    prepared = prepare(cfg, host, optimizer=optimizer)
    wl = Workload("test", np.asarray(rates, dtype=np.int64), "test")
    log = tmp_path / "log.jsonl"
    result, backend, adapter = execute(prepared, wl, log_path=log, handle_signals=False)
    return result, backend, read_log(log), prepared


def test_every_second_is_in_one_line_and_energy_adds_up(tmp_path):
    rates = synthetic("bursty", 605, 3)
    result, backend, lines, _ = run_sim(tmp_path, rates)
    assert lines[0]["decision"]["kind"] == "initial" and lines[0]["interval"]["start_s"] == 0
    assert [l["interval"]["start_s"] for l in lines[1:]] == [l["interval"]["end_s"] for l in lines[:-1]]
    assert lines[-1]["interval"]["end_s"] == 605 and len(lines) == 61  # last interval is 5 s
    series = backend.per_second()
    per_second = [series.energy_j(i) for i in range(len(series))]
    assert sum(l["energy"]["total_j"] for l in lines) == pytest.approx(sum(per_second), rel=1e-9)
    for stage in ("crop", "classification"):
        k = series.stages.index(stage)
        per_stage = sum(series.stage_energy_j(i, k) for i in range(len(series)))
        assert sum(l["energy"]["stages_j"][stage] for l in lines) == pytest.approx(per_stage, rel=1e-9)
    for l in lines:
        e = l["energy"]
        assert e["quality"] == "estimated" and e["source"] == "profiles"
        assert e["total_j"] == pytest.approx(sum(e["stages_j"].values()))
    # conservation over the whole run
    arrived = sum(l["interval"]["arrivals"] for l in lines)
    assert arrived == rates.sum()
    assert arrived == pytest.approx(sum(l["interval"]["served"] + l["interval"]["dropped"] for l in lines)
                                    + lines[-1]["interval"]["queued"])


def test_log_line_holds_what_the_issue_lists(tmp_path):
    _, _, lines, _ = run_sim(tmp_path, synthetic("steady", 300, 1))
    l = lines[20]
    assert l["time_s"] == 200
    assert len(l["monitored"]["buckets_rps"]) == 12 and l["predicted_rps"] >= 0
    assert set(l["config"]) == {"crop", "classification"}
    assert set(l["config"]["crop"]) >= {"variant", "cpu", "batch", "replicas"}
    assert {"accuracy", "cost", "batch"} <= set(l["objective"]["terms"])
    d = l["decision"]
    assert d["feasible"] and d["decision_time_s"] > 0 and isinstance(d["memoised"], bool)
    assert l["change_successful"] == [True, True]
    assert l["energy"]["quality"] == "estimated" and l["accuracy"]["pct"] > 0


def test_first_decisions_use_the_backup_predictor(tmp_path):
    _, _, lines, _ = run_sim(tmp_path, synthetic("steady", 300, 1),
                             predictor={"name": "reactive", "backup": "max", "backup_duration_s": 60})
    kinds = [(l["prediction"]["predictor"], l["prediction"]["backup"]) for l in lines[1:]]
    assert kinds[:5] == [("max", True)] * 5  # 10..50 s of history: fewer than 6 buckets
    assert set(kinds[5:]) == {("reactive", False)}


def test_infeasible_intervals_keep_the_configuration(tmp_path):
    # at most 2 replicas per stage: about 40 rps is the most any variant sustains
    rates = [10] * 60 + [400] * 60 + [10] * 60
    _, backend, lines, prepared = run_sim(tmp_path, rates, scaling_cap=2,
                                          predictor={"name": "reactive", "backup": "reactive"})
    bad = [l for l in lines[1:] if not l["decision"]["feasible"]]
    assert bad, "the overload should be infeasible"
    for l in bad:
        prev = lines[l["step"] - 1]
        assert l["config"] == prev["config"]
        assert "no feasible configuration" in l["decision"]["reason"]
        assert "scaling_cap 2" in l["decision"]["reason"]
        assert l["change_successful"] == [False, False]
    assert lines[-1]["decision"]["feasible"]


def test_memoised_decisions_are_identical(tmp_path):
    rates = synthetic("fluctuating", 1200, 4)
    r1, _, memo, _ = run_sim(tmp_path, rates)
    r2, _, plain, _ = run_sim(tmp_path, rates, adaptation={"memoize": False})
    assert r1.memo_hits > 0 and r2.memo_hits == 0 and r2.optimizer_calls == len(plain) - 1
    assert [l["config"] for l in memo] == [l["config"] for l in plain]
    assert [l["energy"]["total_j"] for l in memo] == [l["energy"]["total_j"] for l in plain]


def test_sigterm_stops_cleanly_and_flushes_the_log(tmp_path):
    cfg = write_config(tmp_path, workload={"type": "synthetic", "pattern": "steady", "duration_s": 3_000_000})
    out = tmp_path / "out"
    proc = subprocess.Popen([*cli_command(), "simulate", str(cfg), "--out", str(out), "--quiet"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = out / "adaptation.jsonl"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (log.exists() and log.stat().st_size > 0):
        time.sleep(0.05)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGTERM, stderr
    assert "stopped by SIGTERM" in stderr and "Traceback" not in stderr
    text = log.read_text()
    assert text.endswith("\n")
    lines = [json.loads(x) for x in text.splitlines()]  # every line complete
    summary = json.loads((out / "summary.json").read_text())
    assert summary["interrupted"] == "SIGTERM"
    assert summary["seconds"] == lines[-1]["interval"]["end_s"] < 3_000_000
    assert summary["decisions"] == len(lines) - 1
    assert summary["energy"]["total_j"] == pytest.approx(sum(l["energy"]["total_j"] for l in lines))


def test_a_live_backend_takes_energy_from_the_meter(tmp_path):
    """The seam energy meters plug into: measured joules replace the backend's model."""
    from ipa_ext.adapt.adapter import Adapter, IntervalEnergy
    from ipa_ext.backends import RunContext
    from ipa_ext_plugins.backends.simulation import SimulationBackend

    class LiveSimulation(SimulationBackend):
        live = True  # stands in for a live backend; only the energy path matters here

    class CountingMeter:
        def __init__(self):
            self.open = None
            self.calls = []

        def begin_interval(self, key):
            assert self.open is None
            self.open = key

        def end_interval(self, key, outcome):
            assert key == self.open
            self.open = None
            self.calls.append(key)
            cpu = outcome.busy_cpu_s_by_stage
            total = sum(cpu.values()) or 1.0
            measured = 3.0 * outcome.duration_s
            return IntervalEnergy(measured, {k: measured * v / total for k, v in cpu.items()},
                                  "measured", "test-meter")

    cfg = load_config(write_config(tmp_path))
    from ipa_ext.host import load_plugins

    prepared = prepare(cfg, load_plugins())
    meter = CountingMeter()
    log = tmp_path / "live.jsonl"
    from ipa_ext.adapt.adapter import AdaptationLog

    adapter = Adapter(prepared.problem, prepared.new_optimizer(), LiveSimulation(), prepared.forecaster,
                      prepared.settings, log=AdaptationLog(log), meter=meter)
    wl = Workload("t", synthetic("steady", 100, 0), "test")
    result = adapter.run(RunContext(prepared.problem, prepared.problem.settings.initial, wl),
                         handle_signals=False)
    lines = read_log(log)
    assert len(meter.calls) == len(lines) == 10
    assert all(l["energy"]["quality"] == "measured" and l["energy"]["source"] == "test-meter" for l in lines)
    assert result.outcomes_energy_j == pytest.approx(300.0)
    assert result.energy_quality == "measured"
    # a simulated (not live) backend ignores the meter and keeps its modelled figure
    sim = Adapter(prepared.problem, prepared.new_optimizer(), prepared.new_backend(), prepared.forecaster,
                  prepared.settings, meter=CountingMeter())
    r2 = sim.run(RunContext(prepared.problem, prepared.problem.settings.initial, wl), handle_signals=False)
    assert r2.energy_quality == "estimated"


def test_an_upstream_ipa_config_drives_the_loop(tmp_path, shared_data):
    """from_ipa: IPA's interval, monitoring window, backup predictor, drop_limit and initial config."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "from_ipa": str(shared_data / "ipa-configs" / "video-1.yaml"),
        "pipeline": str(VIDEO / "pipeline.yaml"),
        "profiles": str(VIDEO / "profiles.csv"),
        "optimizer": "brute-force",
    }))
    proc = run_cli("simulate", str(cfg), "--workload", "synthetic:steady", "--out", str(tmp_path / "o"),
                   "--json", "--no-seconds")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["predictor"]["name"] == "lstm"  # IPA's video-1 predicts with an LSTM
    data = yaml.safe_load(cfg.read_text())
    data["predictor"] = {"name": "max"}  # merged over IPA's predictor settings
    cfg.write_text(yaml.safe_dump(data))
    proc = run_cli("simulate", str(cfg), "--workload", "synthetic:steady", "--out", str(tmp_path / "o"),
                   "--json", "--no-seconds")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    # video-1.yaml: monitoring 2 min, backup max for 2 min, margin 0, interval 10 s
    assert s["predictor"] == {"name": "max", "backup": "max", "bucket_s": 10, "backup_duration_s": 120.0,
                              "margin_pct": 0.0, "monitoring_duration_s": 120.0, "round": True}
    assert s["backend_options"]["drop_limit"] == 10 and s["adaptation"]["interval_s"] == 10
    lines = read_log(tmp_path / "o" / "adaptation.jsonl")
    assert lines[1]["time_s"] == 10
    assert lines[0]["config"]["crop"] == {"variant": "yolov5n", "cpu": 1.0, "batch": 1, "replicas": 1}


def test_memo_key_holds_the_configuration_when_decisions_depend_on_it(host, video_problem):
    from dataclasses import replace as dreplace

    from ipa_ext.adapt.adapter import depends_on_current
    from ipa_ext.problem import Problem

    scale = Problem(video_problem.pipeline, dreplace(video_problem.settings, baseline_mode="scale"),
                    video_problem.objectives)
    make = lambda n: host.registry.create("optimizer", n, {} if n in ("brute-force", "vpa") else {"base": "brute-force"})
    assert not depends_on_current(make("brute-force"), video_problem)
    assert depends_on_current(make("brute-force"), scale)
    assert depends_on_current(make("ipa"), scale) and not depends_on_current(make("ipa"), video_problem)
    for pinned in ("fa2-low", "fa2-high", "rim", "ms", "infaas"):
        assert not depends_on_current(make(pinned), scale), pinned
    assert depends_on_current(make("vpa"), video_problem)


LIVE_PLUGIN = '''
"""A live stand-in for tests: the simulation, whose modelled joules also advance a fake RAPL counter."""
from pathlib import Path

from ipa_ext import hookimpl
from ipa_ext_plugins.backends.simulation import SimulationBackend


class LiveSimulation(SimulationBackend):
    name = "live-sim"
    live = True

    def __init__(self, powercap, **options):
        super().__init__(**options)
        self.counter = Path(powercap) / "intel-rapl:0" / "energy_uj"
        self.uj = 0

    def advance(self, duration_s, stop=None):
        out = super().advance(duration_s, stop)
        self.uj += round(out.energy_j * 1e6)
        self.counter.write_text(f"{self.uj}\\n")
        return out


@hookimpl
def register_backends(register):
    register("live-sim", LiveSimulation)
'''


def test_live_backends_measure_energy_with_the_configured_sources(tmp_path):
    """config energy.sources -> rapl over a (fake) powercap tree -> attributed per stage in the log."""
    from ipa_ext.testing.powercap import FakePowercap

    fake = FakePowercap(tmp_path / "powercap")
    fake.zone("0", "package-0")
    (tmp_path / "live_sim.py").write_text(LIVE_PLUGIN)
    cfg = write_config(
        tmp_path,
        plugins={"load": ["live_sim.py"]},
        backend={"name": "live-sim", "options": {"powercap": str(tmp_path / "powercap")}},
        energy={"sources": [{"name": "rapl", "options": {"sysfs_root": str(tmp_path / "powercap"),
                                                         "poll": False}}]},
        workload={"type": "synthetic", "pattern": "step", "duration_s": 200, "seed": 2},
    )
    out = tmp_path / "o"
    proc = run_cli("simulate", str(cfg), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    lines = read_log(out / "adaptation.jsonl")
    assert len(lines) == 20
    modelled = []
    for l in lines:
        e = l["energy"]
        assert e["quality"] == "measured" and e["source"] == "rapl"
        parts = sum(e["stages_j"].values()) + e["idle_j"] + e["unattributed_j"]
        assert parts == pytest.approx(e["total_j"], rel=1e-9, abs=1e-9)
        modelled.append(e["total_j"])
    s = json.loads((out / "summary.json").read_text())
    assert s["energy"]["quality"] == "measured" and s["energy"]["source"] == "rapl"
    assert s["energy"]["total_j"] == pytest.approx(sum(modelled))
    # the fake counter advanced by exactly the modelled joules, to the microjoule
    assert s["energy"]["total_j"] == pytest.approx(int(fake.path("0").read_text()) / 1e6, abs=1e-6)
    # Kepler's default idle power: the lowest interval power so far, so the first interval is all idle
    assert lines[0]["energy"]["idle_j"] == pytest.approx(lines[0]["energy"]["total_j"])
    busy = [l for l in lines if sum(l["energy"]["stages_j"].values()) > 0]
    assert busy, "later intervals attribute active energy to the stages"
