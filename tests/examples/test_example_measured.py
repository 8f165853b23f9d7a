"""The measured video example: its profile was written by ``ipa-ext profile``, says so, and the optimizer,
the simulation and the benchmark run on it unchanged."""

from __future__ import annotations

import csv
import io
import json

import yaml

from support.paths import ROOT
from ipa_ext.cli import main
from ipa_ext.config.config import load_config

EXAMPLE = ROOT / "examples" / "video-measured"


def profile_rows() -> tuple[list[str], list[dict[str, str]]]:
    lines = (EXAMPLE / "profiles.csv").read_text().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    return comments, list(csv.DictReader(io.StringIO("\n".join(line for line in lines if not line.startswith("#")))))


def test_the_profile_is_the_full_measured_grid_of_the_zoo_models():
    comments, rows = profile_rows()
    pipeline = yaml.safe_load((EXAMPLE / "pipeline.yaml").read_text())
    variants = [(s["name"], v["name"]) for s in pipeline["stages"] for v in s["variants"]]
    assert all("zoo" in v for s in pipeline["stages"] for v in s["variants"])
    assert sorted((r["stage"], r["variant"], r["cpu"], r["batch"]) for r in rows) == sorted(
        (s, v, c, b) for s, v in variants for c in ("1", "2") for b in ("1", "2", "4", "8"))
    assert comments[0].startswith("# ipa-ext profile 1: measured")
    header = {line[2:].split(": ", 1)[0]: line for line in comments}
    assert "virtual machine" in header["machine"] and "logical CPUs" in header["machine"]
    assert "estimated" in header["energy"] and all(r["energy_quality"] == "estimated" for r in rows)
    assert sum(line.startswith("# model ") for line in comments) == len(variants)
    assert all(int(r["batches"]) >= 10 and float(r["timed_s"]) >= 10 for r in rows)
    assert "estimated" in (EXAMPLE / "README.md").read_text()


def test_optimize_simulate_and_bench_run_on_it(capsys, tmp_path):
    config = load_config(EXAMPLE / "config.yaml")
    assert config.pipeline.models[("crop", "yolov5x")].input_size == 160
    assert main(["optimize", str(EXAMPLE / "config.yaml"), "--rate", "20", "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["feasible"] and decision["throughput_rps"] >= 20 and decision["latency_s"] <= decision["sla_s"]
    assert main(["simulate", str(EXAMPLE / "config.yaml"), "--out", str(tmp_path / "sim"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "sim" / "summary.json").read_text())
    assert summary["requests"]["served"] > 0 and summary["infeasible_decisions"] == 0
    assert main(["bench", str(EXAMPLE / "config.yaml"), "--policies", "ilp,energy-ilp", "--workloads", "steady",
                 "--out", str(tmp_path / "bench"), "--no-plots", "--quiet"]) == 0
    assert (tmp_path / "bench" / "results.csv").is_file()
