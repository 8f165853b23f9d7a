"""The ``estimate`` energy source: CPU time × watts per CPU plus an idle floor, for machines with no counters.

CPU time comes from ``/proc/stat`` (the whole system: ``cpu`` ⊇ ``cpu/active``,
``cpu/idle``) or from a process tree (``pid``, or a counter given through
``attribute_to``: only ``cpu/active``, because the idle floor is the machine's,
not the tree's). Watts come from config values, or from a small TDP table keyed
by the CPU model in ``/proc/cpuinfo``, or from a rough default. Every reading is
labelled ``estimated``; ``probe()`` says which basis and scope were used.
"""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Mapping

from ipa_ext import hookimpl
from ipa_ext.config.numeric import MODEL_LIMIT, option
from ipa_ext.energy.cputime import CLK_TCK, process_tree_cpu_s, system_cpu
from ipa_ext.energy.hostinfo import cpu_model_name
from ipa_ext.energy.source import WHOLE_SYSTEM, Domain, EnergySource, EnergySourceError, ProbeResult, Reading, Status
from ipa_ext.errors import InputError

TDP_TABLE: tuple[tuple[str, float, int], ...] = (
    # (model regex, package TDP in watts, logical CPUs per package) from the vendors' spec sheets
    (r"Xeon\(R\) Gold 6130\b", 125.0, 32),
    (r"Xeon\(R\) Gold 6230\b", 125.0, 40),
    (r"Xeon\(R\) Platinum 8280\b", 205.0, 56),
    (r"Xeon\(R\) Platinum 8380\b", 270.0, 80),
    (r"Xeon\(R\) CPU E5-2680 v4\b", 120.0, 28),
    (r"Xeon\(R\) CPU E5-2698 v4\b", 135.0, 40),
    (r"EPYC 7742\b", 225.0, 128),
    (r"EPYC 7763\b", 280.0, 128),
    (r"Core\(TM\) i7-8700\b", 65.0, 12),
    (r"Core\(TM\) i9-9900K\b", 95.0, 16),
)
DEFAULT_TDP_PER_CPU_W = 5.0
"""An unknown CPU is modelled at 5 W per logical CPU at full load (a rough figure; set tdp_w)."""
DEFAULT_IDLE_FRACTION = 0.3
"""Share of TDP drawn when idle (the idle floor), unless idle_w is given."""
MAX_CPUS = 1_000_000
"""The most logical CPUs the ``cpus`` option may give."""


@dataclass(frozen=True)
class PowerModel:
    """Watts per busy logical CPU, the idle floor in watts, and where they came from."""

    watts_per_cpu: float
    idle_w: float
    basis: str


def lookup_tdp(model: str) -> tuple[float, int] | None:
    """(TDP watts, logical CPUs per package) for a known CPU model string."""
    for pattern, tdp, cpus in TDP_TABLE:
        if re.search(pattern, model):
            return tdp, cpus
    return None


class EstimateSource(EnergySource):
    """Estimated joules: ``cpu/active`` (CPU seconds × watts per CPU) and, for the whole system,
    ``cpu/idle`` (floor × time)."""

    name = "estimate"
    quality = "estimated"
    auto_rank = 10  # estimated: chosen only when no measured CPU source is available
    resolution_s = 1.0 / CLK_TCK

    def __init__(self, watts_per_core: float | None = None, idle_w: float | None = None,
                 tdp_w: float | None = None, cpus: int | None = None, cpu_model: str | None = None,
                 idle_fraction: float = DEFAULT_IDLE_FRACTION, pid: int | None = None,
                 proc: str = "/proc", cpuinfo: str = "/proc/cpuinfo") -> None:
        watts_per_core, idle_w, tdp_w = (
            None if v is None else option(label, v, minimum=0, maximum=MODEL_LIMIT)
            for label, v in (("watts_per_core", watts_per_core), ("idle_w", idle_w), ("tdp_w", tdp_w)))
        idle_fraction = option("idle_fraction", idle_fraction, minimum=0)
        if not idle_fraction < 1.0:
            raise ValueError(f"idle_fraction must be in [0, 1), got {idle_fraction:g}")
        if cpus is not None:
            cpus = option("cpus", cpus, integer=True, minimum=1, maximum=MAX_CPUS)
        self._watts_per_core = watts_per_core
        self._idle_w = idle_w
        self._tdp_w = tdp_w
        self._cpus = cpus
        self._cpu_model = cpu_model
        self.idle_fraction = float(idle_fraction)
        self.pid = pid
        self.proc = proc
        self.cpuinfo = cpuinfo
        self._model: PowerModel | None = None
        self._lock = threading.Lock()
        self._counter: Callable[[], float] | None = None
        self.scope = f"process tree of pid {pid}" if pid is not None else WHOLE_SYSTEM
        self._start: tuple[float, float] | None = None  # (monotonic, cpu seconds) at the first read
        self._cpu_s = 0.0
        self._last_s = 0.0
        self._gap_s = 0.0

    def model(self) -> PowerModel:
        """The power model in use (read from config, the TDP table or the default)."""
        if self._model is None:
            cpus = self._cpus or system_cpu(self.proc).cpus
            if self._watts_per_core is not None and self._idle_w is not None:
                self._model = PowerModel(float(self._watts_per_core), float(self._idle_w),
                                         "config (watts_per_core, idle_w)")
            else:
                if self._tdp_w is not None:
                    per_cpu = float(self._tdp_w) / cpus
                    basis = f"TDP {self._tdp_w:g} W from config tdp_w over {cpus} CPUs"
                else:
                    model = self._cpu_model or cpu_model_name(self.cpuinfo) or "unknown CPU"
                    hit = lookup_tdp(model)
                    if hit is not None:
                        per_cpu = hit[0] / hit[1]
                        basis = f"TDP {hit[0]:g} W over {hit[1]} CPUs, from the TDP table for {model}"
                    else:
                        per_cpu = DEFAULT_TDP_PER_CPU_W
                        basis = (f"the default TDP of {DEFAULT_TDP_PER_CPU_W:g} W per CPU: {model} is not in "
                                 "the TDP table")
                if self._watts_per_core is None or self._idle_w is None:
                    basis += f"; idle_fraction {self.idle_fraction:g} of it is the idle floor"
                wpc = (float(self._watts_per_core) if self._watts_per_core is not None
                       else per_cpu * (1.0 - self.idle_fraction))
                idle = (float(self._idle_w) if self._idle_w is not None
                        else per_cpu * self.idle_fraction * cpus)
                self._model = PowerModel(wpc, idle, basis)
        return self._model

    def probe(self) -> ProbeResult:
        try:
            m = self.model()
            self._cpu_now()
        except ProcessLookupError:
            return ProbeResult(Status.ABSENT, f"process {self.pid} does not exist", "pass the pid of a running process")
        except (InputError, OSError) as exc:
            return ProbeResult(Status.ABSENT, f"cannot read CPU time: {exc}", "needs Linux /proc")
        if self.whole_system:
            how = f"whole system CPU time × {m.watts_per_cpu:.3g} W per CPU + {m.idle_w:.3g} W idle floor"
        else:
            how = (f"{self.scope} CPU time × {m.watts_per_cpu:.3g} W per CPU (the machine's "
                   f"{m.idle_w:.3g} W idle floor is not the tree's and is left out)")
        return ProbeResult(Status.AVAILABLE, f"estimated, not measured: {how}; from {m.basis}")

    @property
    def whole_system(self) -> bool:
        """True when the estimate covers every process and the idle floor (no ``pid``, no counter)."""
        return self.pid is None and self._counter is None

    def attribute_to(self, cpu_seconds: Callable[[], float], label: str) -> bool:
        """Estimate only the processes ``cpu_seconds()`` counts (unless ``pid`` was given)."""
        if self.pid is not None:
            return False
        if self._start is not None:
            raise EnergySourceError("estimate: attribute_to() after the first read")
        self._counter = cpu_seconds
        self.scope = label
        return True

    def excluded_power_w(self) -> Mapping[str, float]:
        return {} if self.whole_system else {"cpu/idle": self.model().idle_w}

    def domains(self) -> list[Domain]:
        if not self.whole_system:
            return [Domain("cpu/active", "cpu-active", None)]
        return [Domain("cpu", "cpu-estimate", None), Domain("cpu/active", "cpu-active", "cpu"),
                Domain("cpu/idle", "cpu-idle", "cpu")]

    def _cpu_now(self) -> float:
        if self._counter is not None:
            return float(self._counter())
        if self.pid is not None:
            return process_tree_cpu_s(int(self.pid), self.proc)
        return system_cpu(self.proc).busy_s

    def read(self) -> Reading:
        m = self.model()
        with self._lock:
            now = time.monotonic()
            gaps: tuple[str, ...] = ()
            try:
                cpu = self._cpu_now()
            except (ProcessLookupError, InputError, OSError):
                cpu = None
            if self._start is None:
                self._start = (now, cpu if cpu is not None else 0.0)
                self._last_s = now
            if cpu is None:
                # the tree is gone (or /proc unreadable): its CPU time stops growing
                if self.whole_system:
                    gaps = ("cpu", "cpu/active")
                    self._gap_s += now - self._last_s
            else:
                # a child that exited but is not yet reaped drops out of the tree until
                # its parent waits for it; never let the total go down meanwhile
                self._cpu_s = max(self._cpu_s, cpu - self._start[1])
            self._last_s = now
            elapsed = now - self._start[0]
            active = m.watts_per_cpu * self._cpu_s
            idle = m.idle_w * elapsed
            gap_s = {"cpu": self._gap_s, "cpu/active": self._gap_s} if self._gap_s > 0 else {}
        if not self.whole_system:
            return Reading(now, {"cpu/active": active}, "estimated", gaps, gap_s)
        return Reading(now, {"cpu": active + idle, "cpu/active": active, "cpu/idle": idle},
                       "estimated", gaps, gap_s)


@hookimpl
def register_energy_sources(register) -> None:
    register("estimate", EstimateSource)
