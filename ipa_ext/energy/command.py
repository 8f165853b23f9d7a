"""Measuring one command (``energy measure``): one run, one result that every output is printed from.

Sources that can (the estimate source) count only the command's process tree,
labelled ``process tree of 'CMD'``; counters count the whole system and say so.
The run's window is the sum of its intervals, so a table, JSON and a CSV of
the same run agree to the last digit.
"""

from __future__ import annotations

import os
import shlex
import subprocess
from dataclasses import dataclass
from typing import Sequence

from .cputime import CommandCpu
from .meter import IntervalSampler, Measurement, Meter, combine


def format_command(cmd: Sequence[str]) -> str:
    """The command as a shell would show it (quoted where needed), on one line."""
    return " ".join(shlex.quote(c) for c in cmd).replace("\n", "\\n")


def tree_label(cmd: Sequence[str]) -> str:
    """The scope label of a command's process tree: ``process tree of 'sleep 1'``."""
    return f"process tree of '{format_command(cmd)}'"


@dataclass(frozen=True)
class Excluded:
    """Power a source's scope leaves out of a run's joules (the machine's idle floor of a tree estimate)."""

    domain: str
    source: str
    power_w: float
    quality: str


@dataclass(frozen=True)
class CommandEnergy:
    """One measured run of a command: its exit status, the whole window and its intervals."""

    returncode: int
    """As :attr:`subprocess.Popen.returncode`: negative for a signal."""
    total: Measurement
    """The whole run; its joules are exactly the sum of :attr:`intervals`' joules."""
    intervals: tuple[Measurement, ...]
    """Consecutive intervals (one when no interval was asked for)."""
    sampled: bool
    """Intervals were asked for (a power time series)."""
    cpu_s: float | None
    """CPU seconds of the command's process tree (``wait4``), when a source attributes to it."""
    excluded: tuple[Excluded, ...]
    """What the sources' scopes leave out; never part of :attr:`total`."""

    def excluded_j(self, part: Excluded) -> float:
        """Joules of an excluded part over the run (its power × the run's duration)."""
        return part.power_w * self.total.duration_s

    @property
    def exit_code(self) -> int:
        """The exit code a shell would give: 128 + N for a command killed by signal N."""
        return 128 - self.returncode if self.returncode < 0 else self.returncode


def measure_command(meter: Meter, cmd: Sequence[str], interval_s: float | None = None,
                    process_tree: bool = True) -> CommandEnergy:
    """Run ``cmd`` (an argument list, no shell) and measure it with ``meter``.

    ``process_tree``: sources that can attribute to a process tree count only
    the command's (children included). Raises :class:`OSError` when the command
    cannot be started (nothing is measured then).
    """
    cpu = CommandCpu()
    attributed = process_tree and any([s.attribute_to(cpu, tree_label(cmd)) for s in meter.sources])
    excluded = tuple(Excluded(k, s.name, float(w), s.quality)
                     for s in meter.sources for k, w in s.excluded_power_w().items())
    first = meter.snapshot()  # starts pollers and child processes before the command starts
    sampler = IntervalSampler(meter, interval_s).start() if interval_s else None
    try:
        proc = subprocess.Popen(list(cmd))
    except OSError:
        if sampler is not None:
            sampler.stop(final=False)
        raise
    cpu.started(proc.pid)
    cpu.finished(_wait(proc))
    if sampler is not None:
        intervals = sampler.stop(final=True, settle=True)
    else:
        intervals = [meter.between("command", first, meter.settled_snapshot())]
    total = combine("command", intervals)
    return CommandEnergy(proc.returncode, total, tuple(intervals), sampler is not None,
                         cpu() if attributed else None, excluded)


def _wait(proc: subprocess.Popen) -> os.struct_rusage | None:
    """Wait for the command and return its rusage (it and the descendants it waited for)."""
    while True:
        try:
            _, status, rusage = os.wait4(proc.pid, 0)
            break
        except KeyboardInterrupt:  # the terminal sent SIGINT to the command too; wait for it
            continue
        except ChildProcessError:  # someone else reaped it
            proc.wait()
            return None
    proc.returncode = os.waitstatus_to_exitcode(status)
    return rusage
