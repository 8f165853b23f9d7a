"""Scoring a choice of options: objective terms, the weighted total and the constraints it breaks.

The functions taking ``problem`` are :class:`~ipa_ext.problem.Problem`'s methods of the same name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from ..errors import ConfigError
from ..model import Configuration
from .options import Option
from .settings import within

if TYPE_CHECKING:  # pragma: no cover
    from .problem import Problem


class Terms(dict):
    """Objective terms by name (a plain ``dict`` of the canonical names) that also answers to
    the terms' former names (:attr:`~ipa_ext.objectives.Objective.aliases`): ``terms["energy"]``
    is ``terms["power"]``."""

    __slots__ = ("aliases",)

    def __init__(self, values: dict[str, float], aliases: Mapping[str, str]) -> None:
        super().__init__(values)
        self.aliases = aliases

    def __missing__(self, key: str) -> float:
        name = self.aliases.get(key)
        if name is None or name not in self:
            raise KeyError(key)
        return self[name]

    def __contains__(self, key: object) -> bool:
        return dict.__contains__(self, key) or dict.__contains__(self, self.aliases.get(key))  # type: ignore[arg-type]

    def get(self, key: str, default: float | None = None) -> float | None:  # type: ignore[override]
        return self[key] if key in self else default


@dataclass(frozen=True)
class Evaluation:
    """A configuration scored at a rate: objective terms, latency and violations."""

    config: Configuration
    rate_rps: float
    options: tuple[Option, ...]
    sla_s: float
    terms: Mapping[str, float]
    weighted: Mapping[str, float]
    objective: float
    violations: tuple[str, ...]

    @property
    def feasible(self) -> bool:
        return not self.violations

    @property
    def latency_s(self) -> float:
        return sum(o.latency_s for o in self.options)

    @property
    def power_w(self) -> float | None:
        """The power term in watts (None when the profiles have no power fields)."""
        return self.terms.get("power")

    def stage_rows(self) -> list[dict[str, object]]:
        """Per-stage facts for reports: configuration, latency and capacity."""
        return [
            {
                **o.config().as_dict(),
                "model_latency_s": o.model_latency_s,
                "queue_s": o.queue_s,
                "latency_s": o.latency_s,
                "capacity_rps": o.capacity_rps,
                "cores": o.cores,
                "accuracy": o.accuracy,
            }
            for o in self.options
        ]


def score(problem: Problem, options: Sequence[Option], rate_rps: float) -> tuple[dict[str, float], dict[str, float], float]:
    """Raw terms, weighted terms and the total objective of a choice of options."""
    terms: dict[str, float] = {}
    weighted: dict[str, float] = {}
    total = 0.0
    for obj in problem.reported_objectives():
        value = obj.combine(problem, [obj.stage_value(problem, o, rate_rps) for o in options])
        terms[obj.name] = value
        w = problem.settings.weight(obj.weight)
        weighted[obj.name] = w * value
        total += obj.sense * w * value
    return problem.term_map(terms), problem.term_map(weighted), total


def objective_value(problem: Problem, options: Sequence[Option], rate_rps: float) -> float:
    """The total objective only (skips zero-weight terms)."""
    total = 0.0
    for obj in problem.active_objectives:
        value = obj.combine(problem, [obj.stage_value(problem, o, rate_rps) for o in options])
        total += obj.sense * problem.settings.weight(obj.weight) * value
    return total


def power_w(problem: Problem, options: Sequence[Option], rate_rps: float) -> float | None:
    """Pipeline power at the rate, or None when the profiles have no power fields."""
    if not problem.pipeline.has_power:
        return None
    return sum(o.profile.power_at(rate_rps, o.replicas) for o in options)


def violations(problem: Problem, options: Sequence[Option], rate_rps: float) -> list[str]:
    """Why a choice of options breaks the constraints (empty when feasible)."""
    s = problem.settings
    out = []
    for o in options:
        name = problem.pipeline.stages[o.stage_index].name
        if o.capacity_rps < rate_rps:
            out.append(
                f"{name}: capacity {o.capacity_rps:.4g} rps < rate {rate_rps:.4g} rps"
            )
        if o.replicas > s.scaling_cap:
            out.append(f"{name}: replicas {o.replicas} > scaling_cap {s.scaling_cap}")
        if o.replicas < 1:
            out.append(f"{name}: replicas {o.replicas} < 1")
        if s.batching_cap is not None and o.batch > s.batching_cap:
            out.append(f"{name}: batch {o.batch} > batching_cap {s.batching_cap}")
    latency = sum(o.latency_s for o in options)
    if not within(latency, problem.sla_s):
        out.append(f"latency {latency:.4g} s > SLA {problem.sla_s:.4g} s")
    if s.power_cap_w is not None:
        p = problem.power_w(options, rate_rps)
        if p is not None and not within(p, s.power_cap_w):
            out.append(f"power {p:.4g} W > power_cap_w {s.power_cap_w:.4g} W")
    return out


def evaluate(problem: Problem, config: Configuration, rate_rps: float) -> Evaluation:
    """Score any configuration (also one no optimizer would choose)."""
    if len(config) != len(problem.pipeline.stages):
        raise ValueError("configuration and pipeline have different stage counts")
    options = []
    for i, sc in enumerate(config):
        stage = problem.pipeline.stages[i]
        if stage.profile(sc.variant, sc.cpu, sc.batch) is None:
            raise ConfigError(
                f"no profile for stage {stage.name!r} variant {sc.variant!r} "
                f"cpu {sc.cpu:g} batch {sc.batch}",
                where="configuration",
            )
        options.append(problem.make_option(i, sc.variant, sc.cpu, sc.batch, sc.replicas, rate_rps))
    return problem.evaluate_options(options, rate_rps)


def evaluate_options(problem: Problem, options: Sequence[Option], rate_rps: float) -> Evaluation:
    """The :class:`Evaluation` of a choice of options (one per stage)."""
    terms, weighted, total = problem.score(options, rate_rps)
    return Evaluation(
        config=tuple(o.config() for o in options),
        rate_rps=rate_rps,
        options=tuple(options),
        sla_s=problem.sla_s,
        terms=terms,
        weighted=weighted,
        objective=total,
        violations=tuple(problem.violations(options, rate_rps)),
    )
