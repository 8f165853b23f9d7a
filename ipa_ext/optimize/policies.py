"""Building blocks for baseline policies that mimic other serving systems.

A policy is an optimizer plugin, so the adapter loop and the benchmark treat
every policy the same way. Most policies restrict IPA's problem (pin variants,
pin replicas, forbid batching, change the weights) and hand the restricted
problem to an exact *base* optimizer that the policy's ``base`` option names
(default: the config default optimizer,
:data:`~ipa_ext.config.defaults.DEFAULT_OPTIMIZER`), which the plugin host binds
through :meth:`DelegatingPolicy.bind_registry`.

Candidates are re-scored on the original problem, so objective terms in logs
are comparable across policies; the policy's own objective value is kept in
the decision's ``info``.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from ..config.defaults import DEFAULT_OPTIMIZER
from ..errors import ConfigError
from ..model import Configuration, Pipeline, StageConfig
from ..optimizers import Optimizer
from ..problem.problem import Evaluation, Problem, Settings
from .pool import CandidatePool

if TYPE_CHECKING:  # pragma: no cover
    from ..host import Registry

DEFAULT_BASE = DEFAULT_OPTIMIZER


class DelegatingPolicy(Optimizer):
    """A policy that reshapes the problem and delegates to an exact base optimizer.

    Subclasses implement :meth:`settings_for` (the restricted settings) and may
    override :meth:`current_for` (the configuration the base optimizer sees as
    current; ``baseline_mode`` scale and switch pin variants and replicas to it).
    """

    uses_current: bool | None = None
    """Whether decisions depend on the running configuration (for the adapter's memo);
    None: only through the config's ``baseline_mode``. Policies that pin what
    ``baseline_mode`` reads, or clear it, set False."""

    def __init__(self, base: str = DEFAULT_BASE, base_options: Mapping[str, Any] | None = None) -> None:
        if not isinstance(base, str) or not base:
            raise ValueError(f"base must be an optimizer name, got {base!r}")
        if base == self.name:
            raise ValueError(f"policy {self.name!r} cannot delegate to itself")
        self.base_name = base
        self.base_options = dict(base_options or {})
        self._base: Optimizer | None = None
        self._cache: tuple[int, Problem, Problem] | None = None

    # -- binding ---------------------------------------------------------------

    def bind_registry(self, registry: Registry, where: str | None = None) -> None:
        """Create the base optimizer (called by the plugin host after construction)."""
        if self.base_name not in registry.names("optimizer"):
            raise ConfigError(
                f"policy {self.name!r} delegates to optimizer {self.base_name!r}, which no plugin "
                f"registered (available: {', '.join(registry.names('optimizer'))}); set its "
                f"'base' option",
                where=f"{where}.base" if where else "base",
            )
        self._base = registry.create("optimizer", self.base_name, self.base_options,
                                     where=f"{where}.base" if where else "base")
        self.deterministic = bool(getattr(self._base, "deterministic", False))

    @property
    def base(self) -> Optimizer:
        if self._base is None:
            raise ConfigError(
                f"policy {self.name!r} is not bound to its base optimizer {self.base_name!r}; "
                "create it through the plugin registry"
            )
        return self._base

    # -- reshaping -------------------------------------------------------------

    def settings_for(self, problem: Problem) -> Settings:
        """The settings of the restricted problem.

        The default drops the energy and carbon terms and the power cap: the systems
        the baselines mimic do not weigh energy.
        """
        s = with_weights(problem.settings, delta=0.0, epsilon=0.0)
        return replace(s, power_cap_w=None)

    def current_for(self, problem: Problem, current: Configuration | None) -> Configuration | None:
        """The configuration the base optimizer sees as current (default: the real one)."""
        return current

    def restricted(self, problem: Problem) -> Problem:
        """The restricted problem, built once per original problem."""
        c = self._cache
        if c is not None and c[0] == id(problem) and c[1] is problem:
            return c[2]
        settings = self.settings_for(problem)
        p2 = problem if settings is problem.settings else Problem(problem.pipeline, settings, problem.objectives)
        self._cache = (id(problem), problem, p2)
        return p2

    def solve(
        self, problem: Problem, rate_rps: float, current: Configuration | None, k: int
    ) -> tuple[Sequence[Evaluation], dict[str, Any]]:
        p2 = self.restricted(problem)
        cur2 = self.current_for(problem, current)
        cands, info = self.base.solve(p2, rate_rps, cur2, k)
        out: Sequence[Evaluation]
        if isinstance(cands, CandidatePool):  # re-scored as each candidate is read
            out = cands.mapped(lambda c: problem.evaluate(c.config, rate_rps))
        else:
            out = [problem.evaluate(c.config, rate_rps) for c in cands]
        extra: dict[str, Any] = {"policy": self.name, "base": self.base_name}
        if cands:
            extra["policy_objective"] = cands[0].objective
        return out, {**info, **extra}


# --------------------------------------------------------------------------- helpers


def ranked_variants(pipeline: Pipeline, stage_index: int) -> list[str]:
    """A stage's variants from least to most accurate (ties by name)."""
    stage = pipeline.stages[stage_index]
    return [v.name for v in sorted(stage.variants, key=lambda v: (v.accuracy, v.name))]


def check_variants(pipeline: Pipeline, variants: Mapping[str, str], where: str) -> None:
    """Every stage named exists and every variant belongs to its stage."""
    for stage_name, variant in variants.items():
        try:
            stage = pipeline.stage(stage_name)
        except KeyError:
            raise ConfigError(f"{stage_name!r} is not a stage of the pipeline", where=f"{where}.{stage_name}") from None
        if variant not in stage.variant_names:
            raise ConfigError(
                f"unknown variant {variant!r} of stage {stage_name!r} "
                f"(known: {', '.join(stage.variant_names)})",
                where=f"{where}.{stage_name}",
            )


def pinned_current(
    problem: Problem, current: Configuration | None, *, variants: Mapping[str, str] | None = None,
    replicas: int | None = None,
) -> Configuration:
    """A stand-in current configuration with variants and/or replicas pinned.

    ``baseline_mode: scale`` reads only the variants of it, ``switch`` only the
    replicas, so the other fields are placeholders taken from the real current
    (or initial) configuration.
    """
    base = current if current is not None else problem.settings.initial
    out = []
    for i, stage in enumerate(problem.pipeline.stages):
        if base is not None:
            sc = base[i]
        else:
            v0 = stage.variant_names[0]
            cpu = stage.cpus(v0)[0]
            sc = StageConfig(v0, cpu, stage.batches(v0, cpu)[0], 1)
        if variants is not None and stage.name in variants:
            sc = replace(sc, variant=variants[stage.name])
        if replicas is not None:
            sc = replace(sc, replicas=int(replicas))
        out.append(sc)
    return tuple(out)


def with_weights(settings: Settings, **weights: float) -> Settings:
    w = dict(settings.weights)
    w.update(weights)
    return replace(settings, weights=w)
