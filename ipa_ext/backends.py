"""The backend interface: where configurations are applied and load is observed.

The adapter loop (:mod:`ipa_ext.adapt.adapter`) is backend-agnostic. Each step it

1. reads the request-rate history with :meth:`Backend.observe_rates`;
2. applies the chosen configuration with :meth:`Backend.apply`;
3. lets one adaptation interval pass with :meth:`Backend.advance`, which returns
   what happened in it as an :class:`IntervalOutcome`.

Backends are plugins (hook ``register_backends``). A factory receives the
backend's options (``backend.options`` in the config, over the config section
named after the backend, e.g. ``simulation:``); :meth:`Backend.start` then
receives the run's :class:`RunContext`. The simulation backend replays a trace
on a simulated clock; a live backend (kubernetes) sets ``live = True``, and its
``advance`` waits in real time, returning early when ``stop`` is set.

Faults. A live backend raises :class:`~ipa_ext.errors.TransientError` from
:meth:`Backend.start`, :meth:`Backend.observe_rates`,
:meth:`Backend.current_configuration` or :meth:`Backend.apply` for a fault
that may clear by itself (a server down); the loop logs it, keeps the running
configuration and tries again next interval. A
:class:`~ipa_ext.errors.ConfigError` ends the run. :meth:`Backend.advance`
never raises for a transient fault: what it could not observe is NaN.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from .model import Configuration

if TYPE_CHECKING:  # pragma: no cover
    from .problem.problem import Problem
    from .workloads import Workload


@dataclass(frozen=True)
class RunContext:
    """What a backend needs to know about the run it serves."""

    problem: Problem
    initial: Configuration | None
    """The configuration to start from (simulation); a live backend reads what runs."""
    workload: Workload | None = None
    """The request series to replay (simulation); live backends observe real load."""
    base_dir: Path = field(default_factory=Path.cwd)
    """Where relative paths in the backend's options are resolved."""
    config_path: Path | None = None
    """The config file, for error messages naming it."""
    policy: str | None = None
    """The optimizer's name as the run gives it (the config's or ``--optimizer``), for error messages."""


@dataclass(frozen=True)
class IntervalOutcome:
    """What happened between ``start_s`` and ``end_s`` on the backend's clock.

    Counts are requests (the simulation's fluid model makes them real numbers).
    ``energy_j_by_stage`` is the backend's own energy figure (the simulation's
    model of the profiles' power fields, quality ``estimated``), or None when the
    backend has none; the adapter then needs an energy meter.
    """

    start_s: float
    end_s: float
    arrivals: float
    served: float
    dropped: float
    late: float
    """Served requests whose end-to-end latency exceeded the SLA."""
    queued: float
    """Requests still queued at ``end_s``."""
    busy_cpu_s_by_stage: Mapping[str, float]
    """Core-seconds spent serving requests, per stage (for energy attribution)."""
    reserved_core_s_by_stage: Mapping[str, float]
    """Core-seconds reserved (cpu x replicas x time), per stage."""
    energy_j_by_stage: Mapping[str, float] | None = None
    energy_quality: str | None = None
    energy_source: str | None = None
    accuracy_pct: float | None = None
    """Request-weighted pipeline accuracy, percent (mean of the stages' accuracies)."""
    accuracy: float | None = None
    """Request-weighted accuracy term of the objective (normalised and combined as configured)."""
    latency_mean_s: float | None = None
    latency_max_s: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s

    @property
    def energy_j(self) -> float | None:
        if self.energy_j_by_stage is None:
            return None
        return float(sum(self.energy_j_by_stage.values()))

    @property
    def slo_violations(self) -> float:
        """Requests that missed the SLA: served late plus dropped."""
        return self.late + self.dropped


class Backend(ABC):
    """Base class for backends. See the module docstring for the call order."""

    name: str = ""
    live: bool = False
    """True when time passes in the real world (energy meters then apply)."""

    @abstractmethod
    def start(self, context: RunContext) -> None:
        """Prepare the run; the initial configuration is running afterwards."""

    @abstractmethod
    def now_s(self) -> float:
        """The backend's clock in seconds since :meth:`start`."""

    @abstractmethod
    def finished(self) -> bool:
        """True when there is nothing left to serve (a replayed trace has ended)."""

    @abstractmethod
    def observe_rates(self, duration_s: float) -> Sequence[float]:
        """Per-second request rates over the last ``duration_s`` seconds, oldest first."""

    @abstractmethod
    def current_configuration(self) -> Configuration:
        """The configuration last applied (the one the pipeline runs or is moving to)."""

    @abstractmethod
    def apply(self, config: Configuration) -> tuple[bool, ...]:
        """Apply a configuration; one success flag per stage."""

    @abstractmethod
    def advance(self, duration_s: float, stop: threading.Event | None = None) -> IntervalOutcome:
        """Let up to ``duration_s`` seconds pass and report them.

        Returns early at the end of a replayed trace, or when ``stop`` is set.
        """

    def close(self) -> None:
        """Release resources (default: nothing)."""

    def energy_source_options(self, name: str) -> Mapping[str, Any]:
        """Defaults for the options of energy source ``name``, known once the backend started.

        The config's options for the source override them. The kubernetes
        backend gives the ``kepler`` source its Prometheus, namespace and each
        stage's pods; the default is none.
        """
        return {}

    def per_second(self) -> Any:
        """Per-second records when the backend keeps them: the simulation's
        :class:`ipa_ext.simulate.simulator.SecondSeries`, or an object with ``len()`` and
        ``write_csv(path, predicted_rps) -> rows`` (the local backend's real requests).

        Like :meth:`latency_quantiles`, readable after :meth:`close`.
        """
        return None

    def latency_quantiles(self, qs: Sequence[float]) -> dict[float, float | None] | None:
        """End-to-end latency quantiles over the run, when the backend knows them."""
        return None
