"""``ipa-ext simulate`` and ``ipa-ext bench`` end to end."""

from __future__ import annotations

import csv
import json
import os
import pty
import subprocess

import pytest

from support.cli import assert_one_line_error, cli_command, run_cli
from support.configs import write_config
from support.paths import VIDEO

CONFIG = str(VIDEO / "config.yaml")


def test_simulate_the_example_with_no_other_arguments(tmp_path):
    proc = run_cli("simulate", CONFIG, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1
    out = runs[0]
    for name in ("adaptation.jsonl", "seconds.csv", "summary.json"):
        assert (out / name).is_file(), name
    s = json.loads((out / "summary.json").read_text())
    assert s["workload"]["name"] == "twitter:bursty" and s["seconds"] == 1200  # IPA's window, shipped
    for key in ("accuracy_pct_mean", "core_seconds", "slo_violation_pct", "decision_time_s"):
        assert s[key] is not None, key
    assert s["energy"]["quality"] == "estimated" and s["energy"]["j_per_served_request"] > 0
    assert s["requests"]["dropped"] >= 0 and s["decision_time_s"]["p99"] >= s["decision_time_s"]["p50"]
    for label in ("mean accuracy", "core-seconds", "SLO violations", "dropped", "J per served request",
                  "decision time", "estimated"):
        assert label in proc.stdout, label
    assert "\r" not in proc.stderr  # not a terminal: no progress bar
    with open(out / "seconds.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 1200
    assert sum(float(r["energy_j_estimated"]) for r in rows) == pytest.approx(s["energy"]["total_j"], rel=1e-5)
    assert sum(float(r["arrivals"]) for r in rows) == s["workload"]["requests"]
    assert rows[500]["crop_variant"].startswith("yolov5") and rows[500]["predicted_rps"] != ""


def test_simulate_json_options_and_carbon(tmp_path):
    cfg = write_config(tmp_path, carbon={"intensity_g_per_kwh": 400})
    proc = run_cli("simulate", str(cfg), "--workload", "synthetic:steady", "--optimizer", "ipa:base=brute-force",
                   "--out", str(tmp_path / "o"), "--json", "--no-seconds")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert s["optimizer"] == "ipa:base=brute-force" and s["workload"]["name"] == "synthetic:steady"
    assert s["carbon_g"] == pytest.approx(s["energy"]["total_j"] * 400 / 3.6e6)
    assert not (tmp_path / "o" / "seconds.csv").exists()
    line = json.loads((tmp_path / "o" / "adaptation.jsonl").read_text().splitlines()[5])
    assert line["decision"]["optimizer"] == "ipa" and line["decision"]["info"]["base"] == "brute-force"


def _on_a_terminal(args, env_extra):
    master, slave = pty.openpty()
    env = dict(os.environ)
    env.pop("CI", None)
    env.update(env_extra)
    proc = subprocess.Popen([*cli_command(), *args], stdin=slave, stdout=subprocess.PIPE, stderr=slave, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 4096)
        except OSError:
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode(errors="replace")


def test_progress_bar_only_on_a_terminal_and_not_under_ci(tmp_path):
    args = ["simulate", CONFIG, "--out", str(tmp_path / "o"), "--no-seconds"]
    rc, err = _on_a_terminal(args, {})
    assert rc == 0 and "\r[" in err and "100.0%" in err
    rc, err = _on_a_terminal(args, {"CI": "true"})
    assert rc == 0 and "\r[" not in err
    rc, err = _on_a_terminal(args + ["--quiet"], {})
    assert rc == 0 and "\r[" not in err


def test_predictor_errors_are_one_line(tmp_path):
    cfg = write_config(tmp_path, predictor={"name": "lstm", "options": {"weights": "none.npz"}})
    assert_one_line_error(run_cli("simulate", str(cfg), "--out", str(tmp_path / "o")),
                          "none.npz: weights file not found")
    assert_one_line_error(run_cli("validate", str(cfg)), "none.npz: weights file not found")
    cfg = write_config(tmp_path, predictor={"name": "lstmm"})
    assert_one_line_error(run_cli("validate", str(cfg)), "predictor.name", "lstmm")
    cfg = write_config(tmp_path, workload={"type": "synthetic", "pattern": "wavy"})
    assert_one_line_error(run_cli("validate", str(cfg)), "workload.pattern", "wavy")
    cfg = write_config(tmp_path, predictor={"name": "max", "margin": 5})
    assert_one_line_error(run_cli("simulate", str(cfg), "--out", str(tmp_path / "o")),
                          "predictor.margin", "margin_pct")
    cfg = write_config(tmp_path, adaptation={"interval_s": 0})
    assert_one_line_error(run_cli("simulate", str(cfg), "--out", str(tmp_path / "o")),
                          "adaptation.interval_s", ">= 1")
    cfg = write_config(tmp_path, simulation={"drop_limit_s": -1})
    assert_one_line_error(run_cli("simulate", str(cfg), "--out", str(tmp_path / "o")), "drop_limit_s")


def test_ipa_avg_predictor_is_the_mean(tmp_path):
    cfg = write_config(tmp_path, predictor={"name": "avg", "backup": "avg"})
    proc = run_cli("simulate", str(cfg), "--out", str(tmp_path / "o"), "--quiet", "--no-seconds")
    assert proc.returncode == 0, proc.stderr
    line = json.loads((tmp_path / "o" / "adaptation.jsonl").read_text().splitlines()[20])
    b = line["monitored"]["buckets_rps"]
    assert line["prediction"]["predictor"] == "mean"
    assert line["prediction"]["raw_rps"] == pytest.approx(sum(b) / len(b))


def test_bench_grid_writes_tables_and_plots(tmp_path):
    cfg = write_config(tmp_path, workload={"type": "synthetic", "pattern": "fluctuating", "duration_s": 300})
    out = tmp_path / "bench"
    proc = run_cli("bench", str(cfg), "--policies", "ipa,fa2-high,infadapter",
                   "--workloads", "synthetic:steady,step", "--base", "brute-force", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((out / "results.json").read_text())["results"]
    assert [(r["workload"], r["policy"]) for r in rows] == [
        (w, p) for w in ("synthetic:steady", "synthetic:step") for p in ("ipa", "fa2-high", "infadapter")]
    for r in rows:
        run = json.loads((out / r["workload"].replace(":", "_") / r["policy"] / "summary.json").read_text())
        assert r["j_per_request"] == run["energy"]["j_per_served_request"]
        assert r["accuracy_pct"] == run["accuracy_pct_mean"]
    ipa, high, infa = rows[:3]
    assert infa["status"] != "n/a" and infa["accuracy_pct"] > 0  # mixes on the two stages
    assert high["accuracy_pct"] > ipa["accuracy_pct"] and high["j_per_request"] > ipa["j_per_request"]
    with open(out / "results.csv", newline="") as f:
        assert len(list(csv.DictReader(f))) == 6
    md = (out / "results.md").read_text()
    assert "## synthetic:steady" in md and "| ipa |" in md and "| infadapter |" in md
    assert "J/request" in proc.stdout
    pngs = ("synthetic_steady.png", "synthetic_step.png", "energy_vs_accuracy.png")
    try:
        import matplotlib  # noqa: F401  (the plot extra)
    except ImportError:  # a minimal install says why there are no plots
        assert "no plots: matplotlib is not installed" in proc.stderr
        assert not any((out / png).exists() for png in pngs)
        return
    for png in pngs:
        data = (out / png).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, png


def test_bench_rejects_unknown_policies_before_running(tmp_path):
    proc = run_cli("bench", CONFIG, "--policies", "ipa,nope", "--base", "brute-force",
                   "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "unknown optimizer 'nope'")
    assert not (tmp_path / "o" / "results.csv").exists()
    proc = run_cli("bench", CONFIG, "--policies", "ipa,ipa", "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "repeats")
    for bad in ("ipa,,ms", "ipa,", ",ipa"):
        proc = run_cli("bench", CONFIG, "--policies", bad, "--out", str(tmp_path / "o"))
        assert_one_line_error(proc, "--policies", "has an empty name")
    assert_one_line_error(run_cli("bench", CONFIG, "--policies", " , ", "--out", str(tmp_path / "o")),
                          "--policies: give at least one name")
    assert not (tmp_path / "o" / "results.csv").exists()


@pytest.mark.parametrize("args, needles", [
    (["--optimizer", "rim:replicas=0:base=brute-force"], ["optimizer 'rim'", "replicas must be"]),
    (["--optimizer", "rim:foo"], ["'rim:foo'", "NAME:key=value"]),
    (["--optimizer", "vpa:history=x"], ["history: expected a number, got 'x'"]),
    (["--optimizer", "fa2-low:base=nope"], ["delegates to optimizer 'nope'"]),
    (["--optimizer", "nope"], ["unknown optimizer 'nope'"]),
    (["--workload", "synthetic:nope"], ["--workload", "unknown synthetic pattern 'nope'"]),
    (["--damping", "0"], ["--damping must be >= 1"]),
])
def test_bad_command_line_input_is_one_line(tmp_path, args, needles):
    proc = run_cli("simulate", CONFIG, *args, "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, *needles)


def test_infeasible_decisions_are_said_and_a_never_deciding_policy_fails(tmp_path):
    # an SLA below every model's latency: every decision is infeasible
    out = tmp_path / "all"
    cfg = write_config(tmp_path, sla_s=0.001)
    proc = run_cli("simulate", str(cfg), "--quiet", "--out", str(out))
    assert_one_line_error(proc, "every one of the 119 decisions was infeasible", "no feasible configuration")
    assert proc.returncode == 1
    summary = json.loads((out / "summary.json").read_text())  # the run is still written
    assert summary["infeasible_decisions"] == summary["decisions"] == 119
    # scaling_cap 2 cannot serve the peaks: a warning, and the run succeeds
    cfg = write_config(tmp_path, scaling_cap=2, workload={"type": "synthetic", "pattern": "fluctuating",
                                                          "duration_s": 1200, "seed": 0})
    proc = run_cli("simulate", str(cfg), "--quiet", "--out", str(tmp_path / "some"))
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ipa-ext: warning: 30 of 119 decisions were infeasible")
    assert "scaling_cap 2" in lines[0]
