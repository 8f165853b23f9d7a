"""``ipa-ext validate CONFIG``: check a config (or an upstream IPA config) and summarise it."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any, Mapping

from ..config.config import Config, load_config
from ..config.ipa_import import looks_like_ipa_config, map_ipa_config
from ..config.show import shown
from ..config.yamlsafe import read_file
from ..errors import ConfigError
from ..host import PluginHost
from ..optimize.selection import COMBINATIONS_PER_SOLVE, ENUMERATION_LIMIT, ENUMERATION_MIN_K, Selection, count_feasible
from ..problem.problem import Problem
from ..report.tables import table
from .common import load_host, print_json, warn_failures


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="validate a config and print what it resolves to")
    p.add_argument("config", help="ipa-ext config YAML (or an upstream IPA experiment config)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    data = read_file(args.config, ConfigError, unique_keys=False)
    if looks_like_ipa_config(data):
        return _ipa(args, data)
    config = load_config(args.config)
    host = load_host(args, config)
    warn_failures(host)
    problem = config.build_problem(host)
    # Components the config names explicitly must exist and accept their options.
    host.registry.create("optimizer", config.optimizer.name, config.optimizer.options,
                         where=config.optimizer.where, path=config.path)
    if "backend" in config.raw:
        host.registry.get("backend", config.backend.name, path=config.path, where=config.backend.where)
    for spec in config.energy_sources:
        host.registry.get("energy source", spec.name, path=config.path, where=spec.where)
    _check_loop_sections(config, host)
    base = problem.base_allocations() if problem.settings.allocation_mode == "base" else None
    summary = {
        "config": str(config.path),
        "pipeline": config.pipeline.name,
        "stages": [
            {
                "name": s.name,
                "variants": {v.name: v.accuracy for v in s.variants},
                "profile_rows": len(s.profiles),
                "variant_profile_rows": {v.name: sum(1 for (vn, _c, _b) in s.profiles if vn == v.name)
                                         for v in s.variants},
                "stage_sla_s": problem.stage_slas_s[i],
                "base_allocation": dict(base[i]) if base else None,
            }
            for i, s in enumerate(config.pipeline.stages)
        ],
        "sla_s": problem.sla_s,
        "sla_source": problem.sla_source,
        "power_fields": config.pipeline.has_power,
        "optimizer": config.optimizer.name,
        "weights": dict(problem.settings.weights),
        "ipa_ignored": dict(config.ipa.ignored) if config.ipa else {},
        "candidate_pool": candidate_pool(config, problem, host),
    }
    if args.json:
        print_json(summary)
        return 0
    print(f"{config.path}: OK")
    print(f"pipeline {config.pipeline.name}: {len(config.pipeline.stages)} stages, "
          f"SLA {problem.sla_s:.4g} s ({problem.sla_source})")
    rows = []
    for st in summary["stages"]:
        b = st["base_allocation"]
        for v, acc in st["variants"].items():
            rows.append([st["name"], v, acc, b[v] if b else "-", st["variant_profile_rows"][v]])
    print(table(["stage", "variant", "accuracy", "base cpu", "profile rows"], rows))
    print(f"optimizer {config.optimizer.name}; power fields: {'yes' if config.pipeline.has_power else 'no'}")
    if summary["candidate_pool"]:
        print(pool_line(summary["candidate_pool"]))
    if config.ipa:
        print(f"imported from IPA config {config.ipa.path}; ignored keys: {', '.join(config.ipa.ignored) or 'none'}")
    return 0


def candidate_pool(config: Config, problem: Problem, host: PluginHost) -> dict[str, Any] | None:
    """For k > 1: how many configurations a decision can list at most, and at ``rate_rps``
    how many are feasible (the pool never holds more, whatever k says)."""
    loop_k = (config.raw.get("adaptation") or {}).get("num_candidates")
    k, source = problem.settings.num_state_limit, "num_state_limit"
    if isinstance(loop_k, int) and not isinstance(loop_k, bool) and loop_k > k:
        k, source = loop_k, "adaptation.num_candidates"
    if k <= 1:
        return None
    initial = problem.settings.initial
    try:
        per_stage = [len(problem.stage_choices(i, initial[i] if initial else None))
                     for i in range(len(problem.pipeline.stages))]
    except ConfigError:
        return None  # baseline_mode scale without a configuration: said elsewhere
    out: dict[str, Any] = {"k": k, "source": source, "combinations": math.prod(per_stage),
                           "per_stage": dict(zip((s.name for s in problem.pipeline.stages), per_stage))}
    if config.rate_rps is not None:
        out["rate_rps"] = config.rate_rps
        out["feasible"] = _feasible_at(problem, float(config.rate_rps))
    if getattr(host.registry.get("optimizer", config.optimizer.name).factory, "k_best_engine", False):
        out["method"] = ("enumeration" if k >= ENUMERATION_MIN_K and out["combinations"] <= min(
            ENUMERATION_LIMIT, k * COMBINATIONS_PER_SOLVE) else "milp")
    return out


def _feasible_at(problem: Problem, rate: float) -> int | None:
    opts = problem.options(rate, problem.settings.initial)
    cap = problem.settings.power_cap_w
    powered = cap is not None and problem.pipeline.has_power
    return count_feasible(Selection(
        coefficients=[[0.0] * len(o) for o in opts],
        latencies=[[x.latency_s for x in o] for o in opts],
        latency_bound=problem.sla_s,
        powers=[[x.profile.power_at(rate, x.replicas) for x in o] for o in opts] if powered else None,
        power_bound=cap if powered else None,
    ))


def pool_line(pool: Mapping[str, Any]) -> str:
    """The candidate pool in one line of text."""
    stages = " x ".join(f"{name} {n}" for name, n in pool["per_stage"].items())
    text = (f"candidate pool: {pool['source']} {pool['k']}; a decision lists at most the "
            f"{pool['combinations']} distinct (variant, cpu, batch) configurations ({stages})")
    if "feasible" in pool:
        feasible = "too many to count" if pool["feasible"] is None else pool["feasible"]
        text += f", of which {feasible} are feasible at rate_rps {pool['rate_rps']:g}"
    if pool.get("method") == "enumeration":
        text += "; the ILP lists them by enumeration, without a solve per candidate"
    elif pool.get("method") == "milp":
        text += (f"; the ILP may solve once per candidate, up to {min(pool['k'], pool['combinations'])} "
                 "times per decision (pool_gap or a smaller k bounds it)")
    return text


def _ipa(args: argparse.Namespace, data) -> int:
    ipa = map_ipa_config(data, Path(args.config))
    if args.json:
        print_json({"ipa_config": str(ipa.path), "mapped": ipa.values, "ignored": ipa.ignored, "unknown": ipa.unknown})
        return 0
    print(f"{ipa.path}: an upstream IPA config")
    print("maps to ipa-ext keys:")
    for k, v in ipa.values.items():
        print(f"  {k}: {shown(v, None, plain=True)}")
    print("ignored:")
    for k, why in ipa.ignored.items():
        print(f"  {k}: {why}")
    if ipa.unknown:
        print(f"unknown keys (ignored): {', '.join(ipa.unknown)}")
    k = ipa.values.get("num_state_limit")
    options = (ipa.values.get("optimizer") or {}).get("options") or {}
    if isinstance(k, int) and k > 1 and "pool_gap" in options:  # what IPA's Gurobi pool maps to
        gap = options["pool_gap"]
        kept = ("only the ties of the optimum, as IPA's Gurobi pool (PoolGap 0) does" if gap == 0 else
                "every distinct feasible configuration")
        print(f"num_state_limit {k} is a pool size: a decision lists at most {kept}, and the adapter "
              "takes the one with the fewest changes")
    print("To use it, write an ipa-ext config with 'from_ipa:', 'pipeline:' and 'profiles:'.")
    for need in _still_needed(ipa.values):
        print(f"  For simulate and adapt, also set {need}")
    return 0


def _still_needed(values) -> list[str]:
    """What an imported IPA config leaves for the user to set before a run."""
    from ..run.runner import NOT_SHIPPED_PREDICTORS

    out = []
    pred = values.get("predictor") or {}
    if pred.get("name") in NOT_SHIPPED_PREDICTORS:
        out.append(f"'predictor: {{name: moving-window-max}}' (or reactive, max, mean): IPA's "
                   f"{pred['name']!r} predictor is not shipped")
    work = values.get("workload") or {}
    if work.get("type") == "twitter" and "trace" not in work:
        out.append("'workload: {trace: PATH}', the Twitter trace file (workload.tbz2), or --trace")
    return out


def _check_loop_sections(config, host) -> None:
    """The adaptation-loop sections, when present, must build (same errors as simulate)."""
    from ..run.runner import adapter_settings, build_forecaster, prepare
    from ..workloads import from_section

    # With a backend section, prepare() builds everything a run does (predictor, loop
    # settings, backend); without one, only the sections that are there.
    whole_run = any(config.raw.get(k) is not None for k in ("backend", "simulation", "kubernetes", "prometheus"))
    if not whole_run and any(k in config.raw for k in ("predictor", "adaptation")):
        _, monitoring, _ = build_forecaster(host, config)
        adapter_settings(config, monitoring)
    if config.raw.get("workload") is not None:
        from_section(config.section("workload"), config.base_dir, config.path)
    if whole_run:
        prepare(config, host)
