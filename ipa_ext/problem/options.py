"""IPA's option space: the task SLAs, accuracy scores and base allocations it rests on, and the
per-stage (variant, cpu, batch, replicas) options at a rate (the rules: docs/ipa-semantics.md).

The functions taking ``problem`` are :class:`~ipa_ext.problem.Problem`'s methods of the same name.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Mapping, Sequence

from ..errors import ConfigError
from ..model import Configuration, Pipeline, Profile, Stage, StageConfig
from .settings import within

if TYPE_CHECKING:  # pragma: no cover
    from .problem import Problem

IPA_TASK_SLA_MULTIPLIER = 5.0
"""IPA multiplies the mean variant SLA of a task by this hard-coded factor."""

MAX_SCALING_CAP = 1_000_000
"""The largest ``scaling_cap`` a config may set (replicas per stage)."""


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


def queue_delay_s(batch: int, rate_rps: float) -> float:
    """IPA's queueing term: time to fill a batch at the arrival rate (0 when idle)."""
    return (batch - 1) / rate_rps if rate_rps > 0 else 0.0


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


# --------------------------------------------------------------------------- derived facts


def task_slas(pipeline: Pipeline, sla_factor: float) -> tuple[float, ...]:
    """IPA's task SLAs: per variant, the smallest-batch latency at its largest CPU times
    ``sla_factor``; the task's is their mean times :data:`IPA_TASK_SLA_MULTIPLIER`."""
    out = []
    for stage in pipeline.stages:
        per_variant = []
        for v in stage.variants:
            cpu = stage.cpus(v.name)[-1]
            batch = stage.batches(v.name, cpu)[0]
            prof = stage.profile(v.name, cpu, batch)
            assert prof is not None
            per_variant.append(prof.latency_s * sla_factor)
        out.append(sum(per_variant) / len(per_variant) * IPA_TASK_SLA_MULTIPLIER)
    return tuple(out)


def accuracy_scores(pipeline: Pipeline, normalize: bool) -> tuple[Mapping[str, float], ...]:
    """Per stage, each variant's accuracy value in the objective: ranks spread over 0..1
    (``normalize``; a single variant gets 1) or the raw percentage / 100."""
    out = []
    for stage in pipeline.stages:
        if normalize:
            ranked = sorted(stage.variants, key=lambda v: (v.accuracy, v.name))
            n = len(ranked)
            if n == 1:
                out.append({ranked[0].name: 1.0})
            else:
                out.append({v.name: i / (n - 1) for i, v in enumerate(ranked)})
        else:
            out.append({v.name: v.accuracy / 100.0 for v in stage.variants})
    return tuple(out)


def base_allocation(stage: Stage, sla_s: float, threshold: float) -> dict[str, float]:
    """IPA's ``Task.base_allocations``: the CPU of each variant of ``stage``.

    For each variant and CPU, count the profiled batches that reach ``threshold`` rps
    within the task SLA. Walk the variants from least to most accurate along the CPU ladder
    of the least accurate variant: the first variant takes the smallest CPU that sustains
    any batch; each later variant starts where the previous one stopped, moves up one step
    when the next CPU sustains more batches, and moves up past CPUs that sustain none.
    A more accurate variant thus never gets fewer cores.
    """

    def sustains(variant: str, cpu: float) -> int:
        count = 0
        for b in stage.batches(variant, cpu):
            p = stage.profile(variant, cpu, b)
            assert p is not None
            if p.throughput_rps >= threshold and p.latency_s <= sla_s:
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
                f"threshold {threshold:g} rps within the task SLA {sla_s:.4g} s; lower 'threshold' "
                f"or raise 'sla_factor'",
                where="threshold",
            )
        out[v.name] = chosen
    return out


# --------------------------------------------------------------------------- options at a rate


def choices_of(problem: Problem, index: int, current: StageConfig | None) -> list[tuple[str, float, int]]:
    """(variant, cpu, batch) choices of a stage under the allocation and baseline modes (uncached)."""
    s = problem.settings
    stage = problem.pipeline.stages[index]
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
            cpus = (problem.base_allocations()[index][v],)
        else:
            assert s.initial is not None
            cpus = (s.initial[index].cpu,)
        for c in cpus:
            for b in stage.batches(v, c):
                if s.batching_cap is None or b <= s.batching_cap:
                    out.append((v, c, b))
    return out


def make_option(problem: Problem, index: int, variant: str, cpu: float, batch: int, replicas: int,
                rate_rps: float) -> Option:
    """The option of a stage's (variant, cpu, batch) with ``replicas`` at the rate (KeyError:
    not profiled)."""
    stage = problem.pipeline.stages[index]
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
        accuracy=problem.stage_accuracies[index][variant],
        queue_s=queue_delay_s(batch, rate_rps),
    )


def stage_options(problem: Problem, index: int, rate_rps: float, current: StageConfig | None = None) -> list[Option]:
    """Options of one stage that meet throughput and the caps at ``rate_rps``.

    Replicas are the fewest that sustain the rate (or the current ones under
    ``baseline_mode: switch``). Options whose own latency already exceeds the
    SLA are dropped, since no configuration containing them is feasible.
    """
    s = problem.settings
    out = []
    stage = problem.pipeline.stages[index]
    for v, c, b in problem.stage_choices(index, current):
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
        opt = problem.make_option(index, v, c, b, n, rate_rps)
        if not within(opt.latency_s, problem.sla_s):
            continue
        out.append(opt)
    return out


def options(problem: Problem, rate_rps: float, current: Configuration | None = None) -> tuple[list[Option], ...]:
    """Per-stage option lists at ``rate_rps`` (see :func:`stage_options`)."""
    current = problem.resolve_current(current)
    return tuple(
        problem.stage_options(i, rate_rps, current[i] if current else None)
        for i in range(len(problem.pipeline.stages))
    )


def resolve_current(problem: Problem, current: Configuration | None) -> Configuration | None:
    """The given configuration, or the initial one; required under a baseline mode."""
    cur = current if current is not None else problem.settings.initial
    if problem.settings.baseline_mode is not None and cur is None:
        raise ConfigError(
            f"baseline_mode {problem.settings.baseline_mode!r} needs a current configuration",
            where="initial",
        )
    return cur
