"""Prometheus export: ``ipa_ext_energy_joules_total`` (counter) and ``ipa_ext_power_watts`` (gauge).

:class:`EnergyMetrics` is a prometheus-client collector. Feed it
measurements (per interval, per window) and attributions; it keeps one
monotone counter and one gauge per (source, domain, stage, quality). Machine
level series have ``stage=""``; attributed series carry the stage name, or
``idle`` / ``unattributed``, and add up to the machine series of that domain.
Register it in any registry, e.g. the adapter's own metrics endpoint::

    metrics = EnergyMetrics()
    registry.register(metrics)
    metrics.observe(measurement)                   # every interval
    metrics.observe_attribution(attribution, "rapl", "cpu0/package")
"""

from __future__ import annotations

import threading
from typing import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector, CollectorRegistry

from .attribution import IDLE, UNATTRIBUTED, Attribution
from .meter import Measurement

LABELS = ("source", "domain", "stage", "quality")
JOULES = "ipa_ext_energy_joules"  # exposed as ipa_ext_energy_joules_total
WATTS = "ipa_ext_power_watts"

Key = tuple[str, str, str, str]


class EnergyMetrics(Collector):
    """A collector of energy counters and power gauges (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._joules: dict[Key, float] = {}
        self._watts: dict[Key, float] = {}

    def add(self, source: str, domain: str, energy_j: float, power_w: float | None = None, *,
            stage: str = "", quality: str = "measured") -> None:
        """Add joules to one series' counter and set its power gauge."""
        if not energy_j >= 0:
            raise ValueError(f"energy must be >= 0, got {energy_j!r}")
        key = (source, domain, stage, quality)
        with self._lock:
            self._joules[key] = self._joules.get(key, 0.0) + float(energy_j)
            if power_w is not None:
                self._watts[key] = float(power_w)

    def observe(self, m: Measurement, stage: str = "") -> None:
        """Every domain of a measurement (an interval, usually)."""
        for d in m.domains:
            self.add(m.source_of[d.id], d.id, m.energy_j.get(d.id, 0.0), m.power_w(d.id),
                     stage=stage, quality=m.domain_quality[d.id])

    def observe_attribution(self, a: Attribution, source: str, domain: str) -> None:
        """An attribution's parts as stage series of ``domain``."""
        span = a.interval_s if a.interval_s > 0 else None
        for stage, joules in a.parts().items():
            self.add(source, domain, joules, joules / span if span else None, stage=stage, quality=a.quality)

    def describe(self) -> Iterator[object]:
        yield CounterMetricFamily(JOULES, "Energy consumed, joules", labels=LABELS)
        yield GaugeMetricFamily(WATTS, "Average power over the latest interval, watts", labels=LABELS)

    def collect(self) -> Iterator[object]:
        with self._lock:
            joules = dict(self._joules)
            watts = dict(self._watts)
        c = CounterMetricFamily(JOULES, "Energy consumed, joules (domains may nest: psys > package > core; "
                                f"stages '{IDLE}' and '{UNATTRIBUTED}' complete the split)", labels=LABELS)
        for key, v in sorted(joules.items()):
            c.add_metric(list(key), v)
        yield c
        g = GaugeMetricFamily(WATTS, "Average power over the latest interval, watts", labels=LABELS)
        for key, v in sorted(watts.items()):
            g.add_metric(list(key), v)
        yield g


def new_registry(metrics: EnergyMetrics) -> CollectorRegistry:
    """A registry holding only ``metrics`` (what ``ipa-ext energy serve`` exposes)."""
    reg = CollectorRegistry(auto_describe=True)
    reg.register(metrics)
    return reg
