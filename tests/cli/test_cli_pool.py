"""A large num_state_limit through the command line: optimize summarises the pool,
validate says how large it can get, simulate stays quick and picks by least change."""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from ipa_ext.cli import main

from support.cli import cli
from support.configs import video_config_data, write_minimal_config


def example(tmp_path: Path, **changes) -> Path:
    raw = video_config_data()
    raw.update(changes)
    raw["workload"] = {"type": "synthetic", "pattern": "fluctuating", "duration_s": 300, "seed": 0}  # short
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_optimize_summarises_a_pool_of_every_feasible_configuration(tmp_path, capsys):
    cfg = example(tmp_path, num_state_limit=1_000_000)
    rc, out, _ = cli(capsys, "optimize", str(cfg), "--rate", "31")
    assert rc == 0
    assert "candidate 1 of 400" in out and "candidate 2" not in out
    assert "the first 10 of 400 candidates:" in out
    assert "... and 390 more (every feasible configuration at this rate is listed)" in out
    table = out.split("the first 10 of 400 candidates:\n")[1].splitlines()
    assert table[0].split() == ["rank", "objective", "latency_s", "cores", "configuration"]
    assert [row.split()[0] for row in table[1:11]] == [str(i) for i in range(1, 11)]
    rc, out, _ = cli(capsys, "optimize", str(cfg), "--rate", "31", "-k", "50", "--show", "3")
    assert "... and 47 more (the best 50 of 400 feasible configurations)" in out


def test_optimize_prints_a_short_list_in_full(tmp_path, capsys):
    rc, out, _ = cli(capsys, "optimize", str(example(tmp_path)), "--rate", "31", "-k", "12", "--show", "0")
    assert rc == 0 and "candidate 12\n" in out and "more (" not in out


def test_optimize_json_lists_as_many_as_shown_and_counts_the_rest(tmp_path, capsys):
    cfg = example(tmp_path, num_state_limit=1_000_000)
    rc, out, _ = cli(capsys, "optimize", str(cfg), "--rate", "31", "--json", "--show", "4")
    d = json.loads(out)
    assert len(d["candidates"]) == 4 and d["candidate_count"] == 400
    assert d["info"]["k_best"] == "enumeration" and d["info"]["complete"] and d["info"]["solves"] == 0
    objs = [c["objective"] for c in d["candidates"]]
    assert objs == sorted(objs, reverse=True) and d["objective"] == objs[0]
    rc, out, _ = cli(capsys, "optimize", str(cfg), "--rate", "31", "--json", "--show", "0")
    assert len(json.loads(out)["candidates"]) == 400


def test_show_must_not_be_negative(tmp_path, capsys):
    assert main(["optimize", str(example(tmp_path)), "--rate", "31", "--show", "-1"]) == 2
    assert "--show must be >= 0, got -1" in capsys.readouterr().err


def test_validate_says_how_large_the_pool_can_get(tmp_path, capsys):
    cfg = example(tmp_path, num_state_limit=1_000_000, rate_rps=31)
    rc, out, _ = cli(capsys, "validate", str(cfg))
    assert rc == 0
    line = next(l for l in out.splitlines() if l.startswith("candidate pool:"))
    assert "num_state_limit 1000000" in line and "at most the 400 distinct" in line
    assert "(crop 20 x classification 20)" in line and "400 are feasible at rate_rps 31" in line
    assert "by enumeration" in line
    rc, out, _ = cli(capsys, "validate", str(cfg), "--json")
    pool = json.loads(out)["candidate_pool"]
    assert pool == {"k": 1_000_000, "source": "num_state_limit", "combinations": 400,
                    "per_stage": {"crop": 20, "classification": 20}, "rate_rps": 31, "feasible": 400,
                    "method": "enumeration"}
    rc, out, _ = cli(capsys, "validate", str(example(tmp_path, rate_rps=1, adaptation={"num_candidates": 100})),
                  "--json")
    pool = json.loads(out)["candidate_pool"]
    assert pool["source"] == "adaptation.num_candidates" and pool["k"] == 100
    assert 0 < pool["feasible"] < 400  # at 1 rps large batches wait too long for the SLA


def test_validate_is_silent_about_a_pool_of_one(tmp_path, capsys):
    rc, out, _ = cli(capsys, "validate", str(example(tmp_path)))
    assert "candidate pool" not in out
    rc, out, _ = cli(capsys, "validate", str(example(tmp_path)), "--json")
    assert json.loads(out)["candidate_pool"] is None


def test_validate_warns_when_each_candidate_is_a_solve(tmp_path, capsys):
    cfg = write_minimal_config(tmp_path, "num_state_limit: 1000000\nallocation_mode: variable\n", optimizer="ilp")
    rc, out, _ = cli(capsys, "validate", str(cfg))
    line = next(l for l in out.splitlines() if l.startswith("candidate pool:"))
    assert "by enumeration" in line  # 80 x 80 options: still few enough to enumerate
    cfg = write_minimal_config(tmp_path, "num_state_limit: 5\n", optimizer="ilp")
    rc, out, _ = cli(capsys, "validate", str(cfg))
    line = next(l for l in out.splitlines() if l.startswith("candidate pool:"))
    assert "may solve once per candidate, up to 5 times per decision" in line


def _ipa_video_config(tmp_path, shared_data):
    raw = yaml.safe_load(example(tmp_path).read_text())
    cfg = tmp_path / "ipa.yaml"
    ipa_video = shared_data / "ipa-configs" / "pipeline-simulation-video.yaml"
    cfg.write_text(yaml.safe_dump({"from_ipa": str(ipa_video), "pipeline": raw["pipeline"],
                                   "profiles": raw["profiles"], **{k: raw[k] for k in
                                                                   ("adaptation", "predictor", "workload")}}))
    return cfg


def test_simulate_with_a_pool_of_every_feasible_configuration_uses_least_change(tmp_path, capsys,
                                                                                shared_data):
    """IPA's own config, num_state_limit 1000000, without the pool gap: pools of every feasible
    configuration, each step takes the least change; brute force with the same k decides identically."""
    cfg = _ipa_video_config(tmp_path, shared_data)
    lines = {}
    for opt in ("ilp:pool_gap=null", "brute-force"):
        rc = main(["simulate", str(cfg), "--optimizer", opt, "--out", str(tmp_path / opt), "--quiet"])
        assert rc == 0, capsys.readouterr().err
        lines[opt] = [json.loads(l) for l in (tmp_path / opt / "adaptation.jsonl").read_text().splitlines()]
    decisions = [l["decision"] for l in lines["ilp:pool_gap=null"] if l.get("decision")]
    assert all(d["candidates"] > 1 for d in decisions if d.get("feasible"))
    assert all(d["info"]["k_best"] == "enumeration" and d["info"]["complete"] for d in decisions
               if d.get("feasible") and not d.get("memoised"))
    assert [l["config"] for l in lines["ilp:pool_gap=null"]] == [l["config"] for l in lines["brute-force"]]


def test_ipas_imported_pool_keeps_only_ties_of_the_optimum(tmp_path, capsys, shared_data):
    """from_ipa maps IPA's Gurobi pool (PoolGap 0): num_state_limit 1000000 lists only the ties."""
    cfg = _ipa_video_config(tmp_path, shared_data)
    rc, out, _ = cli(capsys, "optimize", str(cfg), "--rate", "31", "--json", "--show", "0")
    assert rc == 0
    d = json.loads(out)
    objectives = [c["objective"] for c in d["candidates"]]
    assert d["info"]["feasible"] > len(objectives) >= 1
    assert max(objectives) - min(objectives) <= 1e-9 * max(1.0, abs(objectives[0]))
    rc, out, _ = cli(capsys, "optimize", str(cfg), "--rate", "31", "--json", "--show", "0",
                  "--optimizer", "ilp:pool_gap=null")
    assert len(json.loads(out)["candidates"]) == json.loads(out)["info"]["feasible"]


def test_validate_of_ipas_config_explains_its_pool(capsys, shared_data):
    rc, out, _ = cli(capsys, "validate", str(shared_data / "ipa-configs" / "pipeline-simulation-video.yaml"))
    assert rc == 0
    assert "num_state_limit 1000000 is a pool size" in out and "pool_gap: 0" in out
    rc, out, _ = cli(capsys, "validate", str(shared_data / "ipa-configs" / "video-1.yaml"))
    assert "pool size" not in out  # its num_state_limit is 1
