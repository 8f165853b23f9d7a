"""Measured energy for the adaptation loop: an :class:`~ipa_ext.adapter.IntervalMeter` over the energy meter.

Each adaptation interval is one window of an :class:`ipa_ext.energy.meter.Meter`.
Its measured total (root domains only, so overlapping zones are never summed)
is split as Kepler does (:func:`ipa_ext.energy.attribution.attribute`): idle
energy (idle power x interval) apart, the rest among the pipeline stages by
their share of the busy CPU seconds the backend reports for the interval
(``IntervalOutcome.busy_cpu_s_by_stage``), and an ``unattributed`` remainder
when the machine's busy CPU time (``system_cpu_s``) exceeds the stages'. The
parts add up to the measured total. Idle power is configured, or the lowest
interval power seen so far (Kepler's default without an idle measurement).

The loop uses it only with a live backend: a simulated clock runs much faster
than the hardware counters.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from .adapter import IntervalEnergy
from .backends import IntervalOutcome
from .config import ComponentSpec
from .energy.attribution import attribute
from .energy.meter import Meter
from .energy.select import choose


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
    def from_specs(cls, host: Any, specs: Sequence[ComponentSpec], **kwargs: Any) -> MeasuredIntervals:
        """From a config's ``energy.sources`` (each must be available; none: the automatic choice)."""
        names = [s.name for s in specs]
        options = {s.name: dict(s.options) for s in specs if s.options}
        return cls(Meter(list(choose(host, names, options).sources)), **kwargs)

    def begin_interval(self, key: str) -> None:
        self.meter.begin(key)
        if self.system_cpu_s is not None:
            self._sys[key] = float(self.system_cpu_s())

    def end_interval(self, key: str, outcome: IntervalOutcome) -> IntervalEnergy:
        m = self.meter.end(key)
        total = m.total_j
        span = m.duration_s
        machine_cpu = None
        if self.system_cpu_s is not None and key in self._sys:
            machine_cpu = max(0.0, float(self.system_cpu_s()) - self._sys.pop(key))
        if span > 0:
            p = total / span
            self.min_power_w = p if self.min_power_w is None else min(self.min_power_w, p)
        idle_w = self.idle_power_w if self.idle_power_w is not None else (self.min_power_w or 0.0)
        att = attribute(total, span, dict(outcome.busy_cpu_s_by_stage), idle_power_w=idle_w,
                        total_cpu_s=machine_cpu, quality=m.quality)
        return IntervalEnergy(
            total_j=total,
            by_stage_j={name: s.energy_j for name, s in att.stages.items()},
            quality=m.quality,
            source=self.source,
            idle_j=att.idle_j,
            unattributed_j=att.unattributed_j,
        )

    def close(self) -> None:
        self.meter.close()
