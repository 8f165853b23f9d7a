"""``ipa-ext adapt CONFIG --backend kubernetes|local``: the adaptation loop on a live backend.

The local backend also replays a workload (``--workload``, ``--rate-scale``; docs/local.md).

The same loop as ``simulate`` (:mod:`ipa_ext.run.runner`), in real time, until SIGINT or
SIGTERM (or ``--duration``). Each interval appends a line to ``adaptation.jsonl``; the
adapter's metrics and the energy collector are served on ``--metrics-port``. Transient
faults are one ``ipa-ext: warning:`` line each and the loop goes on; configuration errors
end it with one ``ipa-ext: error:`` line and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any, Mapping

from ..adapt.adapter import RunResult
from ..adapt.metrics import AdapterMetrics
from ..backends import Backend
from ..config.config import Config, load_config
from ..config.show import shown
from ..energy.export import EnergyMetrics
from ..errors import ConfigError
from ..host import PluginHost
from ..report.summary import write_json, write_seconds_csv
from ..run.runner import Prepared, execute, prepare, run_summary
from ..workloads import Workload, parse_window, resolve
from .common import load_host, output_dir, warn_failures
from .simulate_cmd import LOG_NAME, SECONDS_NAME, SUMMARY_NAME, default_out


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("adapt", help="run the adaptation loop on a live backend (kubernetes, local)")
    p.add_argument("config", help="ipa-ext config YAML")
    p.add_argument("--backend", help="live backend (default: the config's backend), e.g. kubernetes")
    p.add_argument("--dry-run", action="store_true",
                   help="compute and print the patches (JSON lines on stdout), send none")
    p.add_argument("--metrics-port", type=int, help="serve the adapter's metrics on this port")
    p.add_argument("--metrics-bind", default="0.0.0.0", help="address to serve metrics on (default 0.0.0.0)")
    p.add_argument("--optimizer", help="optimizer or policy, NAME[:key=value...] (default: the config's)")
    p.add_argument("--base", help="exact optimizer the baseline policies delegate to")
    p.add_argument("--out", help="output folder (default runs/adapt-<time>)")
    p.add_argument("--duration", type=float, help="stop after this many seconds (default: run until stopped)")
    p.add_argument("--steps", type=int, help="stop after this many adaptation steps (the initial record is step 0)")
    p.add_argument("--workload", help="local backend: synthetic pattern, IPA window name, or trace path to "
                                      "replay (default: the config's)")
    p.add_argument("--trace", help="local backend: Twitter-format trace file for IPA's named windows")
    p.add_argument("--window", help="local backend: START-END seconds of a trace (end exclusive, as IPA)")
    p.add_argument("--damping", type=int, help="local backend: IPA's damping_factor for a trace window")
    p.add_argument("--rate-scale", type=float,
                   help="local backend: multiply the workload's request rates (e.g. 0.1 on a small machine)")
    p.add_argument("--no-seconds", action="store_true", help="skip the per-second CSV (local backend)")
    p.add_argument("--quiet", action="store_true", help="no line per interval (warnings still show)")
    p.add_argument("-v", "--verbose", action="store_true", help="also log retries and other details")
    p.set_defaults(func=run)


class _Lines(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"ipa-ext: {record.levelname.lower()}: {record.getMessage()}"


def _logging(verbose: bool) -> logging.Handler:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Lines())
    logger = logging.getLogger("ipa_ext")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO if verbose else logging.WARNING)
    return handler


def step_line(record: Mapping[str, Any], stages: tuple[str, ...]) -> str:
    """One line per interval: what was observed, decided and applied."""
    d = record.get("decision") or {}
    cfg = record.get("config") or {}
    parts = [f"step {record['step']} at {record['time_s']:.0f} s"]
    if record.get("predicted_rps") is not None:
        parts.append(f"{record['predicted_rps']:g} rps predicted")
    if cfg:
        parts.append(", ".join(f"{s} {c['variant']} x{c['replicas']} b{c['batch']} cpu {c['cpu']:g}"
                               for s, c in ((s, cfg[s]) for s in stages)))
    if (record.get("backend") or {}).get("oversubscribed"):
        parts.append("oversubscribed")
    if record.get("fault"):
        parts.append("kept (fault)")
    elif d.get("kind") == "optimizer":
        if not d.get("feasible"):
            parts.append("kept (infeasible)")
        else:
            ok = record.get("change_successful") or []
            failed = [s for s, good in zip(stages, ok) if not good]
            parts.append(("not applied: " + ", ".join(failed)) if failed
                         else ("changed" if d.get("config_changed") else "unchanged"))
    e = record.get("energy")
    if e and e.get("total_j") is not None:
        jpr = e.get("j_per_request")
        parts.append(f"{e['total_j']:.1f} J {e.get('quality')}"
                     + (f", {jpr:.3f} J/request" if jpr is not None else ""))
    return "; ".join(parts)


def _workload(args: argparse.Namespace, config: Any, factory: Any) -> tuple[Workload | None, dict[str, Any]]:
    """The workload a backend that replays one needs (the local backend), and its load options."""
    flags = {"--workload": args.workload, "--trace": args.trace, "--window": args.window,
             "--damping": args.damping, "--rate-scale": args.rate_scale}
    if not getattr(factory, "needs_workload", False):
        given = [k for k, v in flags.items() if v is not None]
        if given:
            raise ConfigError(f"{given[0]} applies to a backend that replays a workload (local)", where=given[0])
        return None, {}
    if args.rate_scale is not None and not args.rate_scale > 0:
        raise ConfigError(f"--rate-scale must be > 0, got {args.rate_scale:g}", where="--rate-scale")
    window = parse_window(args.window) if args.window else None
    workload = resolve(args.workload, config.section("workload"), config.base_dir, config.path, window_s=window,
                       damping_factor=args.damping, trace=args.trace)
    options: dict[str, Any] = {}
    if args.rate_scale is not None:
        options["rate_scale"] = args.rate_scale
    if args.duration is not None:
        options["duration_s"] = args.duration
    return workload, options


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    host = load_host(args, config)
    warn_failures(host)
    if args.duration is not None and not args.duration > 0:
        raise ConfigError(f"--duration must be > 0, got {args.duration:g}")
    if args.steps is not None and args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}", where="--steps")
    if args.metrics_port is not None and not 0 <= args.metrics_port <= 65535:
        raise ConfigError(f"--metrics-port must be 0..65535, got {args.metrics_port}")
    factory = _check_live(args, config, host)
    workload, options = _workload(args, config, factory)
    if args.dry_run:
        options["dry_run"] = True
    prepared = prepare(config, host, optimizer=args.optimizer, base=args.base, backend=args.backend,
                       backend_options=options)
    stages = tuple(prepared.problem.pipeline.stage_names)
    metrics = AdapterMetrics(stages)
    energy = EnergyMetrics()
    metrics.add_collector(energy)
    server = _serve(metrics, args)
    out = Path(args.out) if args.out else default_out("adapt")
    output_dir(out)
    handler = _logging(args.verbose)
    timer: threading.Timer | None = None
    running: list[Any] = []

    def on_record(record: Mapping[str, Any]) -> None:
        metrics.record_step(record, energy)
        if args.dry_run:
            _print_patches(record)
        if not args.quiet:
            print(f"ipa-ext: {step_line(record, stages)}", file=sys.stderr, flush=True)
        if args.steps is not None and running and record.get("step", 0) >= args.steps:
            running[0].stop_event.set()

    def on_fault(phase: str, exc: Exception) -> None:
        metrics.record_fault(getattr(exc, "component", "") or "backend")

    def hook(adapter: Any) -> None:
        nonlocal timer
        running.append(adapter)
        if args.duration is not None:
            timer = threading.Timer(args.duration, adapter.stop_event.set)
            timer.daemon = True
            timer.start()

    try:
        result, backend, _ = execute(prepared, workload, log_path=out / LOG_NAME, on_record=on_record,
                                     on_fault=on_fault, adapter_hook=hook)
    finally:
        if timer is not None:
            timer.cancel()
        if server is not None:
            server.close()
        logging.getLogger("ipa_ext").removeHandler(handler)
    return _finish(args, prepared, result, backend, workload, out)


def _check_live(args: argparse.Namespace, config: Config, host: PluginHost) -> Any:
    """The backend (``--backend`` or the config's) must be live: adapt runs in real time; its factory."""
    name = args.backend or config.backend.name
    reg = host.registry.get("backend", name, path=None if args.backend else config.path,
                            where="--backend" if args.backend else config.backend.where or "backend")
    if not getattr(reg.factory, "live", False):
        raise ConfigError(f"backend {shown(name)} is not live; ipa-ext adapt drives a live backend such as "
                          "kubernetes (ipa-ext simulate runs the simulation)",
                          path=None if args.backend else config.path,
                          where="--backend" if args.backend else "backend")
    return reg.factory


def _serve(metrics: AdapterMetrics, args: argparse.Namespace) -> Any:
    """The metrics server on ``--metrics-port`` (None without one)."""
    if args.metrics_port is None:
        return None
    try:
        return metrics.serve(args.metrics_port, args.metrics_bind)
    except OSError as exc:
        raise ConfigError(f"cannot serve metrics on {args.metrics_bind}:{args.metrics_port}: "
                          f"{exc.strerror or exc}", where="--metrics-port") from None


def _print_patches(record: Mapping[str, Any]) -> None:
    """``--dry-run``: the patches a step would apply, one JSON line each on stdout."""
    for st in ((record.get("backend") or {}).get("apply") or {}).get("stages") or []:
        if st.get("patch") is not None:
            sys.stdout.write(json.dumps({"step": record["step"], "stage": st["stage"],
                                         "target": st["target"], "patch_type": st["patch_type"],
                                         "patch": st["patch"]}, sort_keys=True) + "\n")
    sys.stdout.flush()


def _finish(args: argparse.Namespace, prepared: Prepared, result: RunResult, backend: Backend,
            workload: Workload | None, out: Path) -> int:
    """Write the run's summary; the exit code (128+N after signal N)."""
    summary = run_summary(prepared, result, backend, workload)
    summary["faults"] = result.faults
    report = getattr(backend, "run_report", None)
    if callable(report):
        summary["backend_report"] = report()
    summary["dry_run"] = bool(args.dry_run)
    files = {"log": str(out / LOG_NAME), "summary": str(out / SUMMARY_NAME)}
    if not args.no_seconds and write_seconds_csv(out / SECONDS_NAME, backend, result, prepared.config.carbon):
        files["seconds"] = str(out / SECONDS_NAME)
    summary["files"] = files
    write_json(out / SUMMARY_NAME, summary)
    if not args.quiet:
        print(f"ipa-ext: {len(result.steps)} intervals, {result.faults} transient faults; wrote "
              f"{', '.join(files.values())}", file=sys.stderr)
    if result.interrupted:
        return 128 + int(getattr(signal, result.interrupted))
    return 0
