"""IPA's adaptation problem: settings, the per-stage option space and evaluation.

This module holds IPA's semantics, read from upstream ``optimizer/models.py``
and ``optimizer/optimizer.py`` (reconfigurable-ml-pipeline/ipa @ e1f08dd):

* **Task SLA.** Per variant: the smallest-batch latency at the variant's
  largest profiled CPU allocation, times ``sla_factor``. The task SLA is the
  mean over the task's variants times 5 (IPA's hard-coded factor); the
  pipeline SLA is the sum over tasks. An explicit ``sla_s`` overrides it.
* **Accuracy.** Raw accuracies are in percent and divided by 100, as IPA's
  ``Model`` does; ``normalize_accuracy`` ranks a stage's variants by accuracy
  and spreads them evenly over 0..1 (a single variant gets 1). Stage values
  combine by ``sum``, ``average`` or ``multiply``.
* **Allocation modes.** ``fix``: every variant uses the stage's initial CPU
  allocation. ``base``: the CPU per variant is IPA's base allocation (see
  :meth:`Problem.base_allocations`). ``variable``: every profiled CPU value is
  a choice.
* **Constraints.** ``replicas * throughput >= rate`` per stage, and the sum
  over stages of ``latency + (batch-1)/rate`` at most the SLA. Replicas are at
  most ``scaling_cap``, batches at most ``batching_cap``.
* **Baselines.** ``baseline_mode: scale`` pins each stage's variant to the
  current one; ``switch`` pins the replicas to the current ones.

Deliberate differences from upstream (see also README "IPA semantics"):

* The SLA test is ``<=`` everywhere (upstream's brute force uses ``<``, its
  Gurobi path ``<=``).
* The queueing term is ``(batch-1)/rate`` on the batch value. Upstream's
  measured-profile Gurobi path multiplies it into the 0/1 batch indicator,
  which makes the term drop out.
* For a rate λ each (variant, cpu, batch) choice gets the fewest replicas that
  sustain it, ``max(1, ceil(λ/throughput))``. Upstream enumerates every
  replica count up to ``scaling_cap``; configurations with surplus replicas are
  never better (for ``beta >= 0``), so the optimum is the same, but the k-best
  list here holds no over-provisioned copies of a configuration.
* ``batching_cap`` applies to every optimizer (upstream's brute force ignores it).
* When two stages use variants with the same name, upstream's accuracy
  collapses them into one dictionary entry; here each stage counts.
* A CPU allocation a variant was not profiled at counts as "sustains nothing"
  in the base-allocation walk (upstream raises ``KeyError``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Mapping, Sequence

from ..errors import ConfigError, InfeasibleError
from ..model import Configuration, Pipeline, Profile, StageConfig
from ..objectives import Objective

ACCURACY_METHODS = ("sum", "average", "multiply")
ALLOCATION_MODES = ("fix", "base", "variable")
BASELINE_MODES = ("scale", "switch")
IPA_TASK_SLA_MULTIPLIER = 5.0
"""IPA multiplies the mean variant SLA of a task by this hard-coded factor."""

DEFAULT_WEIGHTS: Mapping[str, float] = {
    "alpha": 1.0,
    "beta": 1.0,
    "gamma": 1.0,
    "delta": 0.0,
    "epsilon": 0.0,
}

_REL_TOL = 1e-9


def within(value: float, bound: float) -> bool:
    """``value <= bound`` up to a relative tolerance of 1e-9 (shared by every optimizer)."""
    return value <= bound + _REL_TOL * max(1.0, abs(bound))


@dataclass(frozen=True)
class Settings:
    """The knobs of IPA's problem, with IPA's defaults where it has them."""

    accuracy_method: str = "sum"
    normalize_accuracy: bool = True
    sla_s: float | None = None
    sla_factor: float = 5.0
    allocation_mode: str = "base"
    threshold: float = 4.0
    scaling_cap: int = 100
    batching_cap: int | None = None
    baseline_mode: str | None = None
    num_state_limit: int = 1
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    power_cap_w: float | None = None
    carbon_intensity_g_per_kwh: float | None = None
    initial: Configuration | None = None

    def weight(self, name: str) -> float:
        return float(self.weights.get(name, DEFAULT_WEIGHTS.get(name, 0.0)))

    def __post_init__(self) -> None:
        if self.accuracy_method not in ACCURACY_METHODS:
            raise ConfigError(
                f"must be one of {', '.join(ACCURACY_METHODS)}, got {self.accuracy_method!r}",
                where="accuracy_method",
            )
        if self.allocation_mode not in ALLOCATION_MODES:
            raise ConfigError(
                f"must be one of {', '.join(ALLOCATION_MODES)}, got {self.allocation_mode!r}",
                where="allocation_mode",
            )
        if self.baseline_mode is not None and self.baseline_mode not in BASELINE_MODES:
            raise ConfigError(
                f"must be one of scale, switch or null, got {self.baseline_mode!r}",
                where="baseline_mode",
            )
        if self.scaling_cap < 1:
            raise ConfigError(f"must be >= 1, got {self.scaling_cap}", where="scaling_cap")
        if self.batching_cap is not None and self.batching_cap < 1:
            raise ConfigError(f"must be >= 1, got {self.batching_cap}", where="batching_cap")
        if self.num_state_limit < 1:
            raise ConfigError(f"must be >= 1, got {self.num_state_limit}", where="num_state_limit")
        if self.sla_s is not None and not self.sla_s > 0:
            raise ConfigError(f"must be > 0, got {self.sla_s}", where="sla_s")
        if not self.sla_factor > 0:
            raise ConfigError(f"must be > 0, got {self.sla_factor}", where="sla_factor")


@dataclass(frozen=True)
class Option:
    """One stage's choice of (variant, cpu, batch) with its replica count at a rate."""

    stage_index: int
    variant: str
    cpu: float
    batch: int
    replicas: int
    profile: Profile = field(repr=False, compare=False)
    accuracy: float = field(compare=False)
    queue_s: float = field(compare=False)

    @property
    def model_latency_s(self) -> float:
        return self.profile.latency_s

    @property
    def latency_s(self) -> float:
        """Model latency plus IPA's queueing term ``(batch-1)/rate``."""
        return self.profile.latency_s + self.queue_s

    @property
    def throughput_rps(self) -> float:
        return self.profile.throughput_rps

    @property
    def capacity_rps(self) -> float:
        return self.replicas * self.profile.throughput_rps

    @property
    def cores(self) -> float:
        return self.cpu * self.replicas

    def config(self) -> StageConfig:
        return StageConfig(self.variant, self.cpu, self.batch, self.replicas)


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
        return self.terms.get("energy")

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


def queue_delay_s(batch: int, rate_rps: float) -> float:
    """IPA's queueing term: time to fill a batch at the arrival rate (0 when idle)."""
    return (batch - 1) / rate_rps if rate_rps > 0 else 0.0


MAX_SCALING_CAP = 1_000_000
"""The largest ``scaling_cap`` a config may set (replicas per stage)."""


def replicas_needed(rate_rps: float, throughput_rps: float) -> int:
    """The fewest replicas (at least 1) whose total throughput covers the rate.

    A count beyond any scaling cap (a throughput near zero, which makes the ratio
    overflow) is :data:`MAX_SCALING_CAP` + 1, so the choice is never feasible.
    """
    if rate_rps <= 0:
        return 1
    ratio = rate_rps / throughput_rps
    if not ratio <= MAX_SCALING_CAP:  # also inf and nan
        return MAX_SCALING_CAP + 1
    return max(1, math.ceil(ratio))


class Problem:
    """A pipeline plus settings plus objectives: what every optimizer solves.

    Derived facts (SLA, base allocations, normalised accuracies) are computed
    once and cached; per-rate option lists are cheap to rebuild.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        settings: Settings,
        objectives: Sequence[Objective],
    ) -> None:
        self.pipeline = pipeline
        self.settings = settings
        self.objectives = tuple(objectives)
        self._choices_cache: dict[tuple[int, str | None], tuple[tuple[str, float, int], ...]] = {}
        names = [o.name for o in self.objectives]
        if len(set(names)) != len(names):
            raise ConfigError(f"objective names repeat: {names}", where="objectives")
        if settings.initial is not None and len(settings.initial) != len(pipeline.stages):
            raise ConfigError(
                f"has {len(settings.initial)} stages, the pipeline has {len(pipeline.stages)}",
                where="initial",
            )
        if settings.allocation_mode == "fix" and settings.initial is None:
            raise ConfigError("allocation_mode 'fix' needs an initial configuration", where="initial")
        if settings.sla_s is None:
            slas = (*self.stage_slas_s, self.sla_s)
            if not all(0 < x < math.inf for x in slas):
                raise ConfigError(
                    f"the SLA derived from sla_factor {settings.sla_factor:g} and the profiles' latencies is "
                    f"{min(slas) if min(slas) <= 0 else max(slas):g} s for a stage or the pipeline; set sla_s, "
                    "or a sla_factor that gives a positive, finite SLA", where="sla_factor")
        for obj in self.objectives:
            w = settings.weight(obj.weight)
            if w != 0:
                reason = obj.unavailable_reason(self)
                if reason:
                    raise ConfigError(f"{obj.name} objective: {reason}", where=f"weights.{obj.weight}")

    # ------------------------------------------------------------------ derived facts

    @cached_property
    def stage_slas_s(self) -> tuple[float, ...]:
        """IPA's task SLAs (see module docstring)."""
        out = []
        for stage in self.pipeline.stages:
            per_variant = []
            for v in stage.variants:
                cpu = stage.cpus(v.name)[-1]
                batch = stage.batches(v.name, cpu)[0]
                prof = stage.profile(v.name, cpu, batch)
                assert prof is not None
                per_variant.append(prof.latency_s * self.settings.sla_factor)
            out.append(sum(per_variant) / len(per_variant) * IPA_TASK_SLA_MULTIPLIER)
        return tuple(out)

    @cached_property
    def sla_s(self) -> float:
        """The end-to-end SLA: explicit ``sla_s`` or the sum of IPA's task SLAs."""
        if self.settings.sla_s is not None:
            return float(self.settings.sla_s)
        return float(sum(self.stage_slas_s))

    @property
    def sla_source(self) -> str:
        if self.settings.sla_s is not None:
            return "explicit"
        return f"derived from sla_factor {self.settings.sla_factor:g}"

    @cached_property
    def stage_accuracies(self) -> tuple[Mapping[str, float], ...]:
        """Per stage, the accuracy value of each variant used in the objective."""
        out = []
        for stage in self.pipeline.stages:
            if self.settings.normalize_accuracy:
                ranked = sorted(stage.variants, key=lambda v: (v.accuracy, v.name))
                n = len(ranked)
                if n == 1:
                    out.append({ranked[0].name: 1.0})
                else:
                    out.append({v.name: i / (n - 1) for i, v in enumerate(ranked)})
            else:
                out.append({v.name: v.accuracy / 100.0 for v in stage.variants})
        return tuple(out)

    def base_allocations(self) -> tuple[Mapping[str, float], ...]:
        """IPA's base allocation (CPU per variant) for every stage."""
        return self._base_allocations

    @cached_property
    def _base_allocations(self) -> tuple[Mapping[str, float], ...]:
        return tuple(self._stage_base_allocation(i) for i in range(len(self.pipeline.stages)))

    def _stage_base_allocation(self, index: int) -> dict[str, float]:
        """IPA's ``Task.base_allocations``.

        For each variant and CPU, count the profiled batches that reach
        ``threshold`` rps within the task SLA. Walk the variants from least to
        most accurate along the CPU ladder of the least accurate variant: the
        first variant takes the smallest CPU that sustains any batch; each later
        variant starts where the previous one stopped, moves up one step when the
        next CPU sustains more batches, and moves up past CPUs that sustain none.
        A more accurate variant thus never gets fewer cores.
        """
        stage = self.pipeline.stages[index]
        sla = self.stage_slas_s[index]
        thr = self.settings.threshold

        def sustains(variant: str, cpu: float) -> int:
            count = 0
            for b in stage.batches(variant, cpu):
                p = stage.profile(variant, cpu, b)
                assert p is not None
                if p.throughput_rps >= thr and p.latency_s <= sla:
                    count += 1
            return count

        order = sorted(stage.variants, key=lambda v: v.accuracy)  # stable, as IPA's dict sort
        ladder = stage.cpus(order[0].name)
        last = len(ladder) - 1
        out: dict[str, float] = {}
        i = 0
        for pos, v in enumerate(order):
            chosen: float | None = None
            while chosen is None:
                if i > last:
                    break
                if pos == 0:
                    if sustains(v.name, ladder[i]) != 0:
                        chosen = ladder[i]
                    else:
                        i += 1
                    continue
                if i != last and sustains(v.name, ladder[i + 1]) > sustains(v.name, ladder[i]):
                    i += 1
                if sustains(v.name, ladder[i]) == 0:
                    if i == last:
                        break
                    i += 1
                    continue
                chosen = ladder[i]
            if chosen is None:
                raise ConfigError(
                    f"stage {stage.name!r}: no CPU allocation of variant {v.name!r} reaches "
                    f"threshold {thr:g} rps within the task SLA {sla:.4g} s; lower 'threshold' "
                    f"or raise 'sla_factor'",
                    where="threshold",
                )
            out[v.name] = chosen
        return out

    # ------------------------------------------------------------------ option space

    def stage_choices(
        self, index: int, current: StageConfig | None
    ) -> list[tuple[str, float, int]]:
        """(variant, cpu, batch) choices of a stage under the allocation and baseline modes.

        They do not depend on the rate, so they are computed once per stage (and
        per current variant under ``baseline_mode: scale``).
        """
        scale = self.settings.baseline_mode == "scale" and current is not None
        key = (index, current.variant if scale else None)  # type: ignore[union-attr]
        cached = self._choices_cache.get(key)
        if cached is None:
            cached = tuple(self._stage_choices(index, current))
            self._choices_cache[key] = cached
        return list(cached)

    def _stage_choices(
        self, index: int, current: StageConfig | None
    ) -> list[tuple[str, float, int]]:
        s = self.settings
        stage = self.pipeline.stages[index]
        variants = list(stage.variant_names)
        if s.baseline_mode == "scale":
            if current is None:
                raise ConfigError("baseline_mode 'scale' needs a current configuration", where="initial")
            variants = [current.variant]
        out = []
        for v in variants:
            if s.allocation_mode == "variable":
                cpus: Sequence[float] = stage.cpus(v)
            elif s.allocation_mode == "base":
                cpus = (self._base_allocations[index][v],)
            else:
                assert s.initial is not None
                cpus = (s.initial[index].cpu,)
            for c in cpus:
                for b in stage.batches(v, c):
                    if s.batching_cap is None or b <= s.batching_cap:
                        out.append((v, c, b))
        return out

    def make_option(self, index: int, variant: str, cpu: float, batch: int, replicas: int, rate_rps: float) -> Option:
        stage = self.pipeline.stages[index]
        prof = stage.profile(variant, cpu, batch)
        if prof is None:
            raise KeyError((stage.name, variant, cpu, batch))
        return Option(
            stage_index=index,
            variant=variant,
            cpu=cpu,
            batch=batch,
            replicas=replicas,
            profile=prof,
            accuracy=self.stage_accuracies[index][variant],
            queue_s=queue_delay_s(batch, rate_rps),
        )

    def stage_options(
        self, index: int, rate_rps: float, current: StageConfig | None = None
    ) -> list[Option]:
        """Options of one stage that meet throughput and the caps at ``rate_rps``.

        Replicas are the fewest that sustain the rate (or the current ones under
        ``baseline_mode: switch``). Options whose own latency already exceeds the
        SLA are dropped, since no configuration containing them is feasible.
        """
        s = self.settings
        out = []
        stage = self.pipeline.stages[index]
        for v, c, b in self.stage_choices(index, current):
            prof = stage.profiles[(v, c, b)]
            if s.baseline_mode == "switch":
                assert current is not None
                n = current.replicas
                if n * prof.throughput_rps < rate_rps:
                    continue
            else:
                n = replicas_needed(rate_rps, prof.throughput_rps)
            if n > s.scaling_cap:
                continue
            opt = self.make_option(index, v, c, b, n, rate_rps)
            if not within(opt.latency_s, self.sla_s):
                continue
            out.append(opt)
        return out

    def options(
        self, rate_rps: float, current: Configuration | None = None
    ) -> tuple[list[Option], ...]:
        """Per-stage option lists at ``rate_rps`` (see :meth:`stage_options`)."""
        current = self.resolve_current(current)
        return tuple(
            self.stage_options(i, rate_rps, current[i] if current else None)
            for i in range(len(self.pipeline.stages))
        )

    def resolve_current(self, current: Configuration | None) -> Configuration | None:
        """The given configuration, or the initial one; required under a baseline mode."""
        cur = current if current is not None else self.settings.initial
        if self.settings.baseline_mode is not None and cur is None:
            raise ConfigError(
                f"baseline_mode {self.settings.baseline_mode!r} needs a current configuration",
                where="initial",
            )
        return cur

    # ------------------------------------------------------------------ scoring

    @property
    def active_objectives(self) -> tuple[Objective, ...]:
        """Objectives with a non-zero weight."""
        return tuple(o for o in self.objectives if self.settings.weight(o.weight) != 0)

    def reported_objectives(self) -> tuple[Objective, ...]:
        """Objectives that can be evaluated (reported even at weight 0)."""
        return self._reported_objectives

    @cached_property
    def _reported_objectives(self) -> tuple[Objective, ...]:
        # pipeline and settings are frozen: what can be evaluated never changes (and the
        # energy term's check scans every profile row, so it is worth keeping)
        return tuple(o for o in self.objectives if o.unavailable_reason(self) is None)

    def score(self, options: Sequence[Option], rate_rps: float) -> tuple[dict[str, float], dict[str, float], float]:
        """Raw terms, weighted terms and the total objective of a choice of options."""
        terms: dict[str, float] = {}
        weighted: dict[str, float] = {}
        total = 0.0
        for obj in self.reported_objectives():
            value = obj.combine(self, [obj.stage_value(self, o, rate_rps) for o in options])
            terms[obj.name] = value
            w = self.settings.weight(obj.weight)
            weighted[obj.name] = w * value
            total += obj.sense * w * value
        return terms, weighted, total

    def objective_value(self, options: Sequence[Option], rate_rps: float) -> float:
        """The total objective only (skips zero-weight terms)."""
        total = 0.0
        for obj in self.active_objectives:
            value = obj.combine(self, [obj.stage_value(self, o, rate_rps) for o in options])
            total += obj.sense * self.settings.weight(obj.weight) * value
        return total

    def power_w(self, options: Sequence[Option], rate_rps: float) -> float | None:
        """Pipeline power at the rate, or None when the profiles have no power fields."""
        if not self.pipeline.has_power:
            return None
        return sum(o.profile.power_at(rate_rps, o.replicas) for o in options)

    def violations(self, options: Sequence[Option], rate_rps: float) -> list[str]:
        """Why a choice of options breaks the constraints (empty when feasible)."""
        s = self.settings
        out = []
        for o in options:
            name = self.pipeline.stages[o.stage_index].name
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
        if not within(latency, self.sla_s):
            out.append(f"latency {latency:.4g} s > SLA {self.sla_s:.4g} s")
        if s.power_cap_w is not None:
            p = self.power_w(options, rate_rps)
            if p is not None and not within(p, s.power_cap_w):
                out.append(f"power {p:.4g} W > power_cap_w {s.power_cap_w:.4g} W")
        return out

    def evaluate(self, config: Configuration, rate_rps: float) -> Evaluation:
        """Score any configuration (also one no optimizer would choose)."""
        if len(config) != len(self.pipeline.stages):
            raise ValueError("configuration and pipeline have different stage counts")
        options = []
        for i, sc in enumerate(config):
            stage = self.pipeline.stages[i]
            if stage.profile(sc.variant, sc.cpu, sc.batch) is None:
                raise ConfigError(
                    f"no profile for stage {stage.name!r} variant {sc.variant!r} "
                    f"cpu {sc.cpu:g} batch {sc.batch}",
                    where="configuration",
                )
            options.append(self.make_option(i, sc.variant, sc.cpu, sc.batch, sc.replicas, rate_rps))
        return self.evaluate_options(options, rate_rps)

    def evaluate_options(self, options: Sequence[Option], rate_rps: float) -> Evaluation:
        terms, weighted, total = self.score(options, rate_rps)
        return Evaluation(
            config=tuple(o.config() for o in options),
            rate_rps=rate_rps,
            options=tuple(options),
            sla_s=self.sla_s,
            terms=terms,
            weighted=weighted,
            objective=total,
            violations=tuple(self.violations(options, rate_rps)),
        )

    # ------------------------------------------------------------------ infeasibility

    def explain_infeasible(self, rate_rps: float, current: Configuration | None = None) -> str:
        """The binding reason no configuration is feasible (best effort, one line)."""
        s = self.settings
        current = self.resolve_current(current)
        for i, stage in enumerate(self.pipeline.stages):
            cur = current[i] if current else None
            choices = self.stage_choices(i, cur)
            if not choices:
                return f"stage {stage.name!r} has no (variant, cpu, batch) choice under the settings"
            best_thr = max(stage.profiles[c].throughput_rps for c in choices)
            if s.baseline_mode == "switch":
                assert cur is not None
                cap = cur.replicas * best_thr
                if cap < rate_rps:
                    return (
                        f"rate {rate_rps:g} rps exceeds the capacity of every variant of stage "
                        f"{stage.name!r} at the pinned {cur.replicas} replicas ({cap:.4g} rps)"
                    )
            elif s.scaling_cap * best_thr < rate_rps:
                return (
                    f"rate {rate_rps:g} rps exceeds the capacity of every variant of stage "
                    f"{stage.name!r} at scaling_cap {s.scaling_cap} ({s.scaling_cap * best_thr:.4g} rps)"
                )
        per_stage = self.options(rate_rps, current)
        min_lat = sum(min(o.latency_s for o in opts) if opts else math.inf for opts in per_stage)
        if any(not opts for opts in per_stage) or not within(min_lat, self.sla_s):
            fastest = 0.0
            for i, stage in enumerate(self.pipeline.stages):
                cur = current[i] if current else None
                lats = []
                for v, c, b in self.stage_choices(i, cur):
                    prof = stage.profiles[(v, c, b)]
                    n = cur.replicas if s.baseline_mode == "switch" and cur else replicas_needed(rate_rps, prof.throughput_rps)
                    if n <= s.scaling_cap and n * prof.throughput_rps >= rate_rps:
                        lats.append(prof.latency_s + queue_delay_s(b, rate_rps))
                fastest += min(lats) if lats else math.inf
            return (
                f"SLA {self.sla_s:.4g} s cannot be met at rate {rate_rps:g} rps: the fastest "
                f"end-to-end latency is {fastest:.4g} s"
            )
        if s.power_cap_w is not None:
            return f"no configuration meeting the SLA stays under power_cap_w {s.power_cap_w:g} W"
        return "no configuration satisfies the constraints"

    def infeasible(self, rate_rps: float, current: Configuration | None = None) -> InfeasibleError:
        return InfeasibleError("no feasible configuration: " + self.explain_infeasible(rate_rps, current))
