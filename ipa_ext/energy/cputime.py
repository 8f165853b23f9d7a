"""CPU time in seconds: the whole system (``/proc/stat``), a process tree (``/proc/<pid>/stat``), a launched command's tree, or a cgroup v2 (``cpu.stat``).

The estimate source multiplies it by watts per CPU; attribution splits a
shared CPU's energy by it. Every reader takes its root (``/proc``, the
cgroup directory) as a parameter so tests can point it at files they write.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..units import MICROSECONDS_PER_S

CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


@dataclass(frozen=True)
class SystemCpu:
    """Cumulative CPU seconds over all CPUs since boot, and how many CPUs there are."""

    busy_s: float
    idle_s: float
    cpus: int


def system_cpu(proc: str | Path = "/proc") -> SystemCpu:
    """Busy (user+nice+system+irq+softirq) and idle (idle+iowait) seconds from ``/proc/stat``.

    Steal time is neither: it is time the hypervisor gave to someone else.
    """
    path = Path(proc) / "stat"
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    busy = idle = None
    cpus = 0
    for line in text.splitlines():
        if line.startswith("cpu "):
            f = line.split()[1:]
            try:
                v = [int(x) for x in f[:8]] + [0] * max(0, 8 - len(f))
            except ValueError:
                raise InputError("the 'cpu' line is not numbers", path=path, where="cpu") from None
            user, nice, system, idl, iowait, irq, softirq, _steal = v[:8]
            busy = (user + nice + system + irq + softirq) / CLK_TCK
            idle = (idl + iowait) / CLK_TCK
        elif line.startswith("cpu") and line[3:4].isdigit():
            cpus += 1
    if busy is None or idle is None:
        raise InputError("no aggregate 'cpu' line", path=path, where="cpu")
    return SystemCpu(busy, idle, max(cpus, 1))


def _stat_fields(text: str) -> list[str]:
    # the command name is in parentheses and may contain spaces or parentheses
    return text[text.rindex(")") + 2:].split()


def process_tree_cpu_s(pid: int, proc: str | Path = "/proc") -> float:
    """CPU seconds of ``pid`` and all its descendants, including children they have reaped.

    Sums utime+stime+cutime+cstime over the live tree: a process that exited
    and was waited for counts in its parent's cutime/cstime, so it is counted
    once. Raises :class:`ProcessLookupError` when ``pid`` does not exist.
    """
    root = Path(proc)
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    for entry in os.scandir(root):
        if not entry.name.isdigit():
            continue
        try:
            with open(os.path.join(entry.path, "stat")) as fh:
                f = _stat_fields(fh.read())
        except (OSError, ValueError):
            continue  # exited while we looked
        try:
            p = int(entry.name)
            parents[p] = int(f[1])
            times[p] = sum(int(x) for x in f[11:15]) / CLK_TCK
        except (IndexError, ValueError):
            continue
    if pid not in times:
        raise ProcessLookupError(pid)
    children: dict[int, list[int]] = {}
    for p, pp in parents.items():
        children.setdefault(pp, []).append(p)
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        total += times.get(p, 0.0)
        stack.extend(children.get(p, ()))
    return total


class CommandCpu:
    """Cumulative CPU seconds of a command this process launches: its process tree, exited children included.

    Call it as a counter: 0 before :meth:`started`; then the live tree from
    ``/proc`` (children that exited and were waited for are in their parent's
    cutime/cstime; exited ones not yet waited for still show their times);
    after :meth:`finished`, the child's ``wait4`` rusage, which holds the
    child and every descendant waited for in the tree. Never goes down.
    Descendants that outlive the command or were never waited for (daemons)
    are not counted after they leave the tree, as with ``time``.
    """

    def __init__(self, proc: str | Path = "/proc") -> None:
        self.proc = proc
        self.pid: int | None = None
        self._final: float | None = None
        self._max = 0.0

    def started(self, pid: int) -> None:
        self.pid = int(pid)

    def finished(self, rusage: os.struct_rusage | None) -> None:
        """The command was waited for; ``rusage`` is what ``os.wait4`` returned for it."""
        self._final = (rusage.ru_utime + rusage.ru_stime) if rusage is not None else self._max

    def __call__(self) -> float:
        if self._final is not None:
            self._max = max(self._max, self._final)
        elif self.pid is not None:
            try:
                self._max = max(self._max, process_tree_cpu_s(self.pid, self.proc))
            except (ProcessLookupError, OSError):
                pass  # between its exit and our wait: keep the last value
        return self._max


def cgroup_cpu_s(cgroup_dir: str | Path) -> float:
    """``usage_usec`` of a cgroup v2 ``cpu.stat``, in seconds (covers every process the cgroup ever held)."""
    path = Path(cgroup_dir) / "cpu.stat"
    try:
        text = path.read_text()
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "usage_usec":
            try:
                return int(parts[1]) / MICROSECONDS_PER_S
            except ValueError:
                raise InputError(f"not an integer: {parts[1]!r}", path=path, where="usage_usec") from None
    raise InputError("no usage_usec line (is this a cgroup v2 cpu.stat?)", path=path, where="usage_usec")
