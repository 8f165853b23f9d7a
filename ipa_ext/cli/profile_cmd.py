"""``ipa-ext profile CONFIG``: measure the pipeline's real models and write a profile table (see docs/profiling.md).

The profiler and onnxruntime are imported only when the command runs.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..report.tables import table
from ..units import MS_PER_S
from .common import print_json

if TYPE_CHECKING:
    from ..profiler.sweep import Measured, Progress


class _Terminated(Exception):
    """SIGTERM: stop like Ctrl-C, keeping every complete row."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("profile", help="measure each (stage, variant, cpu, batch) of the real models; write profiles")
    p.add_argument("config", help="an ipa-ext config (its pipeline, energy sources, profiles path) or a pipeline file")
    p.add_argument("--stages", metavar="A,B", help="stages to profile (default: all)")
    p.add_argument("--variants", metavar="X,Y", help="variants to profile, NAME or STAGE/NAME (default: all with a model)")
    p.add_argument("--cpus", metavar="1,2", help="cores per worker (default: 1,2, up to the CPUs this machine offers)")
    p.add_argument("--batches", default="1,2,4,8", metavar="1,2,4,8", help="batch sizes (default 1,2,4,8)")
    p.add_argument("--seconds-per-row", type=float, default=10.0, metavar="S",
                   help="timed seconds per row (default 10; each row also times at least --min-batches batches)")
    p.add_argument("--min-batches", type=int, default=10, metavar="N", help="timed batches per row at least (default 10)")
    p.add_argument("--warmup", type=int, default=2, metavar="N", help="untimed warm-up batches per row (default 2)")
    p.add_argument("--latency-percentile", type=float, default=99.0, metavar="P",
                   help="the percentile written as latency_s (default 99, as IPA)")
    p.add_argument("--replicas", type=int, default=1, metavar="N",
                   help="run N pinned workers at once on disjoint cores; rows record what they sustain together")
    p.add_argument("--device", default="cpu", choices=("cpu", "gpu"),
                   help="cpu (default) or gpu (onnxruntime's CUDA provider; energy from NVML)")
    p.add_argument("--idle-seconds", type=float, default=5.0, metavar="S",
                   help="how long idle power is measured before the sweep (default 5)")
    p.add_argument("--out", metavar="FILE",
                   help="the profile CSV (default: the config's profiles path, else profiles.csv); resumed if it exists")
    p.add_argument("--restart", action="store_true", help="measure every row again instead of resuming --out")
    p.add_argument("--cache-dir", metavar="DIR", help="zoo models cache folder (see ipa-ext models)")
    p.add_argument("--json", action="store_true", help="print the rows measured and the checks as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress bar, notes or table")
    p.set_defaults(func=run)


def _check_numbers(args: argparse.Namespace) -> None:
    if not args.seconds_per_row >= 0:
        raise InputError(f"must be >= 0, got {args.seconds_per_row}", where="--seconds-per-row")
    if args.min_batches < 1:
        raise InputError(f"must be >= 1, got {args.min_batches}", where="--min-batches")
    if args.warmup < 0:
        raise InputError(f"must be >= 0, got {args.warmup}", where="--warmup")
    if not 0 < args.latency_percentile <= 100:
        raise InputError(f"must be in (0, 100], got {args.latency_percentile}", where="--latency-percentile")
    if args.replicas < 1:
        raise InputError(f"must be >= 1, got {args.replicas}", where="--replicas")
    if not args.idle_seconds >= 0:
        raise InputError(f"must be >= 0, got {args.idle_seconds}", where="--idle-seconds")


def show_progress(args: argparse.Namespace) -> bool:
    """A progress bar only on a terminal, never under CI or with --quiet / --json."""
    if args.quiet or args.json:
        return False
    ci = os.environ.get("CI", "")
    if ci and ci.lower() not in ("0", "false", "no"):
        return False
    return sys.stderr.isatty()


def _clock(seconds: float) -> str:
    m, s = divmod(int(round(seconds)), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class ProgressBar:
    """``[#####     ] 12/80 rows  crop/yolov5m cpu 2 batch 4  2:31 elapsed, ETA 11:40`` on stderr."""

    def __call__(self, progress: Progress, measured: Measured) -> None:
        elapsed = time.monotonic() - progress.started_s
        frac = progress.done / max(progress.total, 1)
        eta = elapsed / progress.done * (progress.total - progress.done) if progress.done else 0.0
        p = measured.point
        sys.stderr.write(f"\r[{'#' * int(frac * 30):<30}] {progress.done}/{progress.total} rows  "
                         f"{p.stage}/{p.variant} cpu {p.cpu} batch {p.batch}  {_clock(elapsed)} elapsed, "
                         f"ETA {_clock(eta)}\x1b[K")
        sys.stderr.flush()

    @staticmethod
    def done() -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def _note(args: argparse.Namespace, message: str) -> None:
    if not args.quiet and not args.json:
        print(f"ipa-ext: note: {message}", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from ..profiler.run import Request, prepare

    _check_numbers(args)
    request = Request(Path(args.config), args.stages, args.variants, args.cpus, args.batches, args.seconds_per_row,
                      args.min_batches, args.warmup, args.latency_percentile, args.replicas, args.device,
                      args.idle_seconds, Path(args.out) if args.out else None, args.restart, args.cache_dir,
                      bool(getattr(args, "strict", False)))
    job = prepare(request, note=lambda m: _note(args, m))
    bar = ProgressBar() if show_progress(args) else None
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        progress = job.run(on_row=bar)
    except (KeyboardInterrupt, _Terminated) as exc:
        if bar is not None:
            bar.done()
        done = job.progress.done if job.progress else 0
        print(f"ipa-ext: interrupted: {done} row(s) measured this run are in {job.out.path}; run the same "
              "command again to measure the rest", file=sys.stderr)
        return 143 if isinstance(exc, _Terminated) else 130
    finally:
        signal.signal(signal.SIGTERM, previous)
        job.close()
    if bar is not None and progress.done:
        bar.done()
    return _report(args, job, progress)


def _raise_terminated(*_: Any) -> None:
    raise _Terminated()


def _report(args: argparse.Namespace, job: Any, progress: Progress) -> int:
    violations = job.violations()
    if args.json:
        print_json({"out": str(job.out.path), "measured": [m.row for m in progress.rows],
                    "skipped": progress.skipped, "seconds": time.monotonic() - progress.started_s,
                    "machine": job.machine.as_dict(), "checks": [v.as_dict() for v in violations]})
        return 0
    if args.quiet:
        return 0
    if progress.rows:
        print(table(["stage", "variant", "cpu", "batch", f"p{args.latency_percentile:g}_ms", "p50_ms", "cv",
                     "batches", "rps", "power_w", "J/req", "energy"],
                    [[r["stage"], r["variant"], r["cpu"], r["batch"], r["latency_s"] * MS_PER_S, r["latency_p50_s"] * MS_PER_S,
                      f"{r['latency_cv']:.1%}", r["batches"], r["throughput_rps"], r["power_w"],
                      r["energy_j_per_request"], r["energy_quality"]] for r in (m.row for m in progress.rows)]))
    print(f"wrote {job.out.path}: {progress.done} row(s) measured in {_clock(time.monotonic() - progress.started_s)}"
          + (f", {progress.skipped} already there" if progress.skipped else ""))
    for v in violations:
        print(f"ipa-ext: warning: {v.describe()}", file=sys.stderr)
    if violations:
        print(f"ipa-ext: warning: {len(violations)} monotonicity violation(s) in {job.out.path} "
              "(a loaded machine, too few cores to gain from, or a model that gains nothing from larger batches)",
              file=sys.stderr)
    return 0
