"""Baseline policies that mimic other inference-serving systems, as optimizer plugins.

Every policy except ``vpa`` and ``infadapter`` restricts IPA's problem and
delegates to an exact base optimizer (option ``base``, default ``ilp``; options
for it in ``base_options``). Candidates are re-scored on the original problem.
None of the mimicked systems weighs energy, so these policies drop the energy
and carbon terms (delta = epsilon = 0) and the power cap.

============  ====================================================================
policy        what it mimics and how
============  ====================================================================
ipa           IPA itself: the base optimizer with the config's alpha, beta, gamma
              and no energy or carbon term (delta = epsilon = 0, no power cap).
fa2-low       FA2 (scale and batch only), as IPA's "FA2-low" baseline: every stage
              pinned to its least accurate variant; replicas and batch chosen
              (IPA's ``baseline_mode: scale``).
fa2-high      IPA's "FA2-high": variants pinned to a mid-high choice, yolov5s and
              resnet101 for the video pipeline (option ``variants``; other
              pipelines default to the median variant by accuracy).
rim           RIM / model switching with fixed replicas, as IPA's "RIM-high":
              replicas pinned to ``replicas`` (3) per stage; variant and batch
              chosen (IPA's ``baseline_mode: switch``).
ms            Model switching as InfAdapter's "MS+": one variant per stage sized
              in cores (any profiled CPU x replicas) to meet the load, best by the
              objective; no batching (batch 1), as InfAdapter's servers do not batch.
infaas        INFaaS: the cheapest configuration that meets the SLO and the load,
              without maximising accuracy (alpha = 0; accuracy only breaks exact
              cost ties, with weight ``tie_break`` = 1e-6).
vpa           Kubernetes Vertical Pod Autoscaler: fixed variant, batch and replicas;
              CPU per replica follows the recommender's target, p90 of recent
              per-replica usage x 1.15, and changes only when the running value
              leaves [p50 x 1.15, p95 x 1.15]. Usage is capped at the running
              limit, as a container cannot use more. Not SLO-aware: its
              configuration is applied even when it breaks the SLA (the log lists
              the violations).
infadapter    InfAdapter: per stage, a set of variants with the load split among
              them (each with its own replicas), chosen exactly by the core mixing
              model, on pipelines of any length.
============  ====================================================================
"""

from __future__ import annotations

from collections import deque
from dataclasses import replace
from typing import Any, Mapping

from ipa_ext import hookimpl
from ipa_ext.errors import ConfigError
from ipa_ext.model import Configuration, StageConfig
from ipa_ext.optimizers import Optimizer
from ipa_ext.optimize.policies import (
    DEFAULT_BASE,
    DelegatingPolicy,
    check_variants,
    pinned_current,
    ranked_variants,
    with_weights,
)
from ipa_ext.config.numeric import option
from ipa_ext.problem.problem import Evaluation, Problem, Settings

FA2_HIGH_IPA = {"yolov5s", "resnet101"}
"""IPA's FA2-high variants of the video pipeline."""


def _whole(name: str, value: Any, minimum: int = 1) -> int:
    return option(name, value, integer=True, minimum=minimum)


def _percent(name: str, value: Any) -> float:
    return option(name, value, minimum=0, maximum=100)


class IpaPolicy(DelegatingPolicy):
    name = "ipa"  # the default restriction: no energy or carbon term, no power cap


class _PinnedVariants(DelegatingPolicy):
    """Scale-and-batch only, on pinned variants."""
    uses_current = False

    def __init__(self, base: str = DEFAULT_BASE, base_options: Mapping[str, Any] | None = None,
                 variants: Mapping[str, str] | None = None) -> None:
        super().__init__(base, base_options)
        if variants is not None and not isinstance(variants, Mapping):
            raise ValueError("variants must map stage names to variant names")
        self.variants_option = dict(variants) if variants else None
        self._pins: dict[int, dict[str, str]] = {}

    def default_variant(self, problem: Problem, index: int) -> str:
        raise NotImplementedError

    def pins(self, problem: Problem) -> dict[str, str]:
        key = id(problem.pipeline)
        p = self._pins.get(key)
        if p is None:
            p = {s.name: self.default_variant(problem, i) for i, s in enumerate(problem.pipeline.stages)}
            if self.variants_option:
                check_variants(problem.pipeline, self.variants_option, "optimizer.options.variants")
                p.update(self.variants_option)
            self._pins[key] = p
        return p

    def settings_for(self, problem: Problem) -> Settings:
        return replace(super().settings_for(problem), baseline_mode="scale")

    def current_for(self, problem: Problem, current: Configuration | None) -> Configuration | None:
        return pinned_current(problem, current, variants=self.pins(problem))


class Fa2LowPolicy(_PinnedVariants):
    name = "fa2-low"

    def default_variant(self, problem: Problem, index: int) -> str:
        return ranked_variants(problem.pipeline, index)[0]


class Fa2HighPolicy(_PinnedVariants):
    name = "fa2-high"

    def default_variant(self, problem: Problem, index: int) -> str:
        ranked = ranked_variants(problem.pipeline, index)
        ipa = [v for v in ranked if v in FA2_HIGH_IPA]
        return ipa[0] if ipa else ranked[len(ranked) // 2]


class RimPolicy(DelegatingPolicy):
    name = "rim"
    uses_current = False

    def __init__(self, base: str = DEFAULT_BASE, base_options: Mapping[str, Any] | None = None,
                 replicas: int = 3) -> None:
        super().__init__(base, base_options)
        self.replicas = _whole("replicas", replicas)

    def settings_for(self, problem: Problem) -> Settings:
        return replace(super().settings_for(problem), baseline_mode="switch")

    def current_for(self, problem: Problem, current: Configuration | None) -> Configuration | None:
        return pinned_current(problem, current, replicas=self.replicas)


class MsPolicy(DelegatingPolicy):
    name = "ms"
    uses_current = False

    def settings_for(self, problem: Problem) -> Settings:
        return replace(super().settings_for(problem), batching_cap=1, allocation_mode="variable",
                       baseline_mode=None)


class InfaasPolicy(DelegatingPolicy):
    name = "infaas"
    uses_current = False

    def __init__(self, base: str = DEFAULT_BASE, base_options: Mapping[str, Any] | None = None,
                 tie_break: float = 1e-6) -> None:
        super().__init__(base, base_options)
        self.tie_break = option("tie_break", tie_break, minimum=0)

    def settings_for(self, problem: Problem) -> Settings:
        s = with_weights(super().settings_for(problem), alpha=self.tie_break)
        return replace(s, baseline_mode=None)


class VpaPolicy(Optimizer):
    """Kubernetes VPA's recommender and updater over CPU per replica (see module docstring)."""

    name = "vpa"
    deterministic = False
    uses_current = True

    def __init__(
        self,
        variants: Mapping[str, str] | None = None,
        replicas: int | None = None,
        batch: int | None = None,
        history: int = 30,
        margin: float = 0.15,
        target_percentile: float = 90,
        lower_percentile: float = 50,
        upper_percentile: float = 95,
    ) -> None:
        if variants is not None and not isinstance(variants, Mapping):
            raise ValueError("variants must map stage names to variant names")
        self.replicas = _whole("replicas", replicas) if replicas is not None else None
        self.batch = _whole("batch", batch) if batch is not None else None
        self.history = _whole("history", history)
        pcts = (_percent("lower_percentile", lower_percentile), _percent("target_percentile", target_percentile),
                _percent("upper_percentile", upper_percentile))
        if not pcts[0] <= pcts[1] <= pcts[2]:
            raise ValueError("percentiles must satisfy lower <= target <= upper")
        self.margin = option("margin (a fraction: 0.15 is 15 %)", margin, minimum=0, maximum=10)
        self.variants_option = dict(variants) if variants else {}
        self.pcts = pcts
        self.samples: list[deque[float]] = []

    def solve(
        self, problem: Problem, rate_rps: float, current: Configuration | None, k: int
    ) -> tuple[list[Evaluation], dict[str, Any]]:
        import numpy as np

        check_variants(problem.pipeline, self.variants_option, "optimizer.options.variants")
        cur = current if current is not None else problem.settings.initial
        if cur is None:
            raise ConfigError("vpa needs an initial configuration", where="initial")
        if not self.samples:
            self.samples = [deque(maxlen=self.history) for _ in problem.pipeline.stages]
        out: list[StageConfig] = []
        info: dict[str, Any] = {}
        for i, stage in enumerate(problem.pipeline.stages):
            sc = cur[i]
            variant = self.variants_option.get(stage.name, sc.variant)
            replicas = self.replicas or sc.replicas
            ladder = stage.cpus(variant)
            batch = self.batch or sc.batch
            cpu = sc.cpu if sc.cpu in ladder else ladder[0]
            batches = stage.batches(variant, cpu)
            if batch not in batches:
                batch = max([b for b in batches if b <= batch] or [batches[0]])
            prof = stage.profile(variant, cpu, batch)
            assert prof is not None
            demand = rate_rps * cpu / prof.throughput_rps  # core-seconds per second, all replicas
            usage = min(demand, cpu * replicas) / replicas
            self.samples[i].append(usage)
            lo, tgt, hi = (float(np.percentile(list(self.samples[i]), p)) * (1 + self.margin) for p in self.pcts)
            new_cpu = cpu
            if not (lo - 1e-12 <= cpu <= hi + 1e-12):
                fits = [c for c in ladder if c >= tgt - 1e-12 and stage.profile(variant, c, batch) is not None]
                new_cpu = fits[0] if fits else max(c for c in ladder if stage.profile(variant, c, batch) is not None)
            out.append(StageConfig(variant, new_cpu, batch, replicas))
            info[stage.name] = {"usage_cores": usage, "lower": lo, "target": tgt, "upper": hi}
        ev = problem.evaluate(tuple(out), rate_rps)
        return [ev], {"policy": self.name, "recommendation": info}


@hookimpl
def register_optimizers(register) -> None:
    register("ipa", IpaPolicy)
    register("fa2-low", Fa2LowPolicy)
    register("fa2-high", Fa2HighPolicy)
    register("rim", RimPolicy)
    register("ms", MsPolicy)
    register("infaas", InfaasPolicy)
    register("vpa", VpaPolicy)
