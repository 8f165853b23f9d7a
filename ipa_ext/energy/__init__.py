"""Energy measurement: the energy-source interface and its value types."""

from .source import Domain, EnergySource, ProbeResult, Quality, Reading, Status

__all__ = ["Domain", "EnergySource", "ProbeResult", "Quality", "Reading", "Status"]
