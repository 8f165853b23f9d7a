"""benchmarks/sim_vs_local.py's --profiles: re-measured rows replace the config's rows of the same key."""

from __future__ import annotations

import csv
import importlib.util

from support.paths import ROOT


def _script():
    spec = importlib.util.spec_from_file_location("sim_vs_local", ROOT / "benchmarks" / "sim_vs_local.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _rows(path):
    return list(csv.DictReader(line for line in path.read_text().splitlines() if not line.startswith("#")))


def test_profiles_replace_only_the_rows_with_the_same_stage_variant_cpu_and_batch(tmp_path):
    b = _script()
    src = ROOT / "examples" / "video-measured" / "profiles.csv"
    old = _rows(src)
    row = next(r for r in old if (r["stage"], r["variant"], r["cpu"], r["batch"]) == ("classification", "resnet152", "1", "1"))
    new = dict(row, latency_s="0.0832639", latency_p50_s="0.0788038", throughput_rps="13.0992")
    remeasured = tmp_path / "rows.csv"
    with open(remeasured, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(row))
        w.writeheader()
        w.writerow(new)
    cfg, n = b.replace_rows(b.MEASURED, remeasured, tmp_path)
    assert n == 1
    out = _rows(tmp_path / "profiles-replaced.csv")
    assert len(out) == len(old)
    changed = [(a, c) for a, c in zip(old, out) if a != c]
    assert changed == [(row, new)]
    # the copy still loads, and keep_stages works on it
    assert b.keep_stages(cfg, ["classification"], tmp_path).exists()
    from ipa_ext.config.config import load_config
    stage = load_config(cfg).pipeline.stages[1]
    assert stage.profile("resnet152", 1.0, 1).throughput_rps == 13.0992
