"""Where the ``ipa-ext`` process itself runs (the router, the load generator and the loop: the driver): pinned
to a core of its own when the machine has one to spare, so the replicas keep theirs; otherwise it shares."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

PIN_MODES = ("auto", "true", "false")


@dataclass(frozen=True)
class DriverPlacement:
    """The driver's cores (empty: not pinned) and why."""

    cores: tuple[int, ...]
    reason: str

    @property
    def pinned(self) -> bool:
        return bool(self.cores)


def place_driver(usable: Sequence[int], replica_cores: int, mode: str = "auto") -> DriverPlacement:
    """One core for the driver (the highest) when ``mode`` is true, or auto and the replicas' ``replica_cores``
    leave one free; otherwise none, and the reason."""
    usable = sorted(usable)
    if mode == "false":
        return DriverPlacement((), "pin_driver is false")
    if len(usable) < 2:
        return DriverPlacement((), f"the machine lets ipa-ext use {len(usable)} core")
    if mode == "auto" and replica_cores >= len(usable):
        return DriverPlacement((), f"the replicas take {replica_cores} cores of the {len(usable)} usable, "
                                   "none is spare")
    return DriverPlacement((usable[-1],), "a spare core" if replica_cores < len(usable)
                           else "pin_driver is true (replicas share its core)")


def _threads() -> list[int]:
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def pin_process(cores: Sequence[int]) -> dict[int, set[int]]:
    """Pin every thread of this process to ``cores`` (new threads inherit it); the previous masks."""
    previous = {}
    for tid in _threads():
        try:
            previous[tid] = os.sched_getaffinity(tid)
            os.sched_setaffinity(tid, set(cores))
        except OSError:  # the thread ended meanwhile
            continue
    return previous


def restore_process(previous: dict[int, set[int]], default: set[int]) -> None:
    """Give every thread its mask back (threads started since get ``default``)."""
    for tid in _threads():
        try:
            os.sched_setaffinity(tid, previous.get(tid, default))
        except OSError:
            continue
