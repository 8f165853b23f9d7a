"""The CLI end to end: optimize, validate, and one-line errors for bad input."""

from __future__ import annotations

import json
import pytest

from support.configs import write_minimal_config
from support.cli import assert_one_line_error, run_cli
from support.paths import VIDEO

CONFIG = str(VIDEO / "config.yaml")


def test_optimize_prints_configuration_terms_latency_and_throughput():
    proc = run_cli("optimize", CONFIG, "--rate", "20")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    for needle in ("crop", "classification", "variant", "replicas", "latency", "<= SLA",
                   ">= rate 20 rps", "objective", "alpha 2 x accuracy", "beta 1 x cost",
                   "power", "estimated"):
        assert needle in out, needle


def test_optimize_json_matches_problem_evaluation(video_problem):
    proc = run_cli("optimize", CONFIG, "--rate", "20", "--json", "-k", "3")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["feasible"] and len(d["candidates"]) == 3
    from ipa_ext.model import StageConfig

    cfg = tuple(StageConfig(s["variant"], s["cpu"], s["batch"], s["replicas"]) for s in d["stages"])
    ev = video_problem.evaluate(cfg, 20)
    assert ev.feasible
    assert d["objective"] == pytest.approx(ev.objective)
    assert d["terms"]["cost"] == sum(s["cpu"] * s["replicas"] for s in d["stages"])
    assert d["throughput_rps"] >= 20 and d["latency_s"] <= d["sla_s"]
    assert d["power"]["quality"] == "estimated"
    objs = [c["objective"] for c in d["candidates"]]
    assert objs == sorted(objs, reverse=True)


def test_delta_changes_the_decision():
    # the example's optimizer is ilp (IPA's objective); the power weight is energy-ilp's
    base = json.loads(run_cli("optimize", CONFIG, "--rate", "30", "--json").stdout)
    heavy = json.loads(run_cli("optimize", CONFIG, "--rate", "30", "--json", "--optimizer", "energy-ilp",
                               "--delta", "1").stdout)
    assert base["optimizer"] == "ilp" and heavy["optimizer"] == "energy-ilp"
    assert heavy["weights"]["delta"] == 1
    assert heavy["terms"]["power"] <= base["terms"]["power"]
    assert heavy["weighted_terms"]["power"] == pytest.approx(heavy["terms"]["power"])


def test_validate_summarises(tmp_path):
    proc = run_cli("validate", CONFIG)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout and "base cpu" in proc.stdout
    d = json.loads(run_cli("validate", CONFIG, "--json").stdout)
    assert d["stages"][0]["base_allocation"]["yolov5n"] == 1
    # rows per variant in the table, per stage in the JSON's profile_rows
    assert d["stages"][0]["variant_profile_rows"]["yolov5n"] == sum(
        1 for l in (VIDEO / "profiles.csv").read_text().splitlines() if l.startswith("crop,yolov5n,"))
    assert d["stages"][0]["profile_rows"] == sum(d["stages"][0]["variant_profile_rows"].values())
    row = next(l for l in proc.stdout.splitlines() if l.split()[:2] == ["crop", "yolov5n"])
    assert row.split()[-1] == str(d["stages"][0]["variant_profile_rows"]["yolov5n"])


def test_validate_ipa_config(shared_data):
    proc = run_cli("validate", str(shared_data / "ipa-configs" / "video-1.yaml"))
    assert proc.returncode == 0, proc.stderr
    assert "an upstream IPA config" in proc.stdout and "profiling_series" in proc.stdout
    # what it leaves to set: the trace is a local file (IPA's LSTM ships as the lstm predictor)
    assert "also set 'predictor" not in proc.stdout and "name: lstm" in proc.stdout
    assert "also set 'workload: {trace: PATH}'" in proc.stdout


def test_the_ipa_config_hint_gives_a_config_that_runs(tmp_path, shared_data):
    c = tmp_path / "c.yaml"
    c.write_text(f"from_ipa: {shared_data / 'ipa-configs' / 'video-1.yaml'}\n"
                 f"pipeline: {VIDEO / 'pipeline.yaml'}\nprofiles: {VIDEO / 'profiles.csv'}\n"
                 "predictor: {name: moving-window-max}\n"
                 f"workload: {{trace: {shared_data / 'twitter-trace' / 'workload.tbz2'}}}\n")
    proc = run_cli("simulate", str(c), "--quiet", "--json", "--out", str(tmp_path / "o"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["workload"]["start_s"] == 1301160


def test_malformed_yaml(tmp_path):
    c = tmp_path / "c.yaml"
    c.write_text("pipeline: [unclosed\n")
    assert_one_line_error(run_cli("validate", str(c)), str(c), "malformed YAML")
    assert_one_line_error(run_cli("optimize", str(c), "--rate", "3"), str(c), "malformed YAML")


def test_malformed_csv(tmp_path):
    c = write_minimal_config(tmp_path, **{"profiles.csv": "stage,variant\n\"crop,yolo\n"})
    assert_one_line_error(run_cli("optimize", str(c), "--rate", "3"), "profiles.csv", "missing column")


def test_bad_profile_value_names_file_and_line(tmp_path):
    rows = (VIDEO / "profiles.csv").read_text().replace("crop,yolov5n,1,1,0.0697799", "crop,yolov5n,1,1,fast", 1)
    c = write_minimal_config(tmp_path, **{"profiles.csv": rows})
    assert_one_line_error(run_cli("validate", str(c)), "profiles.csv", "line 8", "latency_s", "'fast'")


def test_unknown_optimizer(tmp_path):
    assert_one_line_error(run_cli("optimize", CONFIG, "--rate", "3", "--optimizer", "gurobi"),
                          "unknown optimizer 'gurobi'", "brute-force")
    c = write_minimal_config(tmp_path, optimizer="simplex")
    assert_one_line_error(run_cli("validate", str(c)), "unknown optimizer 'simplex'")


def test_unknown_plugin_module(tmp_path):
    c = write_minimal_config(tmp_path, "plugins: {load: [no_such_plugin_mod]}\n")
    assert_one_line_error(run_cli("validate", str(c)), "no_such_plugin_mod", "ModuleNotFoundError")


def test_impossible_sla_says_so(tmp_path):
    c = write_minimal_config(tmp_path, "sla_s: 0.01\n")
    proc = run_cli("optimize", str(c), "--rate", "10")
    assert_one_line_error(proc, "no feasible configuration", "SLA 0.01 s cannot be met")
    proc = run_cli("optimize", str(c), "--rate", "10", "--json")
    assert proc.returncode == 1 and json.loads(proc.stdout)["feasible"] is False


def test_rate_beyond_capacity(tmp_path):
    c = write_minimal_config(tmp_path, "scaling_cap: 2\n")
    assert_one_line_error(run_cli("optimize", str(c), "--rate", "400"),
                          "rate 400 rps exceeds the capacity of every variant", "scaling_cap 2")


def test_missing_rate_and_missing_file(tmp_path):
    assert_one_line_error(run_cli("optimize", CONFIG), "rate_rps", "--rate")
    assert_one_line_error(run_cli("validate", str(tmp_path / "none.yaml")), "none.yaml: file not found")


def test_duplicate_yaml_keys_are_rejected(tmp_path):
    c = write_minimal_config(tmp_path, "scaling_cap: 5\nscaling_cap: 6\n")
    assert_one_line_error(run_cli("validate", str(c)), str(c), "duplicate key 'scaling_cap'")


@pytest.mark.parametrize(
    "args,needle",
    [
        (["optimize", CONFIG, "--rate", "abc"], "ipa-ext: error: optimize: argument --rate: invalid float value: 'abc'"),
        (["simulate", CONFIG, "--window", "-5-3"], "ipa-ext: error: simulate: argument --window"),
        (["energy", "measure", "--interval", "nan", "--", "true"], "argument --interval: invalid int value"),
        (["no-such-command"], "invalid choice: 'no-such-command'"),
        (["optimize"], "the following arguments are required: config"),
    ],
)
def test_usage_errors_are_one_line(args, needle):
    proc = run_cli(*args)
    assert_one_line_error(proc, needle)
    assert proc.returncode == 2


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--rate", "nan"], "--rate must be a finite number, got nan"),
        (["--rate", "inf"], "--rate must be a finite number, got inf"),
        (["--rate", "10", "--optimizer", "energy-ilp", "--delta", "nan"], "--delta must be a finite number"),
        (["--rate", "10", "--optimizer", "energy-ilp", "--epsilon", "inf"], "--epsilon must be a finite number"),
        (["--rate", "10", "--optimizer", "energy-ilp", "--power-cap", "nan"], "--power-cap must be a finite number"),
        (["--rate", "10", "--optimizer", "energy-ilp", "--power-cap", "-5"], "--power-cap must be > 0, got -5"),
        (["--rate", "10", "--at", "inf"], "--at must be a finite number"),
        (["--rate", "10", "--optimizer", "energy-ilp:delta=.nan"], "delta: expected a finite number, got .nan"),
        (["--rate", "10", "--optimizer", "energy-ilp:power_cap_w=.inf"], "power_cap_w: expected a finite number, got .inf"),
    ],
)
def test_non_finite_numbers_on_the_command_line_are_rejected(args, needle):
    proc = run_cli("optimize", CONFIG, *args)
    assert_one_line_error(proc, needle)
    assert proc.returncode == 2


def test_pareto_rejects_non_finite_weights(tmp_path):
    proc = run_cli("pareto", CONFIG, "--rate", "10", "--alpha", "nan", "--out", str(tmp_path))
    assert_one_line_error(proc, "--alpha must be a finite number, got nan")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["simulate", "bench"])
def test_out_that_is_a_file_is_a_one_line_error(tmp_path, command):
    f = tmp_path / "taken"
    f.write_text("keep me\n")
    extra = ["--policies", "ilp", "--no-plots"] if command == "bench" else []
    for out in (f, f / "sub"):
        proc = run_cli(command, CONFIG, *extra, "--quiet", "--out", str(out))
        assert_one_line_error(proc, str(out), "--out: cannot create the output folder")
    assert f.read_text() == "keep me\n"


SIM = ("initial:\n  crop: {variant: yolov5n, cpu: 1, batch: 1, replicas: 1}\n"
       "  classification: {variant: resnet18, cpu: 1, batch: 1, replicas: 1}\n"
       "workload: {type: static, loads_to_test: 5, load_duration: 20}\n")


@pytest.mark.parametrize("extra,optimizer,needles", [
    ("backend: nosuch\n", "ilp", ("backend: unknown backend 'nosuch'", "simulation")),
    ("backend: {name: nosuch}\n", "ilp", ("backend.name: unknown backend 'nosuch'",)),
    ("", "{name: nosuch}", ("optimizer.name: unknown optimizer 'nosuch'", "brute-force")),
    ("", "{name: ilp, options: {bogus: 1}}",
     ("optimizer.options: optimizer 'ilp': unknown option 'bogus' (known: solver, time_limit_s",)),
    # energy-ilp passes **options on to ilp: the known options are both classes'
    ("", "{name: energy-ilp, options: {bogus: 1}}", ("unknown option 'bogus' (known: delta,", "solver")),
    ("predictor: {name: moving-window-max, options: {window: abc}}\n", "ilp",
     ("predictor.options: predictor 'moving-window-max': window (buckets): expected a number", "'abc'")),
    ("predictor: {backup: nope}\n", "ilp", ("predictor.backup: unknown predictor 'nope'",)),
    ("predictor: {backup: max, backup_options: {x: 1}}\n", "ilp",
     ("predictor.backup_options: predictor 'max': takes no options",)),
])
def test_config_component_errors_name_the_file_and_field(tmp_path, extra, optimizer, needles):
    c = write_minimal_config(tmp_path, SIM + extra, optimizer=optimizer)
    for cmd in (("validate", str(c)), ("simulate", str(c), "--quiet", "--out", str(tmp_path / "out"))):
        assert_one_line_error(run_cli(*cmd), f"{c}: ", *needles)


def test_an_unknown_energy_source_in_the_config_names_the_field(tmp_path):
    c = write_minimal_config(tmp_path, "energy: {sources: [nosuch]}\n")
    assert_one_line_error(run_cli("validate", str(c)), f"{c}: energy.sources[0]: unknown energy source 'nosuch'")


def test_command_line_component_errors_name_the_flag(tmp_path):
    c = write_minimal_config(tmp_path, SIM, optimizer="ilp")
    assert_one_line_error(run_cli("simulate", str(c), "--optimizer", "nope", "--quiet", "--out", str(tmp_path / "o")),
                          "ipa-ext: error: --optimizer: unknown optimizer 'nope'")
    assert_one_line_error(run_cli("optimize", str(c), "--rate", "5", "--optimizer", "ilp:bogus=1"),
                          "--optimizer: optimizer 'ilp': unknown option 'bogus'")
    assert_one_line_error(run_cli("adapt", str(c), "--backend", "nope"), "--backend: unknown backend 'nope'")
    assert_one_line_error(run_cli("adapt", str(c), "--backend", "kubernetes", "--steps", "0"),
                          "ipa-ext: error: --steps: --steps must be >= 1, got 0")


@pytest.mark.parametrize("extra,needle", [
    ("simulation: {drop_limt_s: 1}\n", "simulation: backend 'simulation': unknown option 'drop_limt_s'"),
    ("backend: {name: simulation, options: {foo: 1}}\n", "backend.options: backend 'simulation': unknown option 'foo'"),
    ("backend: kubernetes\nkubernetes: {namespaec: x}\n", "kubernetes.namespaec: unknown key"),
    ("backend: kubernetes\nprometheus: {url: 'http://127.0.0.1:1', foo: 1}\n", "prometheus.foo: unknown key"),
])
def test_validate_checks_the_backend_sections_as_a_run_would(tmp_path, extra, needle):
    c = write_minimal_config(tmp_path, SIM + extra, optimizer="ilp")
    assert_one_line_error(run_cli("validate", str(c)), f"{c}: {needle}")
    if "kubernetes" not in extra:  # simulate says the same
        assert_one_line_error(run_cli("simulate", str(c), "--quiet", "--out", str(tmp_path / "o")),
                              f"{c}: {needle}")
