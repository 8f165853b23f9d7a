#!/usr/bin/env python3
"""Simulator fidelity: the same config, profile and workload on ``simulation`` and on ``local`` (real servers).

    python benchmarks/sim_vs_local.py [--config examples/video-measured/config.yaml] [--policies ilp]
        [--rate 8 --seconds 90 | --workload bursty --rate-scale 0.05 --seconds 120]

The workload's per-second counts (scaled) are written to one trace file that both runs replay, so they see
the same requests per second. For each policy it prints predicted (simulation) against measured (local):
throughput, p50 and p99 latency, SLO violations (late + dropped + failed, % of arrivals), drops and joules
per request, with the targets of issue 14 on a steady workload (p99 within 25 %, SLO violations within
2 points). Writes benchmarks/results/sim_vs_local.json. Timings on a loaded machine are rough.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, TRACE, table, timed_cli, write_json  # noqa: E402

from ipa_ext.config.config import load_config  # noqa: E402
from ipa_ext.serving.loadgen import scaled_counts  # noqa: E402
from ipa_ext.workloads import resolve  # noqa: E402

MEASURED = ROOT / "examples" / "video-measured" / "config.yaml"
P99_TARGET = 0.25
SLO_TARGET_PP = 2.0


def counts(args: argparse.Namespace) -> list[int]:
    if args.workload is None:
        return [int(args.rate)] * args.seconds
    config = load_config(args.config)
    wl = resolve(args.workload, config.section("workload"), config.base_dir, config.path,
                 trace=args.trace if Path(args.trace).exists() else None)
    return scaled_counts(wl.rates.tolist()[:args.seconds], args.rate_scale)


def metrics(summary: dict[str, Any]) -> dict[str, Any]:
    req, lat, energy = summary["requests"], summary["latency_s"], summary["energy"]
    seconds = summary["seconds"] or 1.0
    return {
        "arrived": req["arrived"], "served": req["served"], "dropped": req["dropped"],
        "throughput_rps": req["served"] / seconds,
        "p50_s": lat["p50"], "p99_s": lat["p99"],
        "slo_violation_pct": summary["slo_violation_pct"], "dropped_pct": summary["dropped_pct"],
        "j_per_request": energy["j_per_served_request"], "energy_quality": energy["quality"],
        "energy_source": energy["source"], "reconfigurations": summary["reconfigurations"],
    }


def run(kind: str, config: Path, trace: Path, policy: str, out: Path, extra: list[str]) -> dict[str, Any]:
    cmd = (["simulate", str(config), "--workload", str(trace), "--quiet", "--no-seconds"] if kind == "simulation"
           else ["adapt", str(config), "--backend", "local", "--workload", str(trace), "--quiet", *extra])
    wall, proc = timed_cli([*cmd, "--optimizer", policy, "--out", str(out)])
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    return {**metrics(summary), "wall_s": wall, "backend_report": summary.get("backend_report")}


def compare(sim: dict[str, Any], real: dict[str, Any]) -> dict[str, Any]:
    def rel(a: Any, b: Any) -> float | None:
        return None if a is None or b in (None, 0) else (a - b) / b

    return {"p99_rel": rel(sim["p99_s"], real["p99_s"]), "p50_rel": rel(sim["p50_s"], real["p50_s"]),
            "throughput_rel": rel(sim["throughput_rps"], real["throughput_rps"]),
            "slo_pp": sim["slo_violation_pct"] - real["slo_violation_pct"],
            "j_per_request_rel": rel(sim["j_per_request"], real["j_per_request"])}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=MEASURED)
    ap.add_argument("--policies", default="ilp")
    ap.add_argument("--rate", type=float, default=8.0, help="steady rate (without --workload)")
    ap.add_argument("--seconds", type=int, default=90)
    ap.add_argument("--workload", help="a workload name or trace instead of the steady rate")
    ap.add_argument("--trace", default=str(TRACE))
    ap.add_argument("--rate-scale", type=float, default=1.0)
    ap.add_argument("--local-option", action="append", default=[],
                    help="extra adapt flags for the local run, e.g. --local-option=--verbose")
    ap.add_argument("--out", type=Path, help="JSON path (default benchmarks/results/sim_vs_local.json)")
    args = ap.parse_args()
    series = counts(args)
    rows, cells = [], []
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "workload.txt"
        trace.write_text(" ".join(map(str, series)) + "\n")
        for policy in args.policies.split(","):
            sim = run("simulation", args.config, trace, policy, Path(tmp) / f"sim-{policy}", [])
            real = run("local", args.config, trace, policy, Path(tmp) / f"local-{policy}", args.local_option)
            diff = compare(sim, real)
            cells.append({"policy": policy, "simulation": sim, "local": real, "difference": diff,
                          "p99_within_target": diff["p99_rel"] is not None and abs(diff["p99_rel"]) <= P99_TARGET,
                          "slo_within_target": abs(diff["slo_pp"]) <= SLO_TARGET_PP})
            for key in ("throughput_rps", "p50_s", "p99_s", "slo_violation_pct", "dropped", "j_per_request",
                        "reconfigurations"):
                rows.append([policy, key, sim[key], real[key]])
    print(f"workload: {len(series)} s, {sum(series)} requests ({args.workload or f'steady {args.rate:g} rps'}, "
          f"rate scale {args.rate_scale:g})")
    print(table(["policy", "metric", "simulation (predicted)", "local (measured)"], rows))
    for c in cells:
        d = c["difference"]
        print(f"{c['policy']}: p99 sim/local {d['p99_rel']:+.0%} (target ±{P99_TARGET:.0%}: "
              f"{'ok' if c['p99_within_target'] else 'off'}), SLO violations {d['slo_pp']:+.2f} pp (target "
              f"±{SLO_TARGET_PP:g}: {'ok' if c['slo_within_target'] else 'off'}); energy: sim "
              f"{c['simulation']['energy_quality']} ({c['simulation']['energy_source']}), local "
              f"{c['local']['energy_quality']} ({c['local']['energy_source']})" if d["p99_rel"] is not None
              else f"{c['policy']}: no latency to compare")
    path = write_json("sim_vs_local", {"config": str(args.config), "workload": args.workload or "steady",
                                       "rate": args.rate, "rate_scale": args.rate_scale, "seconds": len(series),
                                       "requests": sum(series), "cells": cells}, args.out)
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
