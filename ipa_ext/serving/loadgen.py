"""The load generator: replays a per-second request series in real time against the router's front door.

Within each second, requests are spread ``poisson`` (sorted uniform offsets: a Poisson process given
the second's count), ``uniform`` (offsets k/n, IPA's ``equal``) or ``step`` (all at the start). Counts
are scaled by ``rate_scale`` with the remainder carried over, so the total is kept. The loop is
bounded: it ends at the series' end, at ``duration_s`` or when stopped; a request that gets no answer
within ``timeout_s`` counts as dropped.
"""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass, field
from typing import Awaitable, Callable, Sequence

import numpy as np

SPREADS = ("poisson", "uniform", "step")


@dataclass
class LoadStats:
    """What the client saw."""

    sent: int = 0
    ok: int = 0
    rejected: int = 0
    """Answered with an error status (dropped or failed by the router)."""
    timeouts: int = 0
    errors: int = 0
    """No answer: the connection failed."""
    latencies_s: list[float] = field(default_factory=list)
    finished: bool = False


def scaled_counts(rates: Sequence[float], rate_scale: float) -> list[int]:
    """Whole requests per second for ``rates × rate_scale``, the fractions carried into later seconds."""
    out, carried = [], 0.0
    for r in rates:
        want = float(r) * rate_scale + carried
        n = int(math.floor(want + 1e-9))
        carried = want - n
        out.append(max(n, 0))
    return out


def offsets(n: int, spread: str, rng: np.random.Generator) -> np.ndarray:
    """Send offsets within a second for ``n`` requests."""
    if n <= 0:
        return np.zeros(0)
    if spread == "poisson":
        return np.sort(rng.uniform(0.0, 1.0, n))
    if spread == "uniform":
        return np.arange(n) / n
    if spread == "step":
        return np.zeros(n)
    raise ValueError(f"unknown spread {spread!r} (known: {', '.join(SPREADS)})")


async def replay(counts: Sequence[int], send: Callable[[], Awaitable[bool]], *, spread: str = "poisson",
                 seed: int = 0, duration_s: float | None = None, timeout_s: float = 60.0,
                 stop: asyncio.Event | None = None, stats: LoadStats | None = None,
                 max_in_flight: int = 10_000, t0: float | None = None) -> LoadStats:
    """Send ``counts[i]`` requests in second ``i`` (real time from ``t0``, a ``time.monotonic()`` reading,
    default now: give the receiver's so both count the same seconds); ``send()`` returns True on success."""
    stats = stats if stats is not None else LoadStats()
    rng = np.random.default_rng(seed)
    tasks: set[asyncio.Task] = set()
    slots = asyncio.Semaphore(max_in_flight)
    t0 = time.monotonic() if t0 is None else t0
    seconds = len(counts) if duration_s is None else min(len(counts), int(math.ceil(duration_s)))

    async def one() -> None:
        start = time.monotonic()
        try:
            ok = await asyncio.wait_for(send(), timeout_s)
        except asyncio.TimeoutError:
            stats.timeouts += 1
            return
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            stats.errors += 1
            return
        finally:
            slots.release()
        if ok:
            stats.ok += 1
            stats.latencies_s.append(time.monotonic() - start)
        else:
            stats.rejected += 1

    for i in range(seconds):
        for off in offsets(counts[i], spread, rng):
            at = t0 + i + float(off)
            if duration_s is not None and at - t0 >= duration_s:
                break
            delay = at - time.monotonic()
            if delay > 0:
                if stop is not None:
                    try:
                        await asyncio.wait_for(stop.wait(), delay)
                    except asyncio.TimeoutError:
                        pass
                else:
                    await asyncio.sleep(delay)
            if stop is not None and stop.is_set():
                break
            await slots.acquire()
            stats.sent += 1
            task = asyncio.get_running_loop().create_task(one())
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if stop is not None and stop.is_set():
            break
    if tasks:
        await asyncio.wait(set(tasks))
    stats.finished = True
    return stats
