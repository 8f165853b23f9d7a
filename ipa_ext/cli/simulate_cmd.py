"""``ipa-ext simulate CONFIG``: run the adaptation loop over a workload on the simulation backend."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from ..config.config import load_config
from ..config.defaults import DEFAULT_OPTIMIZER
from ..errors import ConfigError
from ..report.summary import summary_table, write_json, write_seconds_csv
from ..run.runner import execute, prepare, run_summary
from ..workloads import parse_window, resolve
from .common import load_host, output_dir, print_json, warn_failures

LOG_NAME = "adaptation.jsonl"
SECONDS_NAME = "seconds.csv"
SUMMARY_NAME = "summary.json"


def add_workload_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--trace", help="Twitter-format trace file (.txt or .tbz2) for IPA's named windows")
    p.add_argument("--window", help="START-END seconds of a trace (end exclusive, as IPA)")
    p.add_argument("--damping", type=int, help="IPA's damping_factor: integer-divide every second's count")
    p.add_argument("--base", help=f"exact optimizer the baseline policies delegate to (default {DEFAULT_OPTIMIZER})")
    p.add_argument("--quiet", action="store_true", help="no progress bar and no table")


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("simulate", help="run the adaptation loop over a workload (simulation backend)")
    p.add_argument("config", help="ipa-ext config YAML")
    p.add_argument("--workload", help="synthetic pattern, IPA window name, or trace path (default: the config's)")
    p.add_argument("--optimizer", help="optimizer or policy, NAME[:key=value...] (default: the config's)")
    p.add_argument("--out", help="output folder (default runs/simulate-<time>)")
    p.add_argument("--no-seconds", action="store_true", help="skip the per-second CSV")
    p.add_argument("--json", action="store_true", help="print summary.json instead of the table")
    add_workload_args(p)
    p.set_defaults(func=run)


def show_progress(args: argparse.Namespace) -> bool:
    """A progress bar only on a terminal, never under CI or with --quiet."""
    if getattr(args, "quiet", False) or getattr(args, "json", False):
        return False
    ci = os.environ.get("CI", "")
    if ci and ci.lower() not in ("0", "false", "no"):
        return False
    return sys.stderr.isatty()


class Progress:
    """A one-line progress bar on stderr, redrawn at most ten times a second."""

    def __init__(self, total_s: float, label: str = "") -> None:
        self.total = max(total_s, 1.0)
        self.label = label
        self.last = 0.0
        self.start = time.monotonic()

    def __call__(self, t_s: float) -> None:
        now = time.monotonic()
        if now - self.last < 0.1 and t_s < self.total:
            return
        self.last = now
        frac = min(t_s / self.total, 1.0)
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label}[{bar:<30}] {frac * 100:5.1f}% {t_s:,.0f}/{self.total:,.0f} s "
                         f"{now - self.start:5.1f}s wall")
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")
        sys.stderr.flush()


def default_out(kind: str) -> Path:
    return Path("runs") / f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}"


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    host = load_host(args, config)
    warn_failures(host)
    window = parse_window(args.window) if args.window else None
    if args.damping is not None and args.damping < 1:
        raise ConfigError(f"--damping must be >= 1, got {args.damping}")
    workload = resolve(args.workload, config.section("workload"), config.base_dir, config.path,
                       window_s=window, damping_factor=args.damping, trace=args.trace)
    prepared = prepare(config, host, optimizer=args.optimizer, base=args.base)
    if config.energy_sources and not prepared.new_backend().live and not args.quiet:
        print("ipa-ext: note: energy.sources are not read by the simulation backend (simulated time); "
              "energy is modelled from the profiles (estimated)", file=sys.stderr)
    out = Path(args.out) if args.out else default_out("simulate")
    output_dir(out)
    progress = Progress(workload.duration_s) if show_progress(args) else None
    result, backend, _ = execute(prepared, workload, log_path=out / LOG_NAME, on_step=progress)
    if progress is not None:
        progress.done()
    summary = run_summary(prepared, result, backend, workload)
    files: dict[str, Any] = {"log": str(out / LOG_NAME), "summary": str(out / SUMMARY_NAME)}
    if not args.no_seconds:
        if write_seconds_csv(out / SECONDS_NAME, backend, result, config.carbon):
            files["seconds"] = str(out / SECONDS_NAME)
    summary["files"] = files
    write_json(out / SUMMARY_NAME, summary)
    if args.json:
        print_json(summary)
    elif not args.quiet:
        print(summary_table(summary))
        print(f"wrote {', '.join(files.values())}")
    if result.interrupted:
        print(f"ipa-ext: stopped by {result.interrupted}; the log and summary cover "
              f"{result.seconds:g} s", file=sys.stderr)
        return 128 + int(getattr(signal, result.interrupted))
    bad, decisions = summary["infeasible_decisions"], summary["decisions"]
    if bad:
        # the run kept the configuration in place at those steps; say why, and fail when the
        # optimizer never decided (as ipa-ext optimize fails without a feasible configuration)
        reason = summary.get("first_infeasible_reason") or "no feasible configuration"
        if bad == decisions:
            print(f"ipa-ext: error: every one of the {decisions} decisions was infeasible, so the initial "
                  f"configuration ran throughout: {reason}", file=sys.stderr)
            return 1
        print(f"ipa-ext: warning: {bad} of {decisions} decisions were infeasible (the configuration was "
              f"kept); the first: {reason}", file=sys.stderr)
    return 0
