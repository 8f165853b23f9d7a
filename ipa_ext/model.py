"""The pipeline model: stages, variants, profile rows and configurations.

These are plain frozen values. IPA's semantics on top of them (SLA, base
allocation, normalised accuracy, feasibility) live in :mod:`ipa_ext.problem`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Profile:
    """One measured or derived operating point of a variant.

    ``latency_s`` is the per-batch model latency (IPA uses the p99 by default),
    ``throughput_rps`` the requests per second one replica sustains. The power
    fields are optional:

    * ``power_w``: average power of one replica while serving flat out at this batch;
    * ``idle_w``: power of one replica that is reserved but idle;
    * ``energy_j_per_request``: dynamic energy per request at this batch.

    ``latency_p50_s`` (optional, written by ``ipa-ext profile``) is the median
    per-batch latency; the simulator draws service times between it and
    ``latency_s`` (docs/adaptation.md).
    """

    stage: str
    variant: str
    cpu: float
    batch: int
    latency_s: float
    throughput_rps: float
    power_w: float | None = None
    idle_w: float | None = None
    energy_j_per_request: float | None = None
    latency_p50_s: float | None = None

    @property
    def key(self) -> tuple[str, str, float, int]:
        return (self.stage, self.variant, self.cpu, self.batch)

    @property
    def has_power(self) -> bool:
        """True when the row defines enough to compute power at a given rate."""
        return self.dynamic_energy_j is not None

    @property
    def idle_power_w(self) -> float:
        """Idle watts of one reserved replica (0 when the profile gives none)."""
        return self.idle_w if self.idle_w is not None else 0.0

    @property
    def dynamic_energy_j(self) -> float | None:
        """Joules per request above idle.

        Explicit ``energy_j_per_request`` wins. Otherwise it is derived from the
        flat-out power: ``(power_w - idle_w) / throughput_rps``.
        """
        if self.energy_j_per_request is not None:
            return self.energy_j_per_request
        if self.power_w is not None:
            return max(self.power_w - self.idle_power_w, 0.0) / self.throughput_rps
        return None

    def power_at(self, rate_rps: float, replicas: int) -> float:
        """Stage power in watts: ``replicas*idle_w + rate*energy_j_per_request``."""
        dyn = self.dynamic_energy_j
        if dyn is None:
            raise ValueError(f"profile {self.key} has no power fields")
        return replicas * self.idle_power_w + rate_rps * dyn


@dataclass(frozen=True)
class Variant:
    """A model variant of a stage. ``accuracy`` is in IPA's units (percent)."""

    name: str
    accuracy: float


@dataclass(frozen=True)
class Stage:
    """A pipeline stage: its variants and their profile rows."""

    name: str
    variants: tuple[Variant, ...]
    profiles: Mapping[tuple[str, float, int], Profile] = field(repr=False)

    def variant(self, name: str) -> Variant:
        for v in self.variants:
            if v.name == name:
                return v
        raise KeyError(name)

    @property
    def variant_names(self) -> tuple[str, ...]:
        return tuple(v.name for v in self.variants)

    def profile(self, variant: str, cpu: float, batch: int) -> Profile | None:
        return self.profiles.get((variant, cpu, batch))

    def cpus(self, variant: str | None = None) -> tuple[float, ...]:
        """Profiled CPU allocations, ascending (of one variant, or of all)."""
        return tuple(
            sorted({c for (v, c, _b) in self.profiles if variant is None or v == variant})
        )

    def batches(self, variant: str | None = None, cpu: float | None = None) -> tuple[int, ...]:
        """Profiled batch sizes, ascending."""
        return tuple(
            sorted(
                {
                    b
                    for (v, c, b) in self.profiles
                    if (variant is None or v == variant) and (cpu is None or c == cpu)
                }
            )
        )


@dataclass(frozen=True)
class Pipeline:
    """An ordered, linear pipeline of stages."""

    name: str
    stages: tuple[Stage, ...]
    models: Mapping[tuple[str, str], Any] = field(default_factory=dict, repr=False, compare=False)
    """Real models the variants name (:class:`ipa_ext.config.modelref.ModelRef`), keyed by (stage, variant);
    the simulation ignores them."""

    def stage(self, name: str) -> Stage:
        for s in self.stages:
            if s.name == name:
                return s
        raise KeyError(name)

    @property
    def stage_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    @property
    def has_power(self) -> bool:
        return all(p.has_power for s in self.stages for p in s.profiles.values())


@dataclass(frozen=True, order=True)
class StageConfig:
    """What an optimizer decides for one stage."""

    variant: str
    cpu: float
    batch: int
    replicas: int

    def as_dict(self) -> dict[str, object]:
        return {
            "variant": self.variant,
            "cpu": self.cpu,
            "batch": self.batch,
            "replicas": self.replicas,
        }


Configuration = tuple[StageConfig, ...]
"""A pipeline configuration: one :class:`StageConfig` per stage, in stage order."""


def configuration_from_mapping(
    pipeline: Pipeline, mapping: Mapping[str, Mapping[str, object]]
) -> Configuration:
    """Build a configuration from ``{stage: {variant, cpu, batch, replicas}}``."""
    out = []
    for stage in pipeline.stages:
        m = mapping[stage.name]
        out.append(
            StageConfig(
                variant=str(m["variant"]),
                cpu=float(m["cpu"]),  # type: ignore[arg-type]
                batch=int(m["batch"]),  # type: ignore[call-overload]
                replicas=int(m["replicas"]),  # type: ignore[call-overload]
            )
        )
    return tuple(out)


def changes(a: Iterable[StageConfig], b: Iterable[StageConfig]) -> int:
    """Number of variant and batch changes between two configurations (IPA's least-change rule)."""
    return sum(
        (x.variant != y.variant) + (x.batch != y.batch) for x, y in zip(a, b, strict=True)
    )
