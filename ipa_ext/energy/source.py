"""The energy-source interface every source plugin implements.

A source yields cumulative joules per domain. ``probe()`` never raises and
says whether the source can work here; ``read()`` returns unwrapped,
monotone joules with a monotonic timestamp and a quality label. Sources must
not touch hardware at import time or in ``__init__``; do it in ``probe`` and
``read``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from enum import Enum
from typing import Literal, Mapping

Quality = Literal["measured", "estimated"]


class Status(str, Enum):
    """Outcome of :meth:`EnergySource.probe`."""

    AVAILABLE = "available"
    ABSENT = "absent"
    PERMISSION = "permission"
    VIRTUALISED = "virtualised"


@dataclass(frozen=True)
class ProbeResult:
    """Whether a source works here, why not, and a one-line fix hint."""

    status: Status
    detail: str = ""
    hint: str = ""

    @property
    def available(self) -> bool:
        return self.status is Status.AVAILABLE


@dataclass(frozen=True)
class Domain:
    """A measured domain with a stable id (``cpu0/package``, ``gpu0``) and its containing domain."""

    id: str
    kind: str
    parent: str | None = None


@dataclass(frozen=True)
class Reading:
    """Cumulative joules per domain at a monotonic timestamp (seconds)."""

    timestamp_s: float
    joules: Mapping[str, float]
    quality: Quality
    gaps: tuple[str, ...] = field(default=())
    """Domains whose counter could not be read or went backwards this time."""


class EnergySource(ABC):
    """Base class for energy sources."""

    name: str = ""
    quality: Quality = "measured"
    resolution_s: float = 0.0
    """Shortest window the source can resolve; shorter windows are flagged."""

    @abstractmethod
    def probe(self) -> ProbeResult:
        """Check availability. Never raises."""

    @abstractmethod
    def domains(self) -> list[Domain]:
        """The domains :meth:`read` reports."""

    @abstractmethod
    def read(self) -> Reading:
        """Cumulative, unwrapped, monotone joules per domain."""

    def close(self) -> None:
        """Release background samplers or child processes (default: nothing)."""
