#!/usr/bin/env python3
"""What a large k costs: the main job with num_state_limit 1 ... 1000000, num_candidates 100,
and IPA's own pipeline-simulation-video.yaml (num_state_limit 1000000) imported with from_ipa.

    python benchmarks/num_state_limit.py [--repeat 5] [--out FILE]

Each case runs ``ipa-ext simulate`` (the 1200 s window of examples/video/config.yaml)
as a user would, a fresh process each time, and reports the median wall-clock time and
its ratio to num_state_limit 1; the target is num_state_limit 1000000 within 3x of 1.
The from_ipa case also times ``ipa-ext optimize --rate 31``. Prints a table and writes
benchmarks/results/num_state_limit.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CONFIG, SHARED, table, timed_cli, write_json  # noqa: E402

TARGET_RATIO = 3.0
IPA_CONFIG = SHARED / "data" / "ipa-configs" / "pipeline-simulation-video.yaml"
LOOP_KEYS = ("adaptation", "predictor", "simulation", "workload")


def example() -> dict[str, Any]:
    data = yaml.safe_load(CONFIG.read_text())
    data["pipeline"] = str(CONFIG.parent / data["pipeline"])
    data["profiles"] = str(CONFIG.parent / data["profiles"])
    return data


def cases() -> dict[str, dict[str, Any]]:
    """Config per case name: the example with one change, or IPA's config imported."""
    out = {}
    for k in (1, 10, 1000, 1_000_000):
        out[f"num_state_limit {k}"] = {**example(), "num_state_limit": k}
    base = example()
    out["num_candidates 100"] = {**base, "adaptation": {**base["adaptation"], "num_candidates": 100}}
    imported = {"from_ipa": str(IPA_CONFIG), "pipeline": base["pipeline"], "profiles": base["profiles"],
                **{key: base[key] for key in LOOP_KEYS}}
    out["from_ipa pipeline-simulation-video"] = imported
    out["from_ipa, pool_gap 0"] = {**imported, "optimizer": {"name": "ilp", "options": {"pool_gap": 0}}}
    return out


def run_case(path: Path, out: Path) -> dict[str, Any]:
    wall, proc = timed_cli(["simulate", str(path), "--out", str(out), "--quiet"])
    if proc.returncode != 0:
        raise SystemExit(f"{path.name}: {proc.stderr.strip()}")
    summary = json.loads((out / "summary.json").read_text())
    pools = [json.loads(line)["decision"]["candidates"] for line in (out / "adaptation.jsonl").open()
             if json.loads(line).get("decision", {}).get("candidates") is not None]
    return {"wall_s": wall, "loop_wall_s": summary["wall_s"], "optimizer_calls": summary["optimizer_calls"],
            "reconfigurations": summary["reconfigurations"], "max_candidates": max(pools, default=0)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/num_state_limit.json)")
    args = ap.parse_args()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, data) in enumerate(cases().items()):
            path = Path(tmp) / f"case{i}.yaml"
            path.write_text(yaml.safe_dump(data))
            runs = [run_case(path, Path(tmp) / f"case{i}-r{r}") for r in range(args.repeat)]
            results[name] = {"config": data, "runs": runs,
                             "median_s": statistics.median(r["wall_s"] for r in runs)}
            if name.startswith("from_ipa pipeline"):
                optimize = [timed_cli(["optimize", str(path), "--rate", "31"]) for _ in range(args.repeat)]
                results[name]["optimize_rate31_median_s"] = statistics.median(w for w, _p in optimize)
                results[name]["optimize_rate31_stdout_lines"] = len(optimize[0][1].stdout.splitlines())
    base = results["num_state_limit 1"]["median_s"]
    rows = []
    for name, r in results.items():
        r["ratio"] = r["median_s"] / base
        last = r["runs"][-1]
        rows.append([name, r["median_s"], r["ratio"], last["loop_wall_s"], last["optimizer_calls"],
                     last["max_candidates"], last["reconfigurations"]])
    print(table(["case", "median s", "x k=1", "loop s", "decisions", "pool", "reconfigurations"], rows))
    ratio = results["num_state_limit 1000000"]["ratio"]
    print(f"num_state_limit 1000000: {ratio:.2f}x num_state_limit 1 (target <= {TARGET_RATIO:g}x: "
          f"{'met' if ratio <= TARGET_RATIO else 'NOT met'})")
    imported = results["from_ipa pipeline-simulation-video"]
    print(f"from_ipa optimize --rate 31: median {imported['optimize_rate31_median_s']:.2f} s, "
          f"{imported['optimize_rate31_stdout_lines']} lines printed")
    path = write_json("num_state_limit", {
        "command": "ipa-ext simulate CONFIG --quiet (examples/video/config.yaml with one change)",
        "repeat": args.repeat, "target_ratio": TARGET_RATIO, "ratio_1000000": ratio, "cases": results,
    }, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
