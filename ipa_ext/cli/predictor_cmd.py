"""``ipa-ext predictor train``: fit IPA's LSTM on a request trace and write a weights file."""

from __future__ import annotations

import argparse
import hashlib
import shlex
import sys
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import InputError
from .common import print_json

DEFAULT_OUT = "lstm.npz"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("predictor", help="load predictors: train IPA's LSTM on a trace")
    psub = p.add_subparsers(dest="predictor_command", metavar="SUBCOMMAND")
    psub.required = True
    q = psub.add_parser("train", help="train IPA's LSTM (numpy) on a per-second request trace")
    q.add_argument("--trace", required=True, help="per-second request trace (.txt, .bz2 or .tbz2)")
    span = q.add_mutually_exclusive_group()
    span.add_argument("--days", default="1-14", help="days of the trace to train on, A-B, 1-based, inclusive "
                                                     "(default 1-14, as IPA)")
    span.add_argument("--window", help="START-END seconds of the trace to train on instead (end exclusive)")
    q.add_argument("--damping", type=int, default=8,
                   help="integer-divide every second's count first (default 8, as IPA; 1: none)")
    q.add_argument("--out", default=DEFAULT_OUT, help=f"weights file to write (default {DEFAULT_OUT})")
    q.add_argument("--seed", type=int, default=7, help="seed of the initial weights and the shuffling (default 7)")
    q.add_argument("--epochs", type=int, default=30, help="passes over the samples (default 30, as IPA)")
    q.add_argument("--quiet", action="store_true", help="no per-epoch progress on stderr")
    q.add_argument("--json", action="store_true", help="machine-readable summary")
    q.set_defaults(func=run_train)


def parse_days(text: str) -> tuple[int, int]:
    """``A-B`` (or ``N``) 1-based inclusive days as (first, last)."""
    a, sep, b = text.partition("-")
    try:
        first, last = int(a), int(b if sep else a)
    except ValueError:
        raise InputError(f"expected A-B in whole days, got {text[:40]!r}", where="--days") from None
    if first < 1 or last < first:
        raise InputError(f"expected 1 <= A <= B, got {text[:40]!r}", where="--days")
    return first, last


def _span(args: argparse.Namespace) -> tuple[int, int, str]:
    from ..forecasting.train import SECONDS_PER_DAY
    from ..workloads import parse_window

    if args.window:
        start, end = parse_window(args.window)
        if start < 0 or end <= start:
            raise InputError(f"expected 0 <= START < END, got {args.window[:40]!r}", where="--window")
        return start, end, "--window"
    first, last = parse_days(args.days)
    return (first - 1) * SECONDS_PER_DAY, last * SECONDS_PER_DAY, "--days"


def _check_numbers(args: argparse.Namespace) -> None:
    for flag, value, low in (("--damping", args.damping, 1), ("--seed", args.seed, 0), ("--epochs", args.epochs, 1)):
        if value < low:
            raise InputError(f"must be >= {low}, got {value}", where=flag)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_train(args: argparse.Namespace) -> int:
    from ..forecasting import lstm, train, weights
    from ..workloads import load_trace

    _check_numbers(args)
    start, end, flag = _span(args)
    trace = Path(args.trace)
    series = load_trace(trace)
    settings = train.TrainSettings(seed=args.seed, epochs=args.epochs)
    try:
        x, y = train.trace_samples(series, start, end, args.damping, settings)
    except train.TraceTooShort as exc:
        raise InputError(f"too short for training: {exc}", path=trace, where=flag) from None

    def progress(epoch: int, loss: float, seconds: float) -> None:
        if not args.quiet:
            print(f"epoch {epoch}/{settings.epochs}: loss {loss:.4g} ({seconds:.0f} s)", file=sys.stderr)

    try:
        result = train.train(x, y, settings, progress)
    except train.TrainingDiverged as exc:
        raise InputError(f"{exc}; try another --seed or a larger --damping", path=trace) from None
    span = f"--window {start}-{end}" if flag == "--window" else f"--days {args.days}"
    provenance: dict[str, Any] = {
        "command": f"ipa-ext predictor train --trace {shlex.quote(trace.name)} {span} --damping {args.damping} "
                   f"--seed {args.seed} --epochs {args.epochs}",
        "trace": trace.name, "trace_sha256": _sha256(trace), "seconds": [start, end], "damping": args.damping,
        "seed": args.seed, "epochs": args.epochs, "samples": int(len(y)), "steps": result.steps,
        "epoch_losses": [round(v, 6) for v in result.epoch_losses], "train_seconds": round(result.seconds, 1),
        "ipa_ext_version": __version__,
    }
    w = weights.LstmWeights(result.params, settings.units, settings.timesteps, settings.bucket_s,
                            settings.horizon_s, settings.activation, provenance=provenance)
    out = weights.save(w, Path(args.out))
    summary = {"out": str(out), "parameters": lstm.count_params(settings.units), **provenance}
    if args.json:
        print_json(summary)
        return 0
    print(f"trained IPA's LSTM ({settings.units} units, {summary['parameters']:,} parameters) on {trace.name} "
          f"seconds {start}-{end} (damping {args.damping}): {len(y):,} samples, {settings.epochs} epochs, "
          f"{result.steps:,} steps in {result.seconds:.0f} s")
    print(f"training loss (MSE + L1): first epoch {result.epoch_losses[0]:.4g}, last {result.epoch_losses[-1]:.4g}")
    print(f"wrote {out}")
    return 0
