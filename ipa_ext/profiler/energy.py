"""Energy of profile rows: idle power measured before the sweep, then each row's timed window minus idle,
per request; the arithmetic is in docs/profiling.md ("Energy")."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..energy.cputime import process_tree_cpu_s
from ..energy.meter import GPU_KINDS, Meter, Snapshot
from ..energy.select import choose
from ..energy.source import WHOLE_SYSTEM, root_domains

WORKERS_SCOPE = "process trees of the profiler's workers"


class WorkerCpu:
    """Cumulative CPU seconds of every worker the profiler started (exited ones keep their last value)."""

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._last: dict[int, float] = {}
        self._live: set[int] = set()

    def add(self, pid: int) -> None:
        self._last.setdefault(pid, 0.0)
        self._live.add(pid)

    def __call__(self) -> float:
        for pid in list(self._live):
            try:
                self._last[pid] = max(self._last[pid], process_tree_cpu_s(pid, self.proc))
            except (ProcessLookupError, OSError):
                self._live.discard(pid)  # gone: its last reading stays (windows never span its exit)
        return sum(self._last.values())


@dataclass(frozen=True)
class Idle:
    """Idle power before the sweep: in the sources' scope, and what their scope leaves out (the floor)."""

    scope_w: float
    excluded_w: float
    seconds: float
    quality: str
    gpu_w: float = 0.0
    """The part of :attr:`scope_w` measured on GPU domains."""

    @property
    def machine_w(self) -> float:
        """The host's idle power without the GPUs'."""
        return self.scope_w - self.gpu_w + self.excluded_w


@dataclass(frozen=True)
class RowEnergy:
    """The energy columns of one row."""

    power_w: float
    idle_w: float
    energy_j_per_request: float
    quality: str
    window_j: float
    window_s: float


class ProfileEnergy:
    """The meter the profiler measures with, its description, and the per-row arithmetic."""

    def __init__(self, host: Any, names: Sequence[str] = (),
                 options: Mapping[str, Mapping[str, Any]] | None = None, machine_cpus: int | None = None) -> None:
        choice = choose(host, names, options)
        self.notes = choice.notes
        self.workers = WorkerCpu()
        for src in choice.sources:
            src.attribute_to(self.workers, WORKERS_SCOPE)
        self.meter = Meter(list(choice.sources))
        self.meter.domains()  # a source without domains fails here, before the sweep
        self.machine_cpus = machine_cpus or os.cpu_count() or 1
        self.idle: Idle | None = None

    @property
    def source_names(self) -> list[str]:
        return [s.name for s in self.meter.sources]

    @property
    def quality(self) -> str:
        qs = {s.quality for s in self.meter.sources}
        return next(iter(qs)) if len(qs) == 1 else "mixed"

    def describe(self) -> str:
        """``estimate (estimated; process trees of the profiler's workers)``, one part per source."""
        return "; ".join(f"{s.name} ({s.quality}, {s.scope})" for s in self.meter.sources)

    def measure_idle(self, seconds: float) -> Idle:
        """Idle power over ``seconds`` before any worker runs (with a tree-scoped source: 0 W plus the floor)."""
        excluded = sum(float(w) for s in self.meter.sources for w in s.excluded_power_w().values())
        first = self.meter.snapshot()
        time.sleep(max(seconds, 0.0))
        m = self.meter.between("idle", first, self.meter.settled_snapshot())
        span = m.duration_s if m.duration_s > 0 else float("inf")
        gpu_j = sum(m.energy_j.get(d.id, 0.0) for d in root_domains(m.domains) if d.kind in GPU_KINDS)
        self.idle = Idle(m.total_j / span, excluded, m.duration_s, m.quality, gpu_j / span)
        return self.idle

    def snapshot(self) -> Snapshot:
        return self.meter.snapshot()

    def row(self, start: Snapshot, requests: int, cpu: int, replicas: int, gpu: bool = False) -> RowEnergy:
        """The energy columns for the window from ``start`` to now, which served ``requests``
        (``gpu``: the replicas ran on the GPU, whose idle power they are charged with)."""
        assert self.idle is not None, "measure_idle() first"
        m = self.meter.between("row", start, self.meter.settled_snapshot())
        dynamic_j = max(m.total_j - self.idle.scope_w * m.duration_s, 0.0)
        idle_w = self.idle.machine_w * cpu / self.machine_cpus + (self.idle.gpu_w / replicas if gpu else 0.0)
        dynamic_w = dynamic_j / m.duration_s if m.duration_s > 0 else 0.0
        return RowEnergy(idle_w + dynamic_w / replicas, idle_w, dynamic_j / max(requests, 1), m.quality,
                         m.total_j, m.duration_s)

    def measures_gpu(self) -> bool:
        return any(d.kind in GPU_KINDS for d in self.meter.domains())

    def whole_system(self) -> bool:
        return all(s.scope == WHOLE_SYSTEM for s in self.meter.sources)

    def close(self) -> None:
        self.meter.close()
