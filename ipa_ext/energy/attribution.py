"""Attribution of a shared CPU's energy to pipeline stages by CPU-time share, as Kepler does.

Over an interval, the measured total splits into idle energy (idle power ×
interval), each stage's share of the active energy (its CPU seconds over the
machine's busy CPU seconds), and an "unattributed" remainder for CPU time no
stage used. The parts always add up to the measured total. With request
counts each stage also gets joules per request.

Two entry points:

- :func:`attribute` is the pure calculation for one interval;
- :class:`StageAttributor` is what an adapter loop calls once per interval:
  it reads a :class:`~ipa_ext.energy.meter.Meter` and each stage's CPU time
  (cgroup v2 ``cpu.stat``, a process tree, or any callable) and returns an
  :class:`Attribution`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import InputError
from .cputime import cgroup_cpu_s, process_tree_cpu_s, system_cpu
from .meter import CPU_KINDS, Meter, Snapshot
from .source import root_domains

IDLE = "idle"
UNATTRIBUTED = "unattributed"


@dataclass(frozen=True)
class StageEnergy:
    """One stage's part of an interval's energy."""

    stage: str
    cpu_s: float
    share: float
    """Fraction of the machine's busy CPU time this stage used."""
    energy_j: float
    requests: int | None = None

    @property
    def j_per_request(self) -> float | None:
        """Joules per request; None when no request count was given or the stage served none."""
        return self.energy_j / self.requests if self.requests else None


@dataclass(frozen=True)
class Attribution:
    """An interval's energy split into idle, per-stage and unattributed parts that sum to ``total_j``."""

    interval_s: float
    total_j: float
    idle_j: float
    stages: Mapping[str, StageEnergy]
    unattributed_j: float
    cpu_s_total: float
    quality: str = "measured"
    notes: tuple[str, ...] = field(default=())

    @property
    def active_j(self) -> float:
        return self.total_j - self.idle_j

    def parts(self) -> dict[str, float]:
        """Joules by part: each stage, ``idle`` and ``unattributed``; they sum to ``total_j``."""
        out = {name: s.energy_j for name, s in self.stages.items()}
        out[IDLE] = self.idle_j
        out[UNATTRIBUTED] = self.unattributed_j
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "interval_s": self.interval_s,
            "total_j": self.total_j,
            "idle_j": self.idle_j,
            "unattributed_j": self.unattributed_j,
            "cpu_s_total": self.cpu_s_total,
            "quality": self.quality,
            "stages": [{**s.__dict__, "j_per_request": s.j_per_request} for s in self.stages.values()],
            "notes": list(self.notes),
        }


def _check(value: float, what: str) -> float:
    v = float(value)
    if not math.isfinite(v) or v < 0:
        raise InputError(f"must be a finite number >= 0, got {value!r}", where=what)
    return v


def attribute(total_j: float, interval_s: float, stage_cpu_s: Mapping[str, float], *,
              idle_power_w: float = 0.0, total_cpu_s: float | None = None,
              requests: Mapping[str, int] | None = None, quality: str = "measured") -> Attribution:
    """Split ``total_j`` measured over ``interval_s`` seconds among stages by CPU-time share.

    - idle energy is ``idle_power_w × interval_s`` (at most ``total_j``);
    - each stage gets ``(total_j - idle) × stage_cpu_s / total_cpu_s``;
    - ``unattributed`` is the rest: active energy of CPU time no stage used.

    ``total_cpu_s`` is the machine's busy CPU seconds in the interval; without
    it the stages are taken to be everything that ran. When the stages add up
    to more than ``total_cpu_s`` (readings taken at slightly different
    moments), their sum is used instead and a note says so.
    """
    total = _check(total_j, "total_j")
    span = _check(interval_s, "interval_s")
    idle_w = _check(idle_power_w, "idle_power_w")
    cpu = {name: _check(v, f"stage_cpu_s.{name}") for name, v in stage_cpu_s.items()}
    notes: list[str] = []
    idle = idle_w * span
    if idle > total:
        notes.append(f"idle power × interval ({idle:.6g} J) exceeds the measured total; idle capped at the total")
        idle = total
    active = total - idle
    stage_sum = sum(cpu.values())
    denom = stage_sum if total_cpu_s is None else _check(total_cpu_s, "total_cpu_s")
    if stage_sum > denom * (1 + 1e-9):
        notes.append(f"stages used {stage_sum:.6g} CPU s but the machine reported {denom:.6g} s; "
                     "shares are taken over the stages' sum")
        denom = stage_sum
    stages: dict[str, StageEnergy] = {}
    for name, c in cpu.items():
        share = c / denom if denom > 0 else 0.0
        e = active * share
        n = None if requests is None else requests.get(name)
        if n is not None and (not isinstance(n, int) or n < 0):
            raise InputError(f"must be a whole number >= 0, got {n!r}", where=f"requests.{name}")
        stages[name] = StageEnergy(name, c, share, e, n)
    unattributed = total - idle - sum(s.energy_j for s in stages.values())
    if abs(unattributed) < 1e-12 * max(1.0, total):
        unattributed = 0.0
    if denom == 0 and active > 0:
        notes.append("no CPU time was recorded: all active energy is unattributed")
    return Attribution(span, total, idle, stages, unattributed, denom, quality, tuple(notes))


CpuCounter = Callable[[], float]
"""A callable returning a stage's cumulative CPU seconds."""


def cgroup_counter(cgroup_dir: str | Path) -> CpuCounter:
    """A stage's CPU time from its cgroup v2 directory (``cpu.stat`` ``usage_usec``)."""
    return lambda: cgroup_cpu_s(cgroup_dir)


def process_tree_counter(pid: int, proc: str | Path = "/proc") -> CpuCounter:
    """A stage's CPU time from a process and its descendants."""
    return lambda: process_tree_cpu_s(pid, proc)


class StageAttributor:
    """Per-interval, per-stage energy for an adapter loop: call :meth:`step` once per interval.

    ``stages`` maps a stage name to a :data:`CpuCounter` (see
    :func:`cgroup_counter`, :func:`process_tree_counter`). The attributed
    energy is the sum of the meter's CPU root domains (GPU energy is not split
    by CPU time). ``idle_power_w`` defaults to the lowest interval power seen
    so far, as Kepler does without an idle measurement.
    """

    def __init__(self, meter: Meter, stages: Mapping[str, CpuCounter], *,
                 idle_power_w: float | None = None, domains: Sequence[str] | None = None,
                 system_cpu_s: Callable[[], float] | None = None) -> None:
        self.meter = meter
        self.stages = dict(stages)
        self.idle_power_w = idle_power_w
        self.min_power_w: float | None = None
        roots = [d for d in root_domains(meter.domains()) if d.kind in CPU_KINDS]
        self.domains = list(domains) if domains is not None else [d.id for d in roots]
        if not self.domains:
            raise InputError("the meter has no CPU domain to attribute")
        self._system = system_cpu_s or (lambda: system_cpu().busy_s)
        self._snap: Snapshot = meter.snapshot()
        self._cpu = {name: self._read(name) for name in self.stages}
        self._sys = self._system()

    def _read(self, name: str) -> float | None:
        try:
            return float(self.stages[name]())
        except (InputError, OSError, ProcessLookupError):
            return None

    def step(self, requests: Mapping[str, int] | None = None) -> Attribution:
        """The attribution of the interval since the previous step (or construction)."""
        snap = self.meter.snapshot()
        m = self.meter.between("attribution", self._snap, snap)
        self._snap = snap
        notes: list[str] = []
        cpu: dict[str, float] = {}
        for name in self.stages:
            now = self._read(name)
            before = self._cpu.get(name)
            if now is None:
                notes.append(f"stage {name!r}: CPU time unreadable this interval; its energy is unattributed")
                cpu[name] = 0.0
            elif before is None or now < before:
                notes.append(f"stage {name!r}: CPU counter (re)started this interval; its energy is unattributed")
                cpu[name] = 0.0
            else:
                cpu[name] = now - before
            self._cpu[name] = now
        sys_now = self._system()
        sys_cpu = max(0.0, sys_now - self._sys)
        self._sys = sys_now
        total = sum(m.energy_j.get(d, 0.0) for d in self.domains)
        span = m.duration_s
        for d in self.domains:
            if d in m.gap_s:
                notes.append(f"domain {d!r} has a {m.gap_s[d]:.3g} s gap: the total is a lower bound")
        if self.idle_power_w is not None:
            idle_w = self.idle_power_w
        else:
            if span > 0:
                p = total / span
                self.min_power_w = p if self.min_power_w is None else min(self.min_power_w, p)
            idle_w = self.min_power_w or 0.0
        a = attribute(total, span if span > 0 else 1e-9, cpu, idle_power_w=idle_w,
                      total_cpu_s=sys_cpu, requests=requests, quality=m.quality)
        if notes:
            a = Attribution(a.interval_s, a.total_j, a.idle_j, a.stages, a.unattributed_j, a.cpu_s_total,
                            a.quality, a.notes + tuple(notes))
        return a
