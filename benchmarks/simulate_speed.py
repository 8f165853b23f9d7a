#!/usr/bin/env python3
"""How long the main job takes: ``ipa-ext simulate examples/video/config.yaml`` (a 1200 s window).

    python benchmarks/simulate_speed.py [--repeat 5] [--optimizer NAME]

Runs the command as a user would (a fresh process each time, writing its
outputs) and reports wall-clock times; the target is at most 5 s. Prints a
table and writes benchmarks/results/simulate_speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CONFIG, table, timed_cli, write_json  # noqa: E402

TARGET_S = 5.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--optimizer", help="optimizer (default: the config's)")
    args = ap.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeat):
            cmd = ["simulate", str(CONFIG), "--out", str(Path(tmp) / f"r{i}"), "--quiet"]
            if args.optimizer:
                cmd += ["--optimizer", args.optimizer]
            wall, proc = timed_cli(cmd)
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            s = json.loads((Path(tmp) / f"r{i}" / "summary.json").read_text())
            runs.append({"wall_s": wall, "loop_wall_s": s["wall_s"], "seconds": s["seconds"],
                         "optimizer": s["optimizer"], "optimizer_calls": s["optimizer_calls"]})
    walls = [r["wall_s"] for r in runs]
    rows = [[i + 1, r["seconds"], r["optimizer"], r["optimizer_calls"], r["loop_wall_s"], r["wall_s"]]
            for i, r in enumerate(runs)]
    print(table(["run", "simulated s", "optimizer", "solves", "loop wall s", "process wall s"], rows))
    med = statistics.median(walls)
    print(f"median {med:.2f} s, min {min(walls):.2f} s, target <= {TARGET_S:g} s: "
          f"{'met' if med <= TARGET_S else 'NOT met'}")
    path = write_json("simulate_speed", {
        "command": f"ipa-ext simulate {CONFIG.relative_to(CONFIG.parents[2])} --quiet",
        "target_s": TARGET_S, "median_s": med, "min_s": min(walls), "runs": runs,
    })
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
