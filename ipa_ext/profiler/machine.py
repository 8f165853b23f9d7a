"""A description of the host a profile is measured on (CPU model, cores, memory), and its identity for resuming."""

from __future__ import annotations

import hashlib
import json
import os
import platform
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from ..energy.hostinfo import cpu_model_name, is_virtual_machine


@dataclass(frozen=True)
class Machine:
    """What a measured profile depends on besides the model: the host and the runtime."""

    hostname: str
    cpu_model: str
    logical_cpus: int
    physical_cores: int
    usable_cpus: tuple[int, ...]
    """The CPUs this process may run on (``sched_getaffinity``): the ones workers are pinned to."""
    memory_bytes: int
    kernel: str
    arch: str
    virtual: bool

    def describe(self) -> str:
        """One line: ``host h, Intel(R) Xeon(R) ..., 2 logical CPUs (2 cores), 23.6 GiB memory, Linux 6.1, x86_64, VM``."""
        usable = "" if len(self.usable_cpus) == self.logical_cpus else f", {len(self.usable_cpus)} usable"
        return (f"host {self.hostname}, {self.cpu_model}, {self.logical_cpus} logical CPUs "
                f"({self.physical_cores} cores){usable}, {self.memory_bytes / 2**30:.1f} GiB memory, "
                f"Linux {self.kernel}, {self.arch}" + (", virtual machine" if self.virtual else ""))

    @property
    def identity(self) -> str:
        """A short hash of the host's name, CPU model, CPU count and memory: equal on the same machine."""
        key = {"host": self.hostname, "cpu": self.cpu_model, "cpus": self.logical_cpus,
               "memory_mib": self.memory_bytes // 2**20}
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "usable_cpus": list(self.usable_cpus), "identity": self.identity}


def _physical_cores(cpuinfo: Path) -> int | None:
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return None
    cores: set[tuple[str, str]] = set()
    phys = core = None
    for line in text.splitlines() + [""]:
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            phys = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip() and core is not None:
            cores.add((phys or "0", core))
            phys = core = None
    return len(cores) or None


def _memory_bytes(meminfo: Path) -> int:
    try:
        for line in meminfo.read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def describe_machine(proc: str | Path = "/proc") -> Machine:
    """The host as ``/proc`` and the kernel describe it (read now, never at import time)."""
    root = Path(proc)
    logical = os.cpu_count() or 1
    usable = tuple(sorted(os.sched_getaffinity(0))) if hasattr(os, "sched_getaffinity") else tuple(range(logical))
    return Machine(socket.gethostname(), cpu_model_name(root / "cpuinfo") or platform.processor() or "unknown CPU",
                   logical, _physical_cores(root / "cpuinfo") or logical, usable, _memory_bytes(root / "meminfo"),
                   platform.release(), platform.machine(), is_virtual_machine(root / "cpuinfo"))
