"""The backend interface: where configurations are applied and load is observed.

Backends are plugins (hook ``register_backends``): the simulation backend
replays a trace, the kubernetes backend patches a cluster.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

from .model import Configuration


class Backend(ABC):
    """Base class for backends."""

    name: str = ""

    @abstractmethod
    def observe_rates(self, duration_s: float) -> Sequence[float]:
        """Per-second request rates over the last ``duration_s`` seconds, oldest first."""

    @abstractmethod
    def current_configuration(self) -> Configuration:
        """The configuration now running, in the optimizer's structure."""

    @abstractmethod
    def apply(self, config: Configuration) -> bool:
        """Apply a configuration; True when every stage changed successfully."""
