"""``ipa-ext pareto CONFIG --rate R``: sweep the power weight delta and report the accuracy-power frontier.

For each delta the energy-weighted ILP picks the best configuration at the
rate; the distinct configurations found, and which of them no other beats on
both accuracy and power, are printed and written as CSV and JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path
from typing import Any, Sequence

from ..config.config import Config, load_config
from ..config.show import shown
from ..errors import ConfigError, InputError
from ..host import PluginHost, known_options
from ..optimizers import Optimizer
from ..report.summary import accuracy_term_note
from ..report.tables import table
from .common import check_finite, load_host, print_json, resolve_rate, warn_failures

DEFAULT_DELTAS = (0.0, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)
DEFAULT_SWEEP_OPTIMIZER = "energy-ilp"
"""``--optimizer``'s documented default: the exact optimizer with the power term."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("pareto", help="sweep the power weight delta: the accuracy-vs-power frontier")
    p.add_argument("config", help="ipa-ext config YAML")
    p.add_argument("--rate", type=float, help="predicted arrival rate in rps (default: config rate_rps)")
    p.add_argument(
        "--deltas", default=",".join(f"{d:g}" for d in DEFAULT_DELTAS),
        help="comma-separated delta values in 1/W (default: %(default)s)",
    )
    p.add_argument("--alpha", type=float, help="override the accuracy weight")
    p.add_argument("--beta", type=float, help="override the cores weight")
    p.add_argument("--gamma", type=float, help="override the batch weight")
    p.add_argument("--optimizer", default=DEFAULT_SWEEP_OPTIMIZER,
                   help=f"optimizer that honours delta (default {DEFAULT_SWEEP_OPTIMIZER})")
    p.add_argument("--out", type=Path, default=Path("."), help="directory for the CSV and JSON (default: .)")
    p.add_argument("--json", action="store_true", help="print JSON instead of the table")
    p.set_defaults(func=run)


def parse_deltas(text: str) -> tuple[float, ...]:
    """``"0,0.01,0.1"`` -> (0.0, 0.01, 0.1); a :class:`ConfigError` naming --deltas otherwise."""
    try:
        values = tuple(float(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise ConfigError(f"expected comma-separated numbers, got {shown(text)}", where="--deltas") from None
    if not values or any(not math.isfinite(v) or v < 0 for v in values):
        raise ConfigError(f"expected finite numbers >= 0, got {shown(text)}", where="--deltas")
    return values


def frontier(points: Sequence[tuple[float, float]]) -> list[bool]:
    """For (accuracy, power) points: True where no other point has accuracy >= and power <=
    with one of them strictly better."""
    out = []
    for i, (a, p) in enumerate(points):
        dominated = any(
            (a2 >= a and p2 <= p) and (a2 > a or p2 < p) for j, (a2, p2) in enumerate(points) if j != i
        )
        out.append(not dominated)
    return out


def run(args: argparse.Namespace) -> int:
    deltas = parse_deltas(args.deltas)
    config = load_config(args.config)
    host = load_host(args, config)
    warn_failures(host)
    rate = resolve_rate(args, config)
    if not config.pipeline.has_power:
        raise ConfigError(
            "the profiles have no power fields (power_w or energy_j_per_request); nothing to trade",
            path=config.path, where="profiles",
        )
    optimizer = sweep_optimizer(host, config, args.optimizer)
    base_weights = dict(config.settings.weights)
    for key in ("alpha", "beta", "gamma"):
        check_finite(f"--{key}", getattr(args, key))
        if getattr(args, key) is not None:
            base_weights[key] = getattr(args, key)
    rows = [sweep_point(config, host, optimizer, rate, {**base_weights, "delta": d}) for d in deltas]
    feasible = [r for r in rows if r["feasible"]]
    flags = frontier([(r["accuracy"], r["power_w"]) for r in feasible])
    for r, on in zip(feasible, flags):
        r["on_frontier"] = on
    result = {
        "pipeline": config.pipeline.name,
        "rate_rps": rate,
        "optimizer": args.optimizer,
        "weights": {k: v for k, v in base_weights.items() if k != "delta"},
        "power_quality": "estimated",
        "power_source": "profiles",
        "points": rows,
    }
    csv_path, json_path = _write(args.out, config.pipeline.name, rate, rows, result)
    if args.json:
        print_json(result)
        return 0
    _print(config, args.optimizer, rate, rows)
    distinct = {(r["accuracy"], r["power_w"]) for r, on in zip(feasible, flags) if on}
    print(f"{len(distinct)} distinct frontier point(s); wrote {csv_path} and {json_path}")
    return 0


def sweep_optimizer(host: PluginHost, config: Config, name: str) -> Optimizer:
    """The optimizer to sweep with. One that declares it ignores delta is refused; it gets the
    config optimizer's options (but delta) when it takes every option that one takes, so they
    mean the same there (``ilp``'s solver options for ``energy-ilp``, say)."""
    factory = host.registry.get("optimizer", name, where="--optimizer").factory
    if "delta" in getattr(factory, "ignored_weights", ()):
        raise ConfigError(f"{name} ignores delta; sweep with {DEFAULT_SWEEP_OPTIMIZER} (the default) "
                          "or brute-force", where="--optimizer")
    options: dict[str, Any] = {}
    if config.optimizer.name in host.registry.names("optimizer"):
        theirs = known_options(host.registry.get("optimizer", config.optimizer.name).factory)
        ours = known_options(factory)
        if theirs is not None and ours is not None and set(theirs) <= set(ours):
            options = {k: v for k, v in config.optimizer.options.items() if k != "delta"}
    return host.registry.create("optimizer", name, options, where="--optimizer")


def sweep_point(config: Config, host: PluginHost, optimizer: Optimizer, rate: float,
                weights: dict[str, float]) -> dict[str, Any]:
    """One delta's row: the best configuration at ``rate`` under ``weights``, or why none is feasible."""
    problem = config.build_problem(host, weights=weights)
    decision = optimizer.optimize(problem, rate, config.settings.initial, 1)
    row: dict[str, Any] = {"delta": weights["delta"], "feasible": decision.feasible}
    best = decision.best
    if best is None:
        row.update(reason=decision.reason)
        return row
    row.update(
        accuracy=best.terms["accuracy"],
        power_w=best.terms["energy"],
        cores=best.terms["cost"],
        batch=best.terms["batch"],
        objective=best.objective,
        latency_s=best.latency_s,
        configuration=" | ".join(f"{o.variant} cpu{o.cpu:g} b{o.batch} x{o.replicas}" for o in best.options),
        decision_time_s=decision.decision_time_s,
    )
    return row


def _print(config: Config, optimizer: str, rate: float, rows: list[dict[str, Any]]) -> None:
    headers = ["delta", "accuracy", "power_w", "cores", "objective", "frontier", "configuration"]
    table_rows = []
    for r in rows:
        if r["feasible"]:
            table_rows.append([
                f"{r['delta']:g}", r["accuracy"], r["power_w"], r["cores"], r["objective"],
                "*" if r["on_frontier"] else "", r["configuration"],
            ])
        else:
            table_rows.append([f"{r['delta']:g}", "-", "-", "-", "-", "", r["reason"]])
    print(f"pipeline {config.pipeline.name}  rate {rate:g} rps  optimizer {optimizer}  "
          f"power estimated from profiles")
    print(table(headers, table_rows))
    st = config.settings
    print("accuracy is the objective's accuracy term, "
          + accuracy_term_note(st.normalize_accuracy, st.accuracy_method, len(config.pipeline.stages)))


def _write(out: Path, pipeline: str, rate: float, rows: list[dict[str, Any]], result: dict[str, Any]) -> tuple[Path, Path]:
    stem = f"pareto-{pipeline}-{rate:g}rps"
    try:
        out.mkdir(parents=True, exist_ok=True)
        csv_path, json_path = out / f"{stem}.csv", out / f"{stem}.json"
        fields = ["delta", "feasible", "accuracy", "power_w", "cores", "batch", "objective", "latency_s",
                  "on_frontier", "configuration", "decision_time_s", "reason"]
        with csv_path.open("w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
            w.writeheader()
            for r in rows:
                w.writerow(r)
        json_path.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write results: {exc.strerror or exc}", path=exc.filename or out) from None
    return csv_path, json_path
