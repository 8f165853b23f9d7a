"""``ipa-ext bench CONFIG --policies a,b --workloads w1,w2``: the policy x workload grid.

On the simulation backend by default; ``--backend local`` runs every cell on real model servers
in real time (``--rate-scale``, ``--duration``; docs/local.md).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from ..config.config import load_config
from ..config.show import shown
from ..errors import ConfigError
from ..run.compare import plot, run_grid, write_results
from ..workloads import parse_window, resolve
from .common import load_host, output_dir, warn_failures
from .simulate_cmd import add_workload_args, default_out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="compare policies on workloads (energy, accuracy, SLO, cost)")
    p.add_argument("config", help="ipa-ext config YAML")
    p.add_argument("--policies", required=True,
                   help="comma-separated optimizers/policies, each NAME or NAME:key=value:...")
    p.add_argument("--workloads", help="comma-separated workloads (default: the config's)")
    p.add_argument("--out", help="output folder (default runs/bench-<time>)")
    p.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    p.add_argument("--backend", help="backend every cell runs on (default simulation), e.g. local: real servers, "
                                     "real time")
    p.add_argument("--rate-scale", type=float, help="local backend: multiply the workloads' request rates")
    p.add_argument("--duration", type=float, help="local backend: stop each cell's load after this many seconds")
    add_workload_args(p)
    p.set_defaults(func=run)


def _split(text: str, what: str) -> list[str]:
    items = [x.strip() for x in text.split(",")]
    if not any(items):
        raise ConfigError(f"--{what}: give at least one name")
    if not all(items):
        raise ConfigError(f"--{what}: {shown(text)} has an empty name (two commas, or one at an end)")
    if len(set(items)) != len(items):
        raise ConfigError(f"--{what}: {shown(items)} repeats a name")
    return items


def _backend(args: argparse.Namespace, config: Any, host: Any) -> tuple[str, dict[str, Any]]:
    """The backend every cell runs on and its options from the flags (``--rate-scale``, ``--duration``)."""
    name = args.backend or config.backend.name
    factory = host.registry.get("backend", name, path=None if args.backend else config.path,
                                where="--backend" if args.backend else config.backend.where or "backend").factory
    replays = getattr(factory, "needs_workload", False)
    if getattr(factory, "live", False) and not replays:
        raise ConfigError(f"backend {shown(name)} does not replay a workload, so it cannot run a benchmark "
                          "(simulation and local can)", where="--backend")
    options: dict[str, Any] = {}
    for flag, key, value in (("--rate-scale", "rate_scale", args.rate_scale),
                             ("--duration", "duration_s", args.duration)):
        if value is None:
            continue
        if not replays:
            raise ConfigError(f"{flag} applies to a backend that replays a workload in real time (local)",
                              where=flag)
        if not value > 0:
            raise ConfigError(f"{flag} must be > 0, got {value:g}", where=flag)
        options[key] = value
    return name, options


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    host = load_host(args, config)
    warn_failures(host)
    backend, backend_options = _backend(args, config, host)
    policies = _split(args.policies, "policies")
    window = parse_window(args.window) if args.window else None
    names = _split(args.workloads, "workloads") if args.workloads else [None]
    workloads = [
        resolve(n, config.section("workload"), config.base_dir, config.path, window_s=window,
                damping_factor=args.damping, trace=args.trace, flag="--workloads")
        for n in names
    ]
    out = Path(args.out) if args.out else default_out("bench")
    output_dir(out)

    stop = threading.Event()
    caught: list[str] = []

    def on_signal(signum, frame):  # finish the current cell, then write what there is
        caught.append(signal.Signals(signum).name)
        stop.set()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}

    def on_cell(n: int, total: int, wl: str, policy: str, wall_s: float) -> None:
        if not args.quiet:
            print(f"[{n}/{total}] {wl} x {policy}: {wall_s:.1f} s", file=sys.stderr)

    try:
        cells = run_grid(config, host, policies, workloads, out, base=args.base, on_cell=on_cell,
                         should_stop=stop.is_set, backend=args.backend, backend_options=backend_options)
    finally:
        for s, h in previous.items():
            signal.signal(s, h)
    meta = {
        "config": str(config.path),
        "policies": ", ".join(policies),
        "workloads": ", ".join(w.name for w in workloads),
        "predictor": cells[0].summary["predictor"]["name"] if cells else None,
        "backend": backend,
    }
    meta.update({k: v for k, v in backend_options.items()})
    paths = write_results(cells, out, meta)
    wrote = [str(p) for p in paths.values()]
    if not args.no_plots and cells:
        pics = plot(cells, out)
        if isinstance(pics, str):
            print(f"ipa-ext: note: no plots: {pics}", file=sys.stderr)
        else:
            wrote += [str(p) for p in pics]
    if not args.quiet:
        print(paths["md"].read_text(), end="")
        print(f"wrote {', '.join(wrote)}")
    if cells and cells[-1].summary.get("interrupted"):
        caught.append(cells[-1].summary["interrupted"])
    if caught:
        print(f"ipa-ext: stopped by {caught[0]} after {len(cells)} runs", file=sys.stderr)
        return 128 + int(getattr(signal, caught[0]))
    return 0
