"""The bundled video example: its derivation is reproducible and calibrated."""

from __future__ import annotations

import csv
import importlib.util

import pytest
import yaml

from support.paths import VIDEO


def load_script():
    spec = importlib.util.spec_from_file_location("make_profiles", VIDEO / "make_profiles.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_model_card_copy_matches_shared_data(shared_data):
    shared = yaml.safe_load((shared_data / "model-cards" / "video.yaml").read_text())
    ours = yaml.safe_load((VIDEO / "model_card.yaml").read_text())
    for stage in ("crop", "classification"):
        for v, facts in ours[stage].items():
            for k, x in facts.items():
                assert shared[stage][v][k] == x, (stage, v, k)
    assert ours["measured_points"] == shared["measured_points"]


def test_profiles_regenerate_identically(tmp_path):
    mod = load_script()
    out, pout = tmp_path / "p.csv", tmp_path / "p.yaml"
    assert mod.main(["--out", str(out), "--pipeline-out", str(pout)]) == 0
    assert out.read_text() == (VIDEO / "profiles.csv").read_text()
    assert pout.read_text() == (VIDEO / "pipeline.yaml").read_text()
    assert (VIDEO / "profiles.csv").read_text().startswith("# DERIVED, not measured")


def test_calibrated_to_measured_points():
    card = yaml.safe_load((VIDEO / "model_card.yaml").read_text())
    rows = {(r["variant"], int(r["cpu"]), int(r["batch"])): r
            for r in csv.DictReader(l for l in (VIDEO / "profiles.csv").open() if not l.startswith("#"))}
    for pt in card["measured_points"]:
        r = rows[(pt["variant"], pt["cpu"], pt["batch"])]
        assert float(r["latency_s"]) == pytest.approx(pt["latency_p99_s"], rel=1e-5)
        assert float(r["throughput_rps"]) == pytest.approx(pt["throughput_max_rps"], rel=1e-5)


def test_power_model_is_consistent_and_batching_amortises():
    rows = list(csv.DictReader(l for l in (VIDEO / "profiles.csv").open() if not l.startswith("#")))
    assert {int(r["cpu"]) for r in rows} == {1, 2, 4, 8} and {int(r["batch"]) for r in rows} == {1, 2, 4, 8}
    for r in rows:
        p, idle, thr, epr = (float(r[k]) for k in ("power_w", "idle_w", "throughput_rps", "energy_j_per_request"))
        assert p == pytest.approx(idle + thr * epr, rel=1e-4)
    by = {(r["variant"], r["cpu"], int(r["batch"])): float(r["energy_j_per_request"]) for r in rows}
    for (v, c, b), e in by.items():
        if b > 1:
            assert e < by[(v, c, b // 2)]
