"""Energy measurement: the source interface, the meter, attribution to stages and export.

Sources (RAPL, perf, NVML, estimate and third-party ones) are plugins; see
:mod:`ipa_ext.energy.source`. :mod:`ipa_ext.energy.meter` turns readings into
windows and interval series, :mod:`ipa_ext.energy.attribution` splits a shared
device's energy over pipeline stages, :mod:`ipa_ext.energy.export` exposes it
to Prometheus.
"""

from .source import (
    Domain,
    EnergySource,
    EnergySourceError,
    ProbeResult,
    Quality,
    Reading,
    Status,
    WHOLE_SYSTEM,
    root_domains,
)

__all__ = ["Domain", "EnergySource", "EnergySourceError", "ProbeResult", "Quality", "Reading", "Status", "WHOLE_SYSTEM",
           "root_domains"]
