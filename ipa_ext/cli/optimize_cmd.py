"""``ipa-ext optimize CONFIG --rate R``: one decision, with its objective terms.

With many candidates (a large ``num_state_limit``) it prints the best in full,
a table of the first ``--show`` and how many more the pool holds.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

from ..config.config import load_config, parse_policy
from ..config.show import shown
from ..errors import ConfigError
from ..optimizers import Decision
from ..problem.ensemble import ACCURACY_MODEL, EnsembleOption
from ..problem.mix import stage_parts
from ..problem.problem import Evaluation, Option, Problem
from ..report.summary import accuracy_term_note
from ..report.tables import table
from ..units import MS_PER_S
from .common import check_finite, load_host, print_json, resolve_rate, warn_failures


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("optimize", help="choose a configuration for a predicted rate")
    p.add_argument("config", help="ipa-ext config YAML")
    p.add_argument("--rate", type=float, help="predicted arrival rate in rps (default: config rate_rps)")
    p.add_argument("--optimizer", help="optimizer, NAME[:key=value...] (default: the config's); with the "
                   "config's own optimizer name, the options given here override the config's")
    p.add_argument("-k", "--num-states", type=int, dest="k", help="how many best configurations (default: num_state_limit)")
    p.add_argument("--delta", type=float, help="weight of power in watts (the power objective)")
    p.add_argument("--epsilon", type=float, help="weight of carbon in gCO2/s")
    p.add_argument("--power-cap", type=float, dest="power_cap_w", help="cap on pipeline power in watts")
    p.add_argument("--at", type=float, dest="at_s", metavar="S",
                   help="seconds into the config's carbon trace: the intensity for the carbon term")
    p.add_argument("--show", type=int, default=SHOW, metavar="N",
                   help=f"print at most N candidates (default {SHOW}; 0: all), also with --json")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=run)


SHOW = 10
"""Candidates printed by default; a pool of hundreds is summarised after these."""


def decision_dict(problem: Problem, decision: Decision, show: int = 0) -> dict[str, Any]:
    """``ipa-ext optimize --json``: the decision, its best candidate's fields at the top level,
    and the first ``show`` candidates (all of them when ``show`` is 0) with the pool's size."""
    out: dict[str, Any] = {
        "pipeline": problem.pipeline.name,
        "optimizer": decision.optimizer,
        "rate_rps": decision.rate_rps,
        "sla_s": problem.sla_s,
        "sla_source": problem.sla_source,
        "decision_time_s": decision.decision_time_s,
        "feasible": decision.feasible,
        "reason": decision.reason,
        "weights": used_weights(problem, decision),
    }
    if decision.best is not None:
        out.update(evaluation_dict(problem, decision.best))
        listed = decision.candidates if show <= 0 else decision.candidates[:show]
        out["candidates"] = [evaluation_dict(problem, c) for c in listed]
        out["candidate_count"] = len(decision.candidates)
    else:
        out["objective"] = None
        out["candidates"] = []
    if decision.info:
        out["info"] = dict(decision.info)
    return out


def used_weights(problem: Problem, decision: Decision) -> dict[str, float]:
    """The weights the optimizer scored with: its own when it says so (``ilp`` zeroes
    the energy weights), else the problem's."""
    return dict(decision.info.get("weights") or problem.settings.weights)


def evaluation_dict(problem: Problem, ev: Evaluation) -> dict[str, Any]:
    _, latency, thr = _part_rows(problem, ev)
    stages = [{"stage": problem.pipeline.stages[i].name, **row} for i, row in enumerate(ev.stage_rows())]
    for row, o, sc in zip(stages, ev.options, ev.config):
        if isinstance(o, EnsembleOption):  # each member's own facts; the row's are the ensemble's
            row.update(accuracy_pct=o.accuracy_pct, accuracy_model=ACCURACY_MODEL, members=[
                {**m.config().as_dict(), "latency_s": m.latency_s, "capacity_rps": m.capacity_rps,
                 "cores": m.cores} for m in o.members])
        parts = stage_parts(sc)
        if len(parts) > 1:  # a mix: each part and its share of the stage's load
            row["parts"] = [{**p.as_dict(), "share": share} for p, share in parts]
    d: dict[str, Any] = {
        "objective": ev.objective,
        "terms": dict(ev.terms),
        "weighted_terms": dict(ev.weighted),
        "latency_s": latency,
        "throughput_rps": thr,
        "stages": stages,
        "violations": list(ev.violations),
    }
    if "energy" in ev.terms:
        d["power"] = {"watts": ev.terms["energy"], "quality": "estimated", "source": "profiles"}
    return d


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    host = load_host(args, config)
    warn_failures(host)
    rate = resolve_rate(args, config)
    for flag, value in (("--delta", args.delta), ("--epsilon", args.epsilon), ("--at", args.at_s)):
        check_finite(flag, value)
    check_finite("--power-cap", args.power_cap_w, positive=True)
    overrides: dict[str, Any] = {}
    weights = dict(config.settings.weights)
    for key in ("delta", "epsilon"):
        if getattr(args, key) is not None:
            weights[key] = getattr(args, key)
    overrides["weights"] = weights
    if args.power_cap_w is not None:
        overrides["power_cap_w"] = args.power_cap_w
    if args.at_s is not None:
        if config.carbon is None:
            raise ConfigError("--at needs a carbon intensity (carbon.trace or carbon.intensity_g_per_kwh)",
                              path=config.path, where="carbon")
        overrides["carbon_intensity_g_per_kwh"] = config.carbon.at(args.at_s)
    problem = config.build_problem(host, **overrides)
    # --delta, --epsilon, --power-cap and --at also replace optimizer options of those names
    # (energy-ilp takes them as options), which the config may set.
    flags = {"delta": args.delta, "epsilon": args.epsilon, "power_cap_w": args.power_cap_w,
             "carbon_intensity_g_per_kwh": overrides.get("carbon_intensity_g_per_kwh")}
    flags = {k: v for k, v in flags.items() if v is not None}
    if args.optimizer:
        name, cli_options = parse_policy(args.optimizer)
        for key in cli_options.keys() & flags.keys():
            if cli_options[key] != flags[key]:
                raise ConfigError(f"{key} is {shown(cli_options[key])} here and {shown(flags[key])} in its own flag; "
                                  "give it once", where="--optimizer")
        base = dict(config.optimizer.options) if name == config.optimizer.name else {}
        options, where, path = {**base, **cli_options}, "--optimizer", None
    else:
        name, options = config.optimizer.name, dict(config.optimizer.options)
        where, path = config.optimizer.where, config.path
    options.update({k: v for k, v in flags.items() if k in options})
    optimizer = host.registry.create("optimizer", name, options, where=where, path=path)
    if args.k is not None and args.k < 1:
        raise ConfigError(f"-k must be >= 1, got {args.k}")
    if args.show < 0:
        raise ConfigError(f"--show must be >= 0, got {args.show}")
    decision = optimizer.optimize(problem, rate, config.settings.initial, args.k)
    if args.json:
        print_json(decision_dict(problem, decision, args.show))
    else:
        _print(problem, decision, args.show)
    if not decision.feasible:  # stderr also with --json: exit 1 always comes with its one line
        import sys

        print(f"ipa-ext: error: {decision.reason}", file=sys.stderr)
        return 1
    return 0


def _print(problem: Problem, decision: Decision, show: int = SHOW) -> None:
    print(
        f"pipeline {problem.pipeline.name}  rate {decision.rate_rps:g} rps  optimizer "
        f"{decision.optimizer}  decided in {decision.decision_time_s * MS_PER_S:.1f} ms"
    )
    for note in decision.info.get("notes", ()):
        print(f"note: {note}")
    if not decision.feasible:
        return
    n = len(decision.candidates)
    if show <= 0 or n <= show:
        for rank, ev in enumerate(decision.candidates, start=1):
            if n > 1:
                print(f"\ncandidate {rank}")
            _print_candidate(problem, decision, ev)
        return
    print(f"\ncandidate 1 of {n}")
    _print_candidate(problem, decision, decision.candidates[0])
    print(f"\nthe first {show} of {n} candidates:")
    rows = []
    for rank, ev in enumerate(decision.candidates[:show], start=1):
        stages = " | ".join(" + ".join(f"{m.variant} cpu{m.cpu:g} b{m.batch} x{m.replicas}" for m in _members(o))
                            for o in ev.options)
        rows.append([rank, f"{ev.objective:.8g}", ev.latency_s, sum(o.cores for o in ev.options), stages])
    print(table(["rank", "objective", "latency_s", "cores", "configuration"], rows))
    print(f"... and {n - show} more {_pool_note(decision)}; --show N prints more (0: all)")


def _pool_note(decision: Decision) -> str:
    """What the rest of the list is: the whole feasible set, or the best k of how many."""
    info = decision.info
    feasible = info.get("feasible")
    if info.get("complete"):
        return "(every feasible configuration at this rate is listed)"
    if feasible is not None:
        return f"(the best {len(decision.candidates)} of {feasible} feasible configurations)"
    return f"(the best {len(decision.candidates)})"


def _part_rows(problem: Problem, ev: Evaluation) -> tuple[list[list[Any]], float, float]:
    """One row per stage, per part of a stage mix (with its load share) or per member of an ensemble;
    the pipeline's latency (each stage's slowest part or member) and throughput (each stage's summed
    capacity; an ensemble's is its slowest member's)."""
    rows, latency, thr = [], 0.0, math.inf
    mixed = any(len(stage_parts(sc)) > 1 for sc in ev.config)
    for i, (sc, main) in enumerate(zip(ev.config, ev.options)):
        parts = stage_parts(sc)
        opts = [(problem.make_option(i, p.variant, p.cpu, p.batch, p.replicas, share * ev.rate_rps), share)
                for p, share in parts] if len(parts) > 1 else [(main, 1.0)]
        latency += max(o.latency_s for o, _ in opts)
        thr = min(thr, sum(o.capacity_rps for o, _ in opts))
        for o, share in opts:
            for j, m in enumerate(_members(o)):  # an ensemble's members, each on a row of its own
                row = [problem.pipeline.stages[i].name if j == 0 else "  + member", m.variant, f"{m.cpu:g}",
                       m.batch, m.replicas, m.model_latency_s, m.queue_s, m.capacity_rps, m.cores]
                rows.append(row + [f"{share:.4g}"] if mixed else row)
    return rows, latency, thr


def _print_candidate(problem: Problem, decision: Decision, ev: Evaluation) -> None:
    weights = used_weights(problem, decision)
    rows, latency, thr = _part_rows(problem, ev)
    head = ["stage", "variant", "cpu", "batch", "replicas", "latency_s", "queue_s", "capacity_rps", "cores"]
    print(table(head + (["share"] if len(rows[0]) > len(head) else []), rows))
    for i, o in enumerate(ev.options):
        if len(_members(o)) > 1:
            print(_ensemble_line(problem.pipeline.stages[i].name, o))  # type: ignore[arg-type]
    print(f"latency  {latency:.4g} s  <= SLA {ev.sla_s:.4g} s ({problem.sla_source})")
    print(f"throughput  {thr:.4g} rps  >= rate {decision.rate_rps:g} rps")
    if "energy" in ev.terms:
        info = decision.info
        cap = info["power_cap_w"] if "power_cap_w" in info else problem.settings.power_cap_w
        limit = f"  <= power_cap_w {cap:g} W" if cap is not None else ""
        carbon = f"  carbon {ev.terms['carbon']:.4g} gCO2/s" if "carbon" in ev.terms else ""
        print(f"power  {ev.terms['energy']:.4g} W (estimated from profiles){limit}{carbon}")
    parts = []
    for obj in problem.reported_objectives():
        w = float(weights.get(obj.weight, problem.settings.weight(obj.weight)))
        sign = "+" if obj.sense > 0 else "-"
        unit = f" {obj.unit}" if obj.unit else ""
        label = f"{obj.name} {ev.terms[obj.name]:.4g}{unit}"
        if obj.name in ("power", "carbon"):
            label += " (estimated from profiles)"
        parts.append(f"{sign} {obj.weight} {w:g} x {label}")
    print(f"objective {ev.objective:.6g} = " + " ".join(parts).lstrip("+ "))
    if "accuracy" in ev.terms:
        print(_accuracy_line(problem, ev))


def _accuracy_line(problem: Problem, ev: Evaluation) -> str:
    """The accuracy term per stage, and how it is scored (rank-normalised scores read as a bug otherwise)."""
    st = problem.settings
    scores = problem.stage_accuracies
    per_stage = []
    for i, (stage, sc, o) in enumerate(zip(problem.pipeline.stages, ev.config, ev.options)):
        parts = stage_parts(sc)
        if len(_members(o)) > 1:  # an ensemble: the modelled majority-vote score
            per_stage.append(f"{stage.name} {'+'.join(m.variant for m in _members(o))} {o.accuracy:.4g}")
        elif len(parts) == 1:
            per_stage.append(f"{stage.name} {sc.variant} {scores[i][sc.variant]:.4g}")
        else:  # a mix: the load-weighted score
            mix = " + ".join(f"{share:.3g} x {p.variant} {scores[i][p.variant]:.4g}" for p, share in parts)
            per_stage.append(f"{stage.name} {sum(share * scores[i][p.variant] for p, share in parts):.4g} "
                             f"({mix})")
    note = accuracy_term_note(st.normalize_accuracy, st.accuracy_method, len(per_stage))
    return f"accuracy {ev.terms['accuracy']:.4g} from {', '.join(per_stage)} ({note})"


def _members(o: Option) -> tuple[Option, ...]:
    """An ensemble's members (Cocktail: every one serves every request); a plain option is its own one."""
    return o.members if isinstance(o, EnsembleOption) else (o,)


def _ensemble_line(stage: str, o: EnsembleOption) -> str:
    """What an ensemble stage is and how its figures add up."""
    return (f"ensemble {stage}: {' + '.join(m.variant for m in o.members)}, every member serves every "
            f"request; accuracy {o.accuracy_pct:.4g} % {ACCURACY_MODEL}; latency = the slowest member's "
            f"{o.latency_s:.4g} s (queue included), cores = the sum {o.cores:g}")
