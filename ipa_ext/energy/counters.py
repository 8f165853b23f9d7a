"""Turning a raw hardware energy counter into cumulative, monotone joules with honest gaps.

:class:`Counter` unwraps a counter that wraps at a known range (RAPL's
``max_energy_range_uj``), tells a wrap from a counter that went backwards
without wrapping by the power the wrap would imply, and accounts every stretch
of time it cannot vouch for (unreadable file, backwards jump, an interval long
enough to hide a wrap) as gap seconds instead of guessing.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_MAX_POWER_W = 1000.0
"""A ceiling no single CPU/DRAM/GPU energy domain reaches; used to tell wraps from resets."""

SLACK_S = 0.05
"""Timing slack when checking a wrap's implied power (counters update every ~1 ms)."""


@dataclass(frozen=True)
class CounterState:
    """A snapshot of a :class:`Counter`."""

    total_j: float
    gap_s: float
    wraps: int
    problem: str | None


class Counter:
    """Cumulative joules of one domain from successive raw counter values.

    ``range_j`` is the value at which the raw counter wraps to zero (``None``:
    it never wraps, e.g. NVML's 64-bit millijoule counter). ``max_power_w`` is
    the most the domain can draw; a wrap implying more power than that is
    treated as the counter going backwards, and a read interval of at least
    ``range_j / max_power_w`` (the wrap time) is a gap because the number of
    wraps in it is unknown. Not thread-safe: the owning source serialises calls.
    """

    def __init__(self, start_s: float, range_j: float | None = None,
                 max_power_w: float = DEFAULT_MAX_POWER_W) -> None:
        if range_j is not None and range_j <= 0:
            range_j = None
        self.range_j = range_j
        self.max_power_w = float(max_power_w)
        self.total_j = 0.0
        self.gap_s = 0.0
        self.wraps = 0
        self.problem: str | None = None
        """Why the last update was not counted (None when it was)."""
        self._last_raw: float | None = None
        self._last_s = start_s
        self._broken = True  # nothing vouched for until the first good read
        self._failed = False  # a read failed or was rejected since the last good one

    @property
    def wrap_time_s(self) -> float | None:
        """Shortest time in which the raw counter can wrap (None when it never wraps)."""
        if self.range_j is None or self.max_power_w <= 0:
            return None
        return self.range_j / self.max_power_w

    def gap_until(self, now_s: float) -> float:
        """Gap seconds so far, counting an outage that is still going on at ``now_s``."""
        if self._broken and self._failed:
            return self.gap_s + max(0.0, now_s - self._last_s)
        return self.gap_s

    def missing(self, now_s: float, why: str) -> None:
        """The counter could not be read at ``now_s``; the time since the last good read is a gap."""
        self._broken = True
        self._failed = True
        self.problem = why

    def update(self, raw_j: float, now_s: float) -> str | None:
        """Feed a raw value read at ``now_s``; returns why it was not counted, or None."""
        elapsed = now_s - self._last_s
        if self.range_j is not None and not (0.0 <= raw_j <= self.range_j):
            self._broken = True
            self._failed = True
            self.problem = f"raw value {raw_j:.6f} J outside 0..{self.range_j:.6f} J"
            return self.problem
        if self._broken:
            # first good read, or back after an outage: the time since the last
            # good read (or since the start, if reads failed) is not vouched for
            if self._failed:
                self.gap_s += max(0.0, elapsed)
            return self._rebase(raw_j, now_s, None)
        problem: str | None = None
        wrap_time = self.wrap_time_s
        if raw_j >= self._last_raw:
            delta = raw_j - self._last_raw
            if wrap_time is not None and elapsed >= wrap_time:
                problem = (f"{elapsed:.3g} s between reads is at least the wrap time "
                           f"{wrap_time:.3g} s; wraps in between cannot be counted")
        elif self.range_j is None:
            problem = f"counter went backwards ({self._last_raw:.6f} -> {raw_j:.6f} J)"
        else:
            delta = self.range_j - self._last_raw + raw_j
            if delta > self.max_power_w * (max(elapsed, 0.0) + SLACK_S):
                problem = (f"counter went backwards without wrapping ({self._last_raw:.6f} -> "
                           f"{raw_j:.6f} J; a wrap would mean {delta / max(elapsed, 1e-9):.3g} W)")
            elif wrap_time is not None and elapsed >= wrap_time:
                problem = (f"{elapsed:.3g} s between reads is at least the wrap time "
                           f"{wrap_time:.3g} s; wraps in between cannot be counted")
            else:
                self.wraps += 1
        if problem is not None:
            self.gap_s += max(0.0, elapsed)
            return self._rebase(raw_j, now_s, problem)
        self.total_j += delta
        return self._rebase(raw_j, now_s, None)

    def _rebase(self, raw_j: float, now_s: float, problem: str | None) -> str | None:
        self._last_raw = raw_j
        self._last_s = now_s
        self._broken = False
        self._failed = False
        self.problem = problem
        return problem

    def state(self, now_s: float) -> CounterState:
        return CounterState(self.total_j, self.gap_until(now_s), self.wraps, self.problem)
