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
from typing import Callable, Iterable, Literal, Mapping

from ..errors import IpaExtError

Quality = Literal["measured", "estimated"]

WHOLE_SYSTEM = "whole system"
"""The scope of a hardware counter: every process on the machine, and the idle machine."""


class EnergySourceError(IpaExtError):
    """A source cannot measure here (not available, or it failed while running).

    The message is one line: the source, what went wrong and the fix hint.
    """

    exit_code = 1


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
    gap_s: Mapping[str, float] = field(default_factory=dict)
    """Cumulative seconds per domain that the joules do not cover (unreadable
    file, counter that went backwards, ambiguous wrap). Windows compare this
    between their two readings to flag incomplete totals; a domain missing
    here has no gaps."""


class EnergySource(ABC):
    """Base class for energy sources."""

    name: str = ""
    quality: Quality = "measured"
    resolution_s: float = 0.0
    """Shortest window the source can resolve; shorter windows are flagged."""
    auto_rank: int | None = None
    """How this source ranks when sources are chosen automatically (no source named):
    None never (a source that needs options); otherwise, among the available sources of
    one :attr:`covers`, a measured source beats an estimated one and then the higher rank
    wins (:mod:`ipa_ext.energy.select`). Read from the registered factory, normally this class;
    a source with a rank must work without options."""
    covers: str = "cpu"
    """The hardware whose energy the joules count (``cpu``, ``gpu``, ...). Automatic selection
    takes at most one source per value, so no device's joules are counted twice."""
    scope: str = WHOLE_SYSTEM
    """What the joules cover: ``whole system``, or ``process tree of ...`` for a source that
    counts only some processes (the estimate source with ``pid``, or after :meth:`attribute_to`)."""

    @abstractmethod
    def probe(self) -> ProbeResult:
        """Check availability. Never raises."""

    @abstractmethod
    def domains(self) -> list[Domain]:
        """The domains :meth:`read` reports."""

    @abstractmethod
    def read(self) -> Reading:
        """Cumulative, unwrapped, monotone joules per domain."""

    def attribute_to(self, cpu_seconds: Callable[[], float], label: str) -> bool:
        """Count only the processes whose cumulative CPU seconds ``cpu_seconds()`` returns.

        Called before the first :meth:`read`; ``label`` becomes :attr:`scope`
        (``process tree of 'CMD'``). Hardware counters see the whole machine and
        cannot, so the default returns False and changes nothing.
        """
        return False

    def excluded_power_w(self) -> Mapping[str, float]:
        """Watts per part that this source's scope leaves out of its joules (default: none).

        A process-tree estimate leaves out the machine's idle floor
        (``{"cpu/idle": W}``): it is the machine's, not the processes'.
        """
        return {}

    def close(self) -> None:
        """Release background samplers or child processes (default: nothing)."""


def root_domains(domains: Iterable[Domain]) -> list[Domain]:
    """The domains no other listed domain contains: the ones whose joules may be summed.

    Overlapping zones (psys ⊇ package ⊇ core) are never summed; a total over a
    source is the sum over its roots only.
    """
    doms = list(domains)
    ids = {d.id for d in doms}
    return [d for d in doms if d.parent is None or d.parent not in ids]
