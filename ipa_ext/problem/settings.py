"""The knobs of IPA's problem (:class:`Settings`, with IPA's defaults) and the one tolerance rule
every feasibility test shares (:func:`within`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

from ..errors import ConfigError
from ..model import Configuration

ACCURACY_METHODS = ("sum", "average", "multiply")
ALLOCATION_MODES = ("fix", "base", "variable")
BASELINE_MODES = ("scale", "switch")
DEFAULT_WEIGHTS: Mapping[str, float] = {
    "alpha": 1.0,
    "beta": 1.0,
    "gamma": 1.0,
    "delta": 0.0,
    "epsilon": 0.0,
}

_REL_TOL = 1e-9


def within(value: float, bound: float) -> bool:
    """``value <= bound`` up to a relative tolerance of 1e-9 (shared by every optimizer)."""
    return value <= bound + _REL_TOL * max(1.0, abs(bound))


@dataclass(frozen=True)
class Settings:
    """The knobs of IPA's problem, with IPA's defaults where it has them."""

    accuracy_method: str = "sum"
    normalize_accuracy: bool = True
    sla_s: float | None = None
    sla_factor: float = 5.0
    allocation_mode: str = "base"
    threshold: float = 4.0
    scaling_cap: int = 100
    batching_cap: int | None = None
    baseline_mode: str | None = None
    num_state_limit: int = 1
    weights: Mapping[str, float] = field(default_factory=lambda: dict(DEFAULT_WEIGHTS))
    power_cap_w: float | None = None
    carbon_intensity_g_per_kwh: float | None = None
    initial: Configuration | None = None

    def weight(self, name: str) -> float:
        return float(self.weights.get(name, DEFAULT_WEIGHTS.get(name, 0.0)))

    def __post_init__(self) -> None:
        if self.accuracy_method not in ACCURACY_METHODS:
            raise ConfigError(
                f"must be one of {', '.join(ACCURACY_METHODS)}, got {self.accuracy_method!r}",
                where="accuracy_method",
            )
        if self.allocation_mode not in ALLOCATION_MODES:
            raise ConfigError(
                f"must be one of {', '.join(ALLOCATION_MODES)}, got {self.allocation_mode!r}",
                where="allocation_mode",
            )
        if self.baseline_mode is not None and self.baseline_mode not in BASELINE_MODES:
            raise ConfigError(
                f"must be one of scale, switch or null, got {self.baseline_mode!r}",
                where="baseline_mode",
            )
        if self.scaling_cap < 1:
            raise ConfigError(f"must be >= 1, got {self.scaling_cap}", where="scaling_cap")
        if self.batching_cap is not None and self.batching_cap < 1:
            raise ConfigError(f"must be >= 1, got {self.batching_cap}", where="batching_cap")
        if self.num_state_limit < 1:
            raise ConfigError(f"must be >= 1, got {self.num_state_limit}", where="num_state_limit")
        if self.sla_s is not None and not self.sla_s > 0:
            raise ConfigError(f"must be > 0, got {self.sla_s}", where="sla_s")
        if not self.sla_factor > 0:
            raise ConfigError(f"must be > 0, got {self.sla_factor}", where="sla_factor")
