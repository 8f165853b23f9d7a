#!/usr/bin/env python3
"""Builds every full-size zoo model and runs batches through each with onnxruntime.

    python benchmarks/zoo_models.py [--names resnet18,yolov5n] [--threads 2] [--batch 1]
                                    [--repeat 3] [--cache-dir DIR] [--force]

Per model: parameter count (spec and published), file size, build time (or the recorded
one when cached), session load time, one-batch latency (median of --repeat after a warm-up)
and whether every output is finite. Prints a table and writes benchmarks/results/zoo_models.json.
Needs the serve extra.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import table, write_json  # noqa: E402

from ipa_ext.inference import ZOO, create_session, random_batch, zoo_model  # noqa: E402


def measure(name: str, args: argparse.Namespace) -> dict:
    model = zoo_model(name, cache_dir=args.cache_dir, force=args.force)
    start = time.perf_counter()
    session = create_session(model.path, threads=args.threads)
    load_s = time.perf_counter() - start
    feeds = random_batch(session, args.batch, seed=0)
    out = session.run(None, feeds)[0]  # warm-up
    latencies = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        out = session.run(None, feeds)[0]
        latencies.append(time.perf_counter() - start)
    return {
        "name": name, "params": model.params, "published_params": ZOO[name].published_params,
        "input_size": model.options.input_size, "size_bytes": model.size_bytes, "built": model.built,
        "build_time_s": model.build_time_s, "load_s": load_s, "batch": args.batch, "threads": args.threads,
        "latency_s": statistics.median(latencies), "latencies_s": latencies, "output_shape": list(out.shape),
        "finite": bool(np.isfinite(out).all()), "output_std": float(out.std()), "path": str(model.path),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--names", default=",".join(ZOO), help="comma-separated zoo names (default: all)")
    ap.add_argument("--threads", type=int, default=2, help="onnxruntime intra-op threads (default 2)")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cache-dir", help="models cache folder (default: the user's)")
    ap.add_argument("--force", action="store_true", help="rebuild even when cached")
    args = ap.parse_args()
    rows = []
    for name in args.names.split(","):
        rows.append(measure(name, args))
        r = rows[-1]
        print(f"{name}: built={r['built']} build {r['build_time_s']:.1f} s, batch latency {r['latency_s']:.3f} s",
              file=sys.stderr, flush=True)
    print(table(["model", "params_M", "published_M", "input", "size_MB", "build_s", "load_s",
                 f"batch{args.batch}_s", "finite"],
                [[r["name"], r["params"] / 1e6, r["published_params"] / 1e6, r["input_size"], r["size_bytes"] / 1e6,
                  r["build_time_s"], r["load_s"], r["latency_s"], r["finite"]] for r in rows]))
    path = write_json("zoo_models", {"threads": args.threads, "batch": args.batch, "models": rows})
    print(f"wrote {path}")
    return 0 if all(r["finite"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
