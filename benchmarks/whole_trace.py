#!/usr/bin/env python3
"""The whole Twitter trace (1,899,061 s, a decision every 10 s) through the adaptation loop.

    python benchmarks/whole_trace.py [--trace workload.tbz2] [--optimizer ilp]
                                     [--check-window 1290000-1330000] [--skip-whole]

1. Times ``ipa-ext simulate examples/video/config.yaml --workload TRACE`` over the whole
   trace (target: at most 120 s with ilp), once with the per-second CSV and once
   without it.
2. Shows that memoising decisions by (predicted rate, running configuration) changes
   nothing: runs ``--check-window`` with ``adaptation.memoize`` on and off and compares
   every line of the two adaptation logs (predicted rate, decision, configuration,
   energy).

The optimizer defaults to ilp when a plugin registers it, brute-force otherwise.
Prints tables and writes benchmarks/results/whole_trace.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CONFIG, TRACE, exact_base, table, timed_cli, write_json  # noqa: E402

TARGET_S = 120.0


def config_copy(tmp: Path, **changes) -> Path:
    data = yaml.safe_load(CONFIG.read_text())
    for key in ("pipeline", "profiles"):
        data[key] = str((CONFIG.parent / data[key]).resolve())
    data.update(changes)
    p = tmp / f"config-{len(list(tmp.glob('config-*')))}.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def decisions(log: Path) -> list[tuple]:
    out = []
    with open(log) as f:
        for line in f:
            d = json.loads(line)
            out.append((d["time_s"], d.get("predicted_rps"), d["decision"].get("feasible"),
                        json.dumps(d["config"], sort_keys=True), d["energy"]["total_j"]))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=str(TRACE))
    ap.add_argument("--optimizer")
    ap.add_argument("--check-window", default="1290000-1330000")
    ap.add_argument("--skip-whole", action="store_true")
    args = ap.parse_args()
    from ipa_ext.host import load_plugins

    optimizer = args.optimizer or exact_base(load_plugins())
    result: dict = {"optimizer": optimizer, "trace": args.trace, "target_s": TARGET_S}
    with tempfile.TemporaryDirectory() as t:
        tmp = Path(t)
        cfg = config_copy(tmp, optimizer=optimizer)
        if not args.skip_whole:
            rows = []
            for label, extra in (("with per-second CSV", []), ("without per-second CSV", ["--no-seconds"])):
                out = tmp / label.replace(" ", "-")
                wall, proc = timed_cli(["simulate", str(cfg), "--workload", args.trace, "--out", str(out),
                                        "--quiet", *extra])
                if proc.returncode != 0:
                    print(proc.stderr, file=sys.stderr)
                    return 1
                s = json.loads((out / "summary.json").read_text())
                run = {"label": label, "wall_s": wall, "loop_wall_s": s["wall_s"], "seconds": s["seconds"],
                       "decisions": s["decisions"], "optimizer_calls": s["optimizer_calls"],
                       "memo_hits": s["memo_hits"], "decision_p50_ms": s["decision_time_s"]["p50"] * 1e3,
                       "decision_p99_ms": s["decision_time_s"]["p99"] * 1e3,
                       "j_per_request": s["energy"]["j_per_served_request"],
                       "slo_violation_pct": s["slo_violation_pct"], "accuracy_pct": s["accuracy_pct_mean"]}
                rows.append(run)
                result.setdefault("whole", []).append(run)
            print(f"whole trace, optimizer {optimizer}:")
            print(table(["run", "simulated s", "decisions", "solves", "memo hits", "decision p50 ms",
                         "decision p99 ms", "loop wall s", "process wall s"],
                        [[r["label"], r["seconds"], r["decisions"], r["optimizer_calls"], r["memo_hits"],
                          r["decision_p50_ms"], r["decision_p99_ms"], r["loop_wall_s"], r["wall_s"]]
                         for r in rows]))
            print(f"target <= {TARGET_S:g} s: {'met' if rows[0]['wall_s'] <= TARGET_S else 'NOT met'} "
                  f"(with CSV {rows[0]['wall_s']:.1f} s; without {rows[1]['wall_s']:.1f} s)")
        # memo identity
        logs = {}
        walls = {}
        for memo in (True, False):
            c = config_copy(tmp, optimizer=optimizer, adaptation={"interval_s": 10, "memoize": memo})
            out = tmp / f"memo-{memo}"
            wall, proc = timed_cli(["simulate", str(c), "--trace", args.trace, "--window", args.check_window,
                                    "--out", str(out), "--quiet", "--no-seconds"])
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return 1
            logs[memo] = decisions(out / "adaptation.jsonl")
            walls[memo] = (wall, json.loads((out / "summary.json").read_text()))
        a, b = logs[True], logs[False]
        same = sum(1 for x, y in zip(a, b) if x == y)
        identical = len(a) == len(b) == same
        check = {"window": args.check_window, "lines": len(a), "identical_lines": same, "identical": identical,
                 "memo_wall_s": walls[True][0], "plain_wall_s": walls[False][0],
                 "memo_solves": walls[True][1]["optimizer_calls"], "plain_solves": walls[False][1]["optimizer_calls"]}
        result["memo_check"] = check
        print(f"\nmemo check on window {args.check_window}, optimizer {optimizer}:")
        print(table(["memoize", "log lines", "optimizer calls", "process wall s"],
                    [["on", len(a), check["memo_solves"], check["memo_wall_s"]],
                     ["off", len(b), check["plain_solves"], check["plain_wall_s"]]]))
        print(f"identical lines (time, predicted rate, feasibility, configuration, energy): {same} of "
              f"{len(a)} -> {'IDENTICAL' if identical else 'DIFFERENT'}")
    path = write_json("whole_trace", result)
    print(f"wrote {path}")
    return 0 if result["memo_check"]["identical"] else 1


if __name__ == "__main__":
    sys.exit(main())
