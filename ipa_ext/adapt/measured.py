"""Measured energy for the adaptation loop: an :class:`~ipa_ext.adapt.interval_energy.IntervalMeter` over the energy meter.

Each adaptation interval is one window of an :class:`ipa_ext.energy.meter.Meter`.
Its measured total (root domains only, so overlapping zones are never summed)
is split as Kepler does (:func:`ipa_ext.energy.attribution.attribute`): idle
energy (idle power x interval) apart, the rest among the pipeline stages by
their share of the busy CPU seconds the backend reports for the interval
(``IntervalOutcome.busy_cpu_s_by_stage``), and an ``unattributed`` remainder
when the machine's busy CPU time (``system_cpu_s``) exceeds the stages'. The
parts add up to the measured total. Idle power is configured, or the lowest
interval power seen so far (Kepler's default without an idle measurement).

Sources that already attribute their energy to stages (they have a
``stage_of(domain) -> stage`` method, as the ``kepler`` source does: Kepler
splits each node's energy over pods itself) are not split again: each of their
domains goes to its stage as measured. Only the other sources' energy is split
by CPU-time share; idle and unattributed parts then cover that part only.

The loop uses it only with a live backend: a simulated clock runs much faster
than the hardware counters. :class:`DeferredIntervals` makes the sources when
the first interval begins, after the backend has started, so that the backend
can supply options it only knows then (the kubernetes backend gives the
``kepler`` source each stage's pods).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

from ..backends import IntervalOutcome
from ..config.config import ComponentSpec
from ..energy.attribution import attribute
from ..energy.meter import Meter
from ..energy.select import choose
from ..energy.source import root_domains
from .interval_energy import IntervalEnergy


class MeasuredIntervals:
    """Adaptation intervals as meter windows, attributed to stages (see module docstring)."""

    def __init__(
        self,
        meter: Meter,
        *,
        idle_power_w: float | None = None,
        system_cpu_s: Callable[[], float] | None = None,
    ) -> None:
        self.meter = meter
        self.idle_power_w = idle_power_w
        self.system_cpu_s = system_cpu_s
        self.min_power_w: float | None = None
        self._sys: dict[str, float] = {}
        self.source = "+".join(s.name for s in meter.sources)

    @classmethod
    def from_specs(
        cls,
        host: Any,
        specs: Sequence[ComponentSpec],
        *,
        defaults: Callable[[str], Mapping[str, Any]] | None = None,
        scope: tuple[Callable[[], float], str] | None = None,
        **kwargs: Any,
    ) -> MeasuredIntervals:
        """From a config's ``energy.sources`` (each must be available; none: the automatic choice).

        ``defaults(name)`` gives option defaults the config's options override; ``scope``
        (a CPU-seconds counter and its label) narrows sources that can count only some
        processes (the estimate source) to those processes."""
        names = [s.name for s in specs]
        options: dict[str, dict[str, Any]] = {}
        for s in specs:
            opts = {**dict(defaults(s.name) if defaults is not None else {}), **dict(s.options)}
            if opts:
                options[s.name] = opts
        sources = list(choose(host, names, options).sources)
        if scope is not None:  # a source that can count only these processes does; the idle floor is not theirs
            scoped = [s.attribute_to(*scope) for s in sources]
            if all(scoped) and kwargs.get("idle_power_w") is None:
                kwargs["idle_power_w"] = 0.0
        return cls(Meter(sources), **kwargs)

    def begin_interval(self, key: str) -> None:
        self.meter.begin(key)
        if self.system_cpu_s is not None:
            self._sys[key] = float(self.system_cpu_s())

    def _split(self, m: Any) -> tuple[dict[str, float], float, bool]:
        """Joules each stage-attributing source gave each stage, the other sources' total, and
        whether there are other sources."""
        by_name = {s.name: s for s in self.meter.sources}
        staged: dict[str, float] = {}
        machine = 0.0
        has_machine = False
        for d in root_domains(m.domains):
            src = by_name.get(m.source_of[d.id])
            stage_of = getattr(src, "stage_of", None)
            j = float(m.energy_j.get(d.id, 0.0))
            if callable(stage_of):
                stage = stage_of(d.id)
                staged[stage] = staged.get(stage, 0.0) + j
            else:
                machine += j
                has_machine = True
        return staged, machine, has_machine

    def end_interval(self, key: str, outcome: IntervalOutcome) -> IntervalEnergy:
        m = self.meter.end(key)
        span = m.duration_s
        machine_cpu = None
        if self.system_cpu_s is not None and key in self._sys:
            machine_cpu = max(0.0, float(self.system_cpu_s()) - self._sys.pop(key))
        staged, machine, has_machine = self._split(m)
        if not has_machine:
            return IntervalEnergy(total_j=sum(staged.values()), by_stage_j=staged, quality=m.quality,
                                  source=self.source)
        if span > 0:
            p = machine / span
            self.min_power_w = p if self.min_power_w is None else min(self.min_power_w, p)
        idle_w = self.idle_power_w if self.idle_power_w is not None else (self.min_power_w or 0.0)
        att = attribute(machine, span, dict(outcome.busy_cpu_s_by_stage), idle_power_w=idle_w,
                        total_cpu_s=machine_cpu, quality=m.quality)
        by_stage = {name: s.energy_j for name, s in att.stages.items()}
        for name, j in staged.items():
            by_stage[name] = by_stage.get(name, 0.0) + j
        return IntervalEnergy(
            total_j=machine + sum(staged.values()),
            by_stage_j=by_stage,
            quality=m.quality,
            source=self.source,
            idle_j=att.idle_j,
            unattributed_j=att.unattributed_j,
        )

    def close(self) -> None:
        self.meter.close()


class DeferredIntervals:
    """:class:`MeasuredIntervals` made from the config's sources when the first interval begins.

    ``defaults(name)`` (the backend's :meth:`~ipa_ext.backends.Backend.energy_source_options`)
    is asked then, after the backend has started.
    """

    def __init__(self, host: Any, specs: Sequence[ComponentSpec],
                 defaults: Callable[[str], Mapping[str, Any]] | None = None,
                 scope: tuple[Callable[[], float], str] | None = None, **kwargs: Any) -> None:
        self.host = host
        self.specs = list(specs)
        self.defaults = defaults
        self.scope = scope
        self.kwargs = kwargs
        self.inner: MeasuredIntervals | None = None

    def begin_interval(self, key: str) -> None:
        if self.inner is None:
            self.inner = MeasuredIntervals.from_specs(self.host, self.specs, defaults=self.defaults,
                                                      scope=self.scope, **self.kwargs)
        self.inner.begin_interval(key)

    def end_interval(self, key: str, outcome: IntervalOutcome) -> IntervalEnergy:
        if self.inner is None:
            raise RuntimeError("end_interval before begin_interval")
        return self.inner.end_interval(key, outcome)

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()
