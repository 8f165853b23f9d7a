"""IPA's adaptation problem as one object: :class:`Problem`, a façade over the settings
(``settings.py``), the option space (``options.py``), scoring (``scoring.py``) and the
infeasibility diagnosis (``diagnosis.py``). IPA's rules and ipa-ext's deliberate differences
are in docs/ipa-semantics.md.
"""

from __future__ import annotations

import math
from functools import cached_property
from typing import Mapping, Sequence

from ..errors import ConfigError, InfeasibleError
from ..model import Configuration, Pipeline, StageConfig
from ..objectives import Objective
from . import diagnosis, scoring
from . import options as space
from .options import (
    IPA_TASK_SLA_MULTIPLIER,
    MAX_SCALING_CAP,
    Option,
    queue_delay_s,
    replicas_needed,
)
from .scoring import Evaluation
from .settings import (
    ACCURACY_METHODS,
    ALLOCATION_MODES,
    BASELINE_MODES,
    DEFAULT_WEIGHTS,
    Settings,
    within,
)

__all__ = [
    "ACCURACY_METHODS", "ALLOCATION_MODES", "BASELINE_MODES", "DEFAULT_WEIGHTS", "Evaluation",
    "IPA_TASK_SLA_MULTIPLIER", "MAX_SCALING_CAP", "Option", "Problem", "Settings", "queue_delay_s",
    "replicas_needed", "within",
]


class Problem:
    """A pipeline plus settings plus objectives: what every optimizer solves.

    Derived facts (SLA, base allocations, normalised accuracies) are computed once and
    cached; per-rate option lists are cheap to rebuild. The option, scoring and diagnosis
    methods are the functions of the modules named in the module docstring.
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
        """IPA's task SLAs (:func:`ipa_ext.problem.options.task_slas`)."""
        return space.task_slas(self.pipeline, self.settings.sla_factor)

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
        return space.accuracy_scores(self.pipeline, self.settings.normalize_accuracy)

    def base_allocations(self) -> tuple[Mapping[str, float], ...]:
        """IPA's base allocation (CPU per variant) for every stage (:func:`ipa_ext.problem.options.base_allocation`)."""
        return self._base_allocations

    @cached_property
    def _base_allocations(self) -> tuple[Mapping[str, float], ...]:
        return tuple(space.base_allocation(stage, self.stage_slas_s[i], self.settings.threshold)
                     for i, stage in enumerate(self.pipeline.stages))

    # ------------------------------------------------------------------ option space

    def stage_choices(self, index: int, current: StageConfig | None) -> list[tuple[str, float, int]]:
        """(variant, cpu, batch) choices of a stage under the allocation and baseline modes.

        They do not depend on the rate, so they are computed once per stage (and
        per current variant under ``baseline_mode: scale``).
        """
        scale = self.settings.baseline_mode == "scale" and current is not None
        key = (index, current.variant if scale else None)  # type: ignore[union-attr]
        cached = self._choices_cache.get(key)
        if cached is None:
            cached = tuple(space.choices_of(self, index, current))
            self._choices_cache[key] = cached
        return list(cached)

    make_option = space.make_option
    stage_options = space.stage_options
    options = space.options
    resolve_current = space.resolve_current

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
        # power term's check scans every profile row, so it is worth keeping)
        return tuple(o for o in self.objectives if o.unavailable_reason(self) is None)

    @cached_property
    def term_aliases(self) -> Mapping[str, str]:
        """Former term names (objectives' ``aliases``) to the current ones, except names in use."""
        names = {o.name for o in self.objectives}
        return {a: o.name for o in self.objectives for a in o.aliases if a not in names}

    def term_map(self, values: dict[str, float]) -> dict[str, float]:
        """Terms by objective name that also answer to the objectives' former names (a plain
        dict when no objective has one); for optimizers that score configurations themselves."""
        aliases = self.term_aliases
        return scoring.Terms(values, aliases) if aliases else values

    score = scoring.score
    objective_value = scoring.objective_value
    power_w = scoring.power_w
    violations = scoring.violations
    evaluate = scoring.evaluate
    evaluate_options = scoring.evaluate_options

    # ------------------------------------------------------------------ infeasibility

    explain_infeasible = diagnosis.explain_infeasible

    def infeasible(self, rate_rps: float, current: Configuration | None = None) -> InfeasibleError:
        """The :class:`InfeasibleError` of :meth:`explain_infeasible`."""
        return InfeasibleError("no feasible configuration: " + self.explain_infeasible(rate_rps, current))
