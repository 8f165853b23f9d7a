"""Facts about the host that energy sources need: whether it is a virtual machine, and its CPU model.

Read from ``/proc/cpuinfo`` (a parameter, so tests can pass their own) when a
source probes or reads, never at import time.
"""

from __future__ import annotations

from pathlib import Path


def is_virtual_machine(cpuinfo: str | Path = "/proc/cpuinfo") -> bool:
    """True when the CPU flags include ``hypervisor`` (a guest of a hypervisor)."""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        return False
    return any(line.startswith("flags") and " hypervisor" in line for line in text.splitlines())


def cpu_model_name(cpuinfo: str | Path = "/proc/cpuinfo") -> str | None:
    """The first ``model name`` in ``/proc/cpuinfo``, or None."""
    try:
        for line in Path(cpuinfo).read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        return None
    return None
