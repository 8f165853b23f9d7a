#!/usr/bin/env python3
"""Simulator fidelity: the same config, profile and workload on ``simulation`` and on ``local`` (real servers).

    python benchmarks/sim_vs_local.py [--config examples/video-measured/config.yaml] [--policies ilp]
        [--rate 8 --seconds 90 | --workload bursty --rate-scale 0.05 --seconds 120]
        [--driver-core auto|off] [--cores N] [--stages crop,classification] [--profiles ROWS.csv]

The workload's per-second counts (scaled) are written to one trace file that both runs replay, so they see
the same requests per second. For each policy it prints predicted (simulation) against measured (local):
throughput, p50 and p99 latency, SLO violations (late + dropped + failed, % of arrivals), drops and joules
per request, with the targets of issue 14 on a steady workload (p99 within 25 %, SLO violations within
2 points) and PASS or FAIL per policy. Writes benchmarks/results/sim_vs_local.json.

The simulator cannot know that the ipa-ext process itself (router, load generator, loop) takes CPU from
the replicas. So by default (``--driver-core auto``) the pipeline is capped at one core less than the
machine has, through the config's own knobs: each stage keeps the profile rows with at most its share of
the cores, and ``scaling_cap`` stops replicas beyond it; the local backend then pins the driver to the
spare core. Where the stages' smallest allocations already need every core (2 stages on 2 cores) no core
can be left: the output says so. The load average is printed before and after each run: timings on a
loaded machine are rough.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, TRACE, table, timed_cli, write_json  # noqa: E402

from ipa_ext.config.config import load_config  # noqa: E402
from ipa_ext.serving.loadgen import scaled_counts  # noqa: E402
from ipa_ext.workloads import resolve  # noqa: E402

MEASURED = ROOT / "examples" / "video-measured" / "config.yaml"
P99_TARGET = 0.25
SLO_TARGET_PP = 2.0


def load_avg() -> str:
    """The 1-, 5- and 15-minute load averages, as ``uptime`` prints them."""
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def leave_driver_core(config: Path, cores: int, tmp: Path) -> tuple[Path, str]:
    """A copy of ``config`` whose pipeline takes at most ``cores - 1`` cores, or ``config`` and why not.

    Each stage gets ``(cores - 1) // stages`` cores: its profile rows above that cpu are left out,
    and ``scaling_cap`` limits the replicas to what the largest cpu left fits in the share.
    """
    cfg = load_config(config)
    stages = cfg.pipeline.stages
    share = (cores - 1) // len(stages)
    need = [min(int(-(-p.cpu // 1)) for p in s.profiles.values()) for s in stages]
    if share < max(need):
        return config, (f"no core left for the driver: {len(stages)} stages need at least {sum(need)} whole cores "
                        f"and the machine has {cores}, so the driver shares the replicas' cores")
    data = yaml.safe_load(config.read_text())
    prof_path = (config.parent / str(data.get("profiles", ""))).resolve()
    if prof_path.suffix.lower() != ".csv":
        return config, f"no core left for the driver: the cap needs a CSV profile table, not {prof_path.name}"
    lines = prof_path.read_text().splitlines()
    body = [line for line in lines if not line.startswith("#")]
    rows = list(csv.DictReader(body))
    kept = [r for r in rows if -(-float(r["cpu"]) // 1) <= share]
    with open(tmp / "profiles.csv", "w", newline="") as f:
        f.write("".join(line + "\n" for line in lines if line.startswith("#")))
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(kept)
    top = max(-(-float(r["cpu"]) // 1) for r in kept)
    data["profiles"] = str(tmp / "profiles.csv")
    data["pipeline"] = str((config.parent / data["pipeline"]).resolve())
    data["scaling_cap"] = min(int(data.get("scaling_cap", 100)), int(share // top))
    out = tmp / "config-driver-core.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out, (f"one core left for the driver: each of the {len(stages)} stages takes at most {share} of the "
                 f"{cores} cores (profile rows with cpu <= {share:g}, scaling_cap {data['scaling_cap']})")


def keep_stages(config: Path, names: list[str], tmp: Path) -> Path:
    """A copy of ``config`` whose pipeline has only the stages ``names`` (their profile rows and start).

    One stage on a 2-core machine leaves a core for the driver, which two stages cannot.
    """
    data = yaml.safe_load(config.read_text())
    pipe_path = (config.parent / data["pipeline"]).resolve()
    pipe = yaml.safe_load(pipe_path.read_text())
    known = [s["name"] for s in pipe["stages"]]
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"--stages: no stage {unknown[0]!r} in {pipe_path} (known: {', '.join(known)})")
    pipe["stages"] = [s for s in pipe["stages"] if s["name"] in names]
    for s in pipe["stages"]:  # zoo models resolve against the original folder
        for v in s.get("variants", []):
            if "model" in v:
                v["model"] = str((pipe_path.parent / v["model"]).resolve())
    (tmp / "pipeline-stages.yaml").write_text(yaml.safe_dump(pipe, sort_keys=False))
    prof_path = (config.parent / str(data["profiles"])).resolve()
    lines = prof_path.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    stage_col = lines[header].split(",").index("stage")
    kept = [line for line in lines[header + 1:] if line and line.split(",")[stage_col] in names]
    (tmp / "profiles-stages.csv").write_text("\n".join(lines[:header + 1] + kept) + "\n")
    data["pipeline"] = str(tmp / "pipeline-stages.yaml")
    data["profiles"] = str(tmp / "profiles-stages.csv")
    if isinstance(data.get("initial"), dict):
        data["initial"] = {k: v for k, v in data["initial"].items() if k in names}
    if isinstance(data.get("local"), dict) and isinstance(data["local"].get("stages"), dict):
        data["local"]["stages"] = {k: v for k, v in data["local"]["stages"].items() if k in names}
    out = tmp / "config-stages.yaml"
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    return out


def replace_rows(config: Path, rows_csv: Path, tmp: Path) -> tuple[Path, int]:
    """A copy of ``config`` whose profile rows with the (stage, variant, cpu, batch) of a row in ``rows_csv``
    (e.g. rows just re-measured by ``ipa-ext profile --out``) are those rows; returns it and how many."""
    data = yaml.safe_load(config.read_text())
    prof_path = (config.parent / str(data["profiles"])).resolve()

    def table_of(path: Path) -> tuple[list[str], list[dict[str, str]]]:
        lines = path.read_text().splitlines()
        return ([line for line in lines if line.startswith("#")],
                list(csv.DictReader(line for line in lines if not line.startswith("#"))))

    def key(r: dict[str, str]) -> tuple[str, str, float, int]:
        return r["stage"], r["variant"], float(r["cpu"]), int(r["batch"])

    comments, rows = table_of(prof_path)
    new = {key(r): r for r in table_of(rows_csv)[1]}
    out = [dict(r, **{k: v for k, v in new[key(r)].items() if k in r}) if key(r) in new else r for r in rows]
    with open(tmp / "profiles-replaced.csv", "w", newline="") as f:
        f.write("".join(c + "\n" for c in comments))
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(out)
    data["profiles"] = str(tmp / "profiles-replaced.csv")
    data["pipeline"] = str((config.parent / data["pipeline"]).resolve())
    path = tmp / "config-profiles.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path, sum(key(r) in new for r in rows)


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
    ap.add_argument("--driver-core", choices=("auto", "off"), default="auto",
                    help="auto: cap the pipeline at one core less than the machine has, when the stages fit")
    ap.add_argument("--cores", type=int, default=len(os.sched_getaffinity(0)),
                    help="the cores the pipeline and the driver share (default: those this process may use)")
    ap.add_argument("--stages", help="comma-separated stages to keep (e.g. classification: one stage leaves a core "
                                      "for the driver on 2 cores)")
    ap.add_argument("--profiles", type=Path, help="a profile CSV whose rows replace the config's rows of the same "
                                                  "stage, variant, cpu and batch (e.g. re-measured ones)")
    args = ap.parse_args()
    series = counts(args)
    rows, cells = [], []
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "workload.txt"
        trace.write_text(" ".join(map(str, series)) + "\n")
        base = args.config
        if args.profiles:
            base, n = replace_rows(base, args.profiles, Path(tmp))
            print(f"profiles: {n} rows of {args.config} replaced by those of {args.profiles}")
        base = keep_stages(base, args.stages.split(","), Path(tmp)) if args.stages else base
        config, driver = ((base, "off: the pipeline may take every core") if args.driver_core == "off"
                          else leave_driver_core(base, args.cores, Path(tmp)))
        print(f"driver core: {driver}")
        for policy in args.policies.split(","):
            loads = [load_avg()]
            sim = run("simulation", config, trace, policy, Path(tmp) / f"sim-{policy}", [])
            real = run("local", config, trace, policy, Path(tmp) / f"local-{policy}", args.local_option)
            loads.append(load_avg())
            print(f"{policy}: load average before the two runs {loads[0]}, after them {loads[1]}")
            cells.append(cell(policy, sim, real, loads))
            for key in ("throughput_rps", "p50_s", "p99_s", "slo_violation_pct", "dropped", "j_per_request",
                        "reconfigurations"):
                rows.append([policy, key, sim[key], real[key]])
    print(f"workload: {len(series)} s, {sum(series)} requests ({args.workload or f'steady {args.rate:g} rps'}, "
          f"rate scale {args.rate_scale:g}); {args.cores} cores, driver core: {driver}")
    print(table(["policy", "metric", "simulation (predicted)", "local (measured)"], rows))
    print(f"targets (issue 14, steady workload): simulated p99 within {P99_TARGET:.0%} of the measured one, "
          f"SLO violations within {SLO_TARGET_PP:g} percentage points")
    for c in cells:
        print(verdict(c))
    path = write_json("sim_vs_local", {"config": str(args.config), "profiles": str(args.profiles or ""),
                                       "stages": args.stages, "workload": args.workload or "steady",
                                       "rate": args.rate, "rate_scale": args.rate_scale, "seconds": len(series),
                                       "requests": sum(series), "cores": args.cores, "driver_core": driver,
                                       "cells": cells}, args.out)
    print(f"wrote {path}")
    return 0


def cell(policy: str, sim: dict[str, Any], real: dict[str, Any], loads: list[str]) -> dict[str, Any]:
    """One policy's figures, differences and verdict."""
    diff = compare(sim, real)
    p99_ok = diff["p99_rel"] is not None and abs(diff["p99_rel"]) <= P99_TARGET
    slo_ok = abs(diff["slo_pp"]) <= SLO_TARGET_PP
    return {"policy": policy, "simulation": sim, "local": real, "difference": diff, "load_avg": loads,
            "p99_within_target": p99_ok, "slo_within_target": slo_ok, "pass": p99_ok and slo_ok}


def verdict(c: dict[str, Any]) -> str:
    """One line per policy: each target met or not, PASS or FAIL, and what the energy figures are."""
    d = c["difference"]
    p99 = "no latency to compare" if d["p99_rel"] is None else f"p99 sim/local {d['p99_rel']:+.0%}"
    return (f"{c['policy']}: {'PASS' if c['pass'] else 'FAIL'}: {p99} (target ±{P99_TARGET:.0%}: "
            f"{'ok' if c['p99_within_target'] else 'off'}), SLO violations {d['slo_pp']:+.2f} pp (target "
            f"±{SLO_TARGET_PP:g}: {'ok' if c['slo_within_target'] else 'off'}); energy: sim "
            f"{c['simulation']['energy_quality']} ({c['simulation']['energy_source']}), local "
            f"{c['local']['energy_quality']} ({c['local']['energy_source']}); load average "
            f"{c['load_avg'][0]} -> {c['load_avg'][1]}")


if __name__ == "__main__":
    sys.exit(main())
