"""Facts about the machine the tests run on, read without ipa-ext, from which energy tests derive what it must report.

Machines of this project's kind differ: some have a ``power`` PMU whose
``energy-psys`` counts 0 J, others have none at all (only ``power:*``
tracepoints). A test reads the facts here (sysfs, ``/proc``, and what the real
``perf`` prints) and asserts the one status ipa-ext must give for them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ipa_ext.energy import Status

PMU_ROOT = Path("/sys/bus/event_source/devices")
NOBODY = ("setpriv", "--reuid=65534", "--regid=65534", "--clear-groups")
"""As root: run perf as nobody, with no capabilities (they go when every uid becomes non-zero)."""
CAP_SYS_ADMIN, CAP_PERFMON = 21, 38
DENIED = ("Access to performance monitoring", "Permission denied", "No permission", "not permitted")


@dataclass(frozen=True)
class PerfRun:
    """What ``perf stat -a -x, -e EVENTS sleep 0.1`` printed for one user."""

    returncode: int | None
    """None: perf could not be started."""
    stderr: str
    counts: dict[str, float | None] = field(default_factory=dict)
    """Per event as perf printed it (``power/energy-psys/u`` for user-only counting): joules, or None
    for ``<not supported>`` / ``<not counted>``."""

    @property
    def reason_lines(self) -> list[str]:
        """perf's stderr lines, without its ``\\___`` pointer."""
        return [line.strip().lstrip("\\_ ") for line in self.stderr.splitlines() if line.strip()]


@dataclass(frozen=True)
class PerfHost:
    """The facts that decide what the perf source must report, for one user."""

    perf: tuple[str, ...]
    """perf's command for that user (a ``setpriv`` prefix to run as nobody)."""
    installed: bool
    power_pmu: bool
    """``/sys/bus/event_source/devices/power`` exists (not only ``power:*`` tracepoints)."""
    pmu_events: tuple[str, ...]
    """Every event the power PMU lists (no ``.scale``/``.unit`` files)."""
    vm: bool
    paranoid: int | None
    privileged: bool
    """May count system-wide: root, CAP_PERFMON or CAP_SYS_ADMIN, or perf_event_paranoid <= 0."""

    @property
    def energy_events(self) -> tuple[str, ...]:
        return tuple(e for e in self.pmu_events if e.startswith("energy-"))

    def run(self, events: Sequence[str]) -> PerfRun:
        """Run the real perf over ``events`` for 0.1 s, as this user, and keep what it printed."""
        argv = [*self.perf, "stat", "-a", "-x,", "-e", ",".join(events), "sleep", "0.1"]
        try:
            out = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={**os.environ, "LC_ALL": "C"})
        except OSError as exc:
            return PerfRun(None, str(exc))
        counts: dict[str, float | None] = {}
        for line in out.stderr.splitlines():
            f = line.split(",")
            if len(f) >= 3 and "/" in f[2]:  # value,unit,event,...
                counts[f[2]] = None if f[0].startswith("<") else float(f[0])
        return PerfRun(out.returncode, out.stderr, counts)

    def expected(self, run: PerfRun) -> Status:
        """The status perf's output on this host implies for an explicit event list."""
        if not self.installed or run.returncode is None:
            return Status.ABSENT
        counted = [v for v in run.counts.values() if v is not None]
        if run.returncode != 0 and not counted:
            return Status.PERMISSION if any(k in run.stderr for k in DENIED) else Status.ABSENT
        if not run.counts:
            return Status.ABSENT
        if counted:
            return Status.AVAILABLE if any(v > 0 for v in counted) else Status.VIRTUALISED
        user_only = any(e.endswith("/u") or e.endswith(":u") for e in run.counts)
        return Status.PERMISSION if user_only or not self.privileged else Status.ABSENT

    def expected_default(self) -> Status:
        """The status of the perf source with its default events (every energy event the PMU offers)."""
        if not self.installed:
            return Status.ABSENT
        if not self.energy_events:
            return Status.VIRTUALISED if self.vm else Status.ABSENT
        return self.expected(self.run([f"power/{e}/" for e in self.energy_events]))


def paranoid() -> int | None:
    try:
        return int(Path("/proc/sys/kernel/perf_event_paranoid").read_text())
    except (OSError, ValueError):
        return None


def _capabilities() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return int(line.split()[1], 16)
    return 0


def is_vm() -> bool:
    text = Path("/proc/cpuinfo").read_text(errors="replace")
    return any(line.startswith("flags") and "hypervisor" in line.split() for line in text.splitlines())


def perf_host(as_nobody: bool = False) -> PerfHost:
    """The facts for this user, or for nobody (as root through setpriv; otherwise this user already is one)."""
    events_dir = PMU_ROOT / "power" / "events"
    names = tuple(sorted(p.name for p in events_dir.iterdir() if "." not in p.name)) if events_dir.is_dir() else ()
    level = paranoid()
    drop = as_nobody and os.geteuid() == 0
    caps = 0 if drop else _capabilities()
    root = os.geteuid() == 0 and not drop
    privileged = root or bool(caps & (1 << CAP_PERFMON | 1 << CAP_SYS_ADMIN)) or (level is not None and level <= 0)
    return PerfHost(perf=(*NOBODY, "perf") if drop else ("perf",), installed=shutil.which("perf") is not None,
                    power_pmu=(PMU_ROOT / "power").is_dir(), pmu_events=names, vm=is_vm(), paranoid=level,
                    privileged=privileged)
