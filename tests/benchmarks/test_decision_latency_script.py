"""benchmarks/decision_latency.py runs end to end and writes what it prints (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys

from support.paths import ROOT
from support.optimizers import SOLVERS


def test_benchmark_script_writes_json(tmp_path):
    out = tmp_path / "dl.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "decision_latency.py"), "--decisions", "3",
         "--stages", "1,2", "--variants", "2", "--solvers", ",".join(SOLVERS), "--out", str(out)],
        capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert set(data["video"]) == set(SOLVERS) | {f"infadapter/{s}" for s in SOLVERS}
    assert [(g["stages"], g["variants"]) for g in data["grid"]] == [(1, 2)] * len(SOLVERS) + [(2, 2)] * len(SOLVERS)
    for row in [*data["video"].values(), *data["grid"]]:
        assert row["decisions"] == 3 and row["infeasible"] == 0
        assert 0 < row["median_ms"] <= row["p95_ms"] <= row["max_ms"]
    assert 0 < data["grid"][-1]["options"] <= 2 * 2 * 16  # 2 stages x 2 variants x (4 cpu x 4 batch)
    lines = proc.stdout.splitlines()
    assert lines[0].split()[:5] == ["workload", "size", "solver", "median_ms", "p95_ms"]
    assert len(lines) == 1 + len(SOLVERS) * 4 + 1  # video: ilp and infadapter per solver
