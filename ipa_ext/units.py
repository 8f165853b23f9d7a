"""Units and conversion constants shared by core, plugins and reports (one definition each)."""

from __future__ import annotations

JOULES_PER_KWH = 3.6e6
"""Joules in one kilowatt-hour: grams CO2 = joules x intensity (g/kWh) / JOULES_PER_KWH."""

MICROJOULES_PER_JOULE = 1e6
"""RAPL's powercap counters (``energy_uj``, ``max_energy_range_uj``) count microjoules."""

MILLIJOULES_PER_JOULE = 1e3
"""NVML's total-energy counter counts millijoules."""

MILLIWATTS_PER_WATT = 1e3
"""NVML reports power in milliwatts."""

MICROSECONDS_PER_S = 1e6
"""cgroup v2 ``cpu.stat`` counts CPU time in microseconds (``usage_usec``)."""

MS_PER_S = 1e3
"""Milliseconds per second, for printing durations kept in seconds."""

SECONDS_PER_HOUR = 3600.0


def grams_co2(joules: float, g_per_kwh: float) -> float:
    """Grams of CO2 emitted by ``joules`` of electricity at an intensity of ``g_per_kwh``."""
    return joules * g_per_kwh / JOULES_PER_KWH
