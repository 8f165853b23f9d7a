"""Variant mixing on pipelines of any length: every stage splits its load over a few
(variant, cpu, batch) parts, each with its own replicas, chosen exactly (docs/optimizers.md,
"Variant mixing").

:func:`solve_mix` is the entry point (``infadapter`` and ``clover`` use it; a third-party
policy may too). Summed or averaged accuracy (and any single stage) goes to the mixing MILP
of :mod:`.mixing_milp`; a product of two or more stage accuracies to the plan enumeration
of :mod:`.mixing_plans`. :func:`evaluate_mix` scores a mix with the problem's own rules.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import ConfigError
from ..objectives import Objective
from ..problem import Evaluation, Option, Problem, within
from ..problem.mix import StageMix, stage_parts

@dataclass(frozen=True)
class MixPart:
    """One part of a stage's mix: a (variant, cpu, batch) with replicas and its load in rps."""

    stage: int
    variant: str
    cpu: float
    batch: int
    replicas: int
    load: float


@dataclass(frozen=True)
class MixSpec:
    """What a mix may use: at most ``max_variants`` parts per stage (distinct variants),
    batch 1 only unless ``allow_batching``, optionally an accuracy floor (the combined
    accuracy, as ``accuracy_method`` combines it, at least ``accuracy_floor``) and optionally
    a core budget (cpu x replicas summed over every part of every stage at most ``max_cores``)."""

    max_variants: int = 2
    allow_batching: bool = False
    accuracy_floor: float | None = None
    max_cores: float | None = None
    solver: str = "auto"
    time_limit_s: float | None = 30.0

    @classmethod
    def from_options(
        cls,
        max_variants: Any = 2,
        allow_batching: Any = False,
        max_cores: Any = None,
        solver: Any = "auto",
        time_limit_s: Any = 30.0,
    ) -> MixSpec:
        """A spec from a policy's options, each checked (ValueError naming the option)."""
        from ..config.numeric import option
        from .solvers import SOLVER_CHOICES

        if not isinstance(allow_batching, bool):
            raise ValueError(f"allow_batching must be true or false, got {allow_batching!r}")
        if solver not in SOLVER_CHOICES:
            raise ValueError(f"solver must be one of {', '.join(SOLVER_CHOICES)}, got {solver!r}")
        return cls(
            max_variants=option("max_variants", max_variants, integer=True, minimum=1),
            allow_batching=allow_batching,
            max_cores=None if max_cores is None else float(option("max_cores", max_cores, positive=True)),
            solver=solver,
            time_limit_s=float(option("time_limit_s", time_limit_s, positive=True)),
        )


@dataclass(frozen=True)
class Choice:
    """A (variant, cpu, batch) a stage may use, with what the models need about it."""

    stage: int
    variant: str
    cpu: float
    batch: int
    throughput: float
    latency: float
    accuracy: float
    max_replicas: int


def stage_choices(problem: Problem, rate: float, spec: MixSpec, current: Any = None) -> list[list[Choice]]:
    """Per stage, the choices a part may take: the problem's (variant, cpu, batch) choices under
    its allocation mode and caps, batch 1 unless batching is allowed, and only those whose
    model latency fits the SLA and whose capacity under ``scaling_cap`` (and the core budget,
    alone) is positive."""
    out = []
    cap = problem.settings.scaling_cap
    for s, stage in enumerate(problem.pipeline.stages):
        cur = current[s] if current else None
        row = []
        for v, c, b in problem.stage_choices(s, cur):
            if b != 1 and not spec.allow_batching:
                continue
            prof = stage.profile(v, c, b)
            assert prof is not None
            most = part_cap(cap, spec.max_cores, c)
            if not within(prof.latency_s, problem.sla_s) or prof.throughput_rps <= 0 or most < 1:
                continue
            needed = math.ceil(rate / prof.throughput_rps) if rate > 0 else 1
            row.append(Choice(s, v, c, b, prof.throughput_rps, prof.latency_s,
                              problem.stage_accuracies[s][v], max(1, min(most, needed))))
        out.append(row)
    return out


def part_cap(scaling_cap: int, max_cores: float | None, cpu: float) -> int:
    """The most replicas one part of ``cpu`` cores may have: ``scaling_cap``, and no more than
    the core budget holds on its own."""
    if max_cores is None:
        return scaling_cap
    return min(scaling_cap, math.floor(max_cores / cpu * (1 + 1e-12)))


def part_option(problem: Problem, part: MixPart) -> Option:
    """The problem's option of a part: its replicas, and IPA's queueing term at its own load."""
    return problem.make_option(part.stage, part.variant, part.cpu, part.batch, part.replicas, part.load)


def is_accuracy(obj: Objective) -> bool:
    """Accuracy is weighted by the parts' load shares; every other term is summed over parts."""
    return obj.name == "accuracy"


def stage_accuracy(problem: Problem, parts: Sequence[MixPart], rate: float) -> float:
    """A stage's load-weighted accuracy."""
    if rate <= 0:
        return sum(problem.stage_accuracies[p.stage][p.variant] for p in parts) / len(parts)
    return sum(p.load / rate * problem.stage_accuracies[p.stage][p.variant] for p in parts)


def violations(problem: Problem, stages: Sequence[Sequence[MixPart]], rate: float) -> list[str]:
    """Why a mix breaks the constraints, by the problem's rule (``within``); empty when feasible."""
    s = problem.settings
    out = []
    for parts in stages:
        name = problem.pipeline.stages[parts[0].stage].name
        if not within(rate, sum(p.load for p in parts)) or not within(sum(p.load for p in parts), rate):
            out.append(f"{name}: loads sum to {sum(p.load for p in parts):.6g}, not the rate {rate:.6g}")
        for p in parts:
            opt = part_option(problem, p)
            if not within(p.load, opt.capacity_rps):
                out.append(f"{name}/{p.variant}: load {p.load:.4g} rps > capacity {opt.capacity_rps:.4g}")
            if not 1 <= p.replicas <= s.scaling_cap:
                out.append(f"{name}/{p.variant}: replicas {p.replicas} outside 1..{s.scaling_cap}")
    latency = sum(max(part_option(problem, p).latency_s for p in parts) for parts in stages)
    if not within(latency, problem.sla_s):
        out.append(f"latency {latency:.4g} s > SLA {problem.sla_s:.4g} s")
    if s.power_cap_w is not None and problem.pipeline.has_power:
        watts = sum(part_option(problem, p).profile.power_at(p.load, p.replicas) for ps in stages for p in ps)
        if not within(watts, s.power_cap_w):
            out.append(f"power {watts:.4g} W > power_cap_w {s.power_cap_w:.4g} W")
    return out


def evaluate_mix(problem: Problem, stages: Sequence[Sequence[MixPart]], rate: float) -> Evaluation:
    """Score a mix with the problem's objectives: accuracy load-weighted per stage and combined
    by ``accuracy_method``; every other term at each part's own load, summed over the parts
    of a stage and combined over stages as the objective combines stage values."""
    terms: dict[str, float] = {}
    weighted: dict[str, float] = {}
    total = 0.0
    for obj in problem.reported_objectives():
        if is_accuracy(obj):
            values = [stage_accuracy(problem, parts, rate) for parts in stages]
        else:
            values = [sum(obj.stage_value(problem, part_option(problem, p), p.load) for p in parts)
                      for parts in stages]
        value = obj.combine(problem, values)
        w = problem.settings.weight(obj.weight)
        terms[obj.name] = value
        weighted[obj.name] = w * value
        total += obj.sense * w * value
    config, main = [], []
    for parts in stages:
        opts = [(part_option(problem, p), p.load) for p in parts]
        share = [(load / rate if rate > 0 else 1.0 / len(opts)) for _, load in opts]
        config.append(StageMix.of([(o.config(), w) for (o, _), w in zip(opts, share)]))
        main.append(max(opts, key=lambda ol: ol[1])[0])
    return Evaluation(
        config=tuple(config),
        rate_rps=rate,
        options=tuple(main),
        sla_s=problem.sla_s,
        terms=problem.term_map(terms),
        weighted=problem.term_map(weighted),
        objective=total,
        violations=tuple(violations(problem, stages, rate)),
    )


def combined_accuracy(problem: Problem, stages: Sequence[Sequence[MixPart]], rate: float) -> float:
    """The pipeline accuracy of a mix, combined by ``accuracy_method``."""
    values = [stage_accuracy(problem, parts, rate) for parts in stages]
    method = problem.settings.accuracy_method
    if method == "multiply":
        return float(math.prod(values))
    if method == "average":
        return sum(values) / len(values)
    return float(sum(values))


def meets_floor(problem: Problem, stages: Sequence[Sequence[MixPart]], rate: float, floor: float | None) -> bool:
    """True when the mix's accuracy reaches ``floor`` (1e-7 relative: the loads come from an LP)."""
    if floor is None:
        return True
    acc = combined_accuracy(problem, stages, rate)
    return acc >= floor - 1e-7 * max(1.0, abs(floor))


def mix_cores(stages: Sequence[Sequence[MixPart]]) -> float:
    """The cores a mix reserves: cpu x replicas over every part of every stage."""
    return float(sum(p.cpu * p.replicas for parts in stages for p in parts))


def mix_of(ev: Evaluation, rate: float) -> list[list[MixPart]]:
    """The parts of an evaluated mix (a plain stage is one part), loads from its shares."""
    return [[MixPart(s, p.variant, p.cpu, p.batch, p.replicas, share * rate) for p, share in stage_parts(sc)]
            for s, sc in enumerate(ev.config)]


def within_budget(stages: Sequence[Sequence[MixPart]], max_cores: float | None) -> bool:
    """True when the mix's cores are at most ``max_cores`` (no budget: always)."""
    return max_cores is None or within(mix_cores(stages), max_cores)


def check_objectives(problem: Problem, who: str) -> None:
    """Refuse an objective the mixing models cannot hold: accuracy is the one product term."""
    for obj in problem.active_objectives:
        if is_accuracy(obj):
            continue
        if not obj.is_additive(problem):
            raise ConfigError(
                f"objective {obj.name!r} is not additive, so {who} cannot model it; set its weight to 0",
                where=f"weights.{obj.weight}")


def solve_mix(
    problem: Problem, rate: float, spec: MixSpec, k: int = 1, current: Any = None
) -> tuple[list[Evaluation], dict[str, Any]]:
    """The ``k`` best mixes at ``rate`` (distinct sets of parts), best first, exactly.

    Summed or averaged accuracy, and any one-stage pipeline, go to the mixing MILP
    (continuous loads, integer replicas); a product over two or more stages to the exact
    enumeration of stage plans (loads filled most accurate first; see the docs).
    """
    check_objectives(problem, "the mixing model")
    from .mixing_milp import fewest_cores, solve_milp

    product = problem.settings.accuracy_method == "multiply" and len(problem.pipeline.stages) > 1
    if product:
        from .mixing_plans import solve_plans

        found, info = solve_plans(problem, rate, spec, k, current)
    else:
        found, info = solve_milp(problem, rate, spec, k, current)
    if not found and spec.max_cores is not None:
        fewest = fewest_cores(problem, rate, spec, current)
        if fewest is not None and not within(fewest, spec.max_cores):
            info["fewest_cores"] = fewest
            info["reason"] = budget_reason(problem, rate, spec.max_cores, fewest)
    return found, info


def budget_reason(problem: Problem, rate: float, max_cores: float, fewest: float) -> str:
    """Why no mix fits the core budget, in one line."""
    cap = " and power cap" if problem.settings.power_cap_w is not None and problem.pipeline.has_power else ""
    return (f"no mix within the SLA{cap} fits max_cores {max_cores:g} at rate {rate:g} rps: "
            f"the fewest cores one needs is {fewest:g}")

