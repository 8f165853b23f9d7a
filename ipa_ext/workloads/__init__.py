"""Request workloads: trace files, IPA's named windows, seeded synthetic patterns, and resolving what a config or command line names."""

from __future__ import annotations

from .resolve import DEFAULT_SYNTHETIC, from_section, resolve
from .synthetic import MAX_DURATION_S, MAX_RATE_RPS, SYNTHETIC_PATTERNS, synthetic
from .traces import Workload, load_trace, parse_trace
from .windows import IPA_WINDOWS, parse_window, twitter, window

__all__ = [
    "DEFAULT_SYNTHETIC", "IPA_WINDOWS", "MAX_DURATION_S", "MAX_RATE_RPS", "SYNTHETIC_PATTERNS", "Workload",
    "from_section", "load_trace", "parse_trace", "parse_window", "resolve", "synthetic", "twitter", "window",
]
