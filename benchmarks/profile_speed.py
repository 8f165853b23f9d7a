#!/usr/bin/env python3
"""How long ``ipa-ext profile`` takes on the video grid, how steady its rows are, and whether a row repeats.

    python benchmarks/profile_speed.py [--config examples/video-measured/config.yaml]
                                       [--seconds-per-row 10] [--cpus 1,2] [--batches 1,2,4,8]
                                       [--from-profile CSV] [--repeats 5]
                                       [--repeat-row classification/resnet50,1,1 ...] [--no-grid]

1. The grid: every variant x cpu x batch of CONFIG measured from scratch into
   benchmarks/results/profile_speed.csv (the example's own profile is not touched): the wall
   time (target: at most 20 minutes for the video grid on 2 cores), the time spent building or
   checking models before it, and each row's spread (latency cv, p99/p50, batches).
   ``--from-profile CSV`` reports the rows of an existing measured profile instead of measuring.
2. Monotonicity: where the median latency does not fall with more cores, or throughput falls with
   a larger batch (the profiler's own check).
3. Repeatability: each ``--repeat-row`` measured ``--repeats`` times, each time by a fresh worker;
   the coefficient of variation of the row's median latency (target: at most 10 % on an idle machine).

Prints tables and the load average before and after, and writes benchmarks/results/profile_speed.json
(``profile_speed_from_profile.json`` with ``--from-profile``, ``profile_speed_repeats.json`` with ``--no-grid``).
Needs the serve extra. On a shared machine the figures are rough.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, ROOT, table, write_json  # noqa: E402

from ipa_ext.profiler.checks import monotonicity  # noqa: E402
from ipa_ext.profiler.run import Request, prepare  # noqa: E402
from ipa_ext.profiler.stats import cv  # noqa: E402

CONFIG = ROOT / "examples" / "video-measured" / "config.yaml"
GRID_TARGET_S = 20 * 60
CV_TARGET = 0.10


def _rows_of(path: Path) -> list[dict[str, Any]]:
    lines = [line for line in path.read_text().splitlines() if line.strip() and not line.startswith("#")]
    return list(csv.DictReader(io.StringIO("\n".join(lines))))


def measure_grid(args: argparse.Namespace) -> dict[str, Any]:
    out = RESULTS / "profile_speed.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    job = prepare(Request(Path(args.config), cpus=args.cpus, batches=args.batches,
                          seconds_per_row=args.seconds_per_row, out=out, restart=True, idle_seconds=args.idle_seconds))
    prepare_s = time.monotonic() - start
    try:
        progress = job.run(on_row=lambda p, m: print(f"  {p.done}/{p.total} {m.point.stage}/{m.point.variant} "
                                                     f"cpu {m.point.cpu} batch {m.point.batch}: {m.seconds:.1f} s",
                                                     file=sys.stderr))
    finally:
        job.close()
    total_s = time.monotonic() - start
    row_s = {(m.point.stage, m.point.variant, str(m.point.cpu), str(m.point.batch)): m.seconds for m in progress.rows}
    rows = _rows_of(out)
    for r in rows:
        r["row_s"] = row_s.get((r["stage"], r["variant"], r["cpu"], r["batch"]))
    return {"profile": str(out), "rows": rows, "prepare_s": prepare_s, "total_s": total_s,
            "sweep_s": total_s - prepare_s, "measured": True}


def repeat_row(config: Path, spec: str, repeats: int, seconds: float) -> dict[str, Any]:
    stage_variant, cpu, batch = spec.split(",")
    medians, p99s = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(repeats):
            job = prepare(Request(config, variants=stage_variant, cpus=cpu, batches=batch, seconds_per_row=seconds,
                                  out=Path(tmp) / "repeat.csv", restart=True, idle_seconds=0.0))
            try:
                row = job.run().rows[0].row
            finally:
                job.close()
            medians.append(row["latency_p50_s"])
            p99s.append(row["latency_s"])
    return {"row": spec, "repeats": repeats, "medians_s": medians, "p99s_s": p99s, "cv_median": cv(medians),
            "cv_p99": cv(p99s), "target": CV_TARGET, "pass": cv(medians) <= CV_TARGET}


def _f(row: dict[str, Any], key: str) -> float:
    return float(row[key]) if row.get(key) not in (None, "") else float("nan")


def print_grid(grid: dict[str, Any]) -> None:
    rows = grid["rows"]
    print(table(["stage", "variant", "cpu", "batch", "p99_ms", "p50_ms", "p99/p50", "cv", "batches", "rps",
                 "J/req", "row_s"],
                [[r["stage"], r["variant"], r["cpu"], r["batch"], _f(r, "latency_s") * 1e3,
                  _f(r, "latency_p50_s") * 1e3, _f(r, "latency_s") / _f(r, "latency_p50_s"),
                  f"{_f(r, 'latency_cv'):.1%}", r["batches"], _f(r, "throughput_rps"),
                  _f(r, "energy_j_per_request"), r.get("row_s")] for r in rows]))
    cvs = sorted(_f(r, "latency_cv") for r in rows)
    print(f"\n{len(rows)} rows; latency cv per row: median {cvs[len(cvs) // 2]:.1%}, worst {cvs[-1]:.1%}")
    if grid["measured"]:
        print(f"grid: {grid['total_s'] / 60:.1f} min in all ({grid['prepare_s']:.0f} s building/checking models, "
              f"{grid['sweep_s'] / 60:.1f} min measuring); target <= {GRID_TARGET_S / 60:.0f} min: "
              f"{'met' if grid['total_s'] <= GRID_TARGET_S else 'missed'}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(CONFIG))
    ap.add_argument("--seconds-per-row", type=float, default=10.0)
    ap.add_argument("--cpus", default="1,2")
    ap.add_argument("--batches", default="1,2,4,8")
    ap.add_argument("--idle-seconds", type=float, default=5.0)
    ap.add_argument("--from-profile", metavar="CSV", help="report this measured profile instead of measuring the grid")
    ap.add_argument("--no-grid", action="store_true", help="only the repeatability check")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--repeat-row", action="append", metavar="STAGE/VARIANT,CPU,BATCH",
                    help="a row to repeat (default: classification/resnet50,1,1 and crop/yolov5s,2,4)")
    args = ap.parse_args()
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}")
    result: dict[str, Any] = {"config": args.config, "seconds_per_row": args.seconds_per_row}
    if not args.no_grid:
        grid = ({"profile": args.from_profile, "rows": _rows_of(Path(args.from_profile)), "measured": False}
                if args.from_profile else measure_grid(args))
        print_grid(grid)
        violations = monotonicity(grid["rows"])
        print(f"\nmonotonicity: {len(violations)} violation(s)")
        for v in violations:
            print(f"  {v.describe()}")
        result.update(grid=grid, violations=[v.as_dict() for v in violations])
    repeats = [repeat_row(Path(args.config), spec, args.repeats, args.seconds_per_row)
               for spec in (args.repeat_row or ["classification/resnet50,1,1", "crop/yolov5s,2,4"])]
    print()
    print(table(["row", "repeats", "median_ms (each)", "cv of median", "cv of p99", "<= 10 %"],
                [[r["row"], r["repeats"], " ".join(f"{m * 1e3:.2f}" for m in r["medians_s"]),
                  f"{r['cv_median']:.1%}", f"{r['cv_p99']:.1%}", "yes" if r["pass"] else "NO"] for r in repeats]))
    load_after = os.getloadavg()
    print(f"\nload average after: {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f} "
          f"on {os.cpu_count()} CPUs (a loaded machine spreads the figures)")
    result.update(repeatability=repeats, load_before=load_before, load_after=load_after)
    name = "profile_speed" if not (args.no_grid or args.from_profile) else \
        ("profile_speed_repeats" if args.no_grid else "profile_speed_from_profile")
    print(f"wrote {write_json(name, result)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
