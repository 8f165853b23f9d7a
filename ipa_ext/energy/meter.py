"""Energy windows and power time series over one or more energy sources.

``meter.begin(key)`` / ``meter.end(key)`` (or ``with meter.window(key) as w``)
measure any stretch of code; windows may nest and overlap, across threads,
without a meter-wide lock (each source serialises only its own counter reads).
A :class:`Measurement` holds the duration, joules per domain, the quality, the
seconds of any gaps, and a flag when the window is shorter than a source's
resolution. :class:`IntervalSampler` produces a series of measurements at a
fixed interval: a power time series; :func:`combine` joins consecutive
intervals into one window whose joules are exactly the sum of theirs.
"""

from __future__ import annotations

import math
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Mapping, Sequence

from ..errors import ConfigError, IpaExtError
from .source import WHOLE_SYSTEM, Domain, EnergySource, EnergySourceError, Reading, root_domains

CPU_KINDS = frozenset({"package", "core", "uncore", "dram", "psys", "igpu",
                       "cpu-estimate", "cpu-active", "cpu-idle"})
GPU_KINDS = frozenset({"gpu"})


class WindowError(IpaExtError):
    """A window key that is already open, or not open."""


@dataclass(frozen=True)
class Snapshot:
    """One reading of every source of a meter, at wall time ``time_s`` (monotonic)."""

    time_s: float
    readings: tuple[Reading, ...]


@dataclass(frozen=True)
class Measurement:
    """Energy over a window: joules per domain, duration, quality and flags."""

    key: str
    start_s: float
    """Monotonic time the window began."""
    duration_s: float
    """Wall-clock length of the window."""
    energy_j: Mapping[str, float]
    """Joules per domain, nested domains included (do not sum them; see :attr:`total_j`)."""
    domains: tuple[Domain, ...]
    source_of: Mapping[str, str]
    """The source each domain comes from."""
    domain_quality: Mapping[str, str]
    covered_s: Mapping[str, float]
    """Per source: the time between its two readings, which its joules cover."""
    resolution_s: float
    """The coarsest resolution among the sources."""
    gap_s: Mapping[str, float] = field(default_factory=dict)
    """Per domain: seconds inside the window its joules do not cover (a lower bound)."""
    scope_of: Mapping[str, str] = field(default_factory=dict)
    """Per domain: what its joules cover (``whole system`` unless listed)."""

    def scope_of_domain(self, domain: str) -> str:
        return self.scope_of.get(domain, WHOLE_SYSTEM)

    @property
    def scope(self) -> str:
        """``whole system``, one process tree's label, or ``mixed`` when domains differ."""
        scopes = {self.scope_of_domain(d.id) for d in self.domains}
        if len(scopes) == 1:
            return next(iter(scopes))
        return "mixed" if scopes else WHOLE_SYSTEM

    @property
    def quality(self) -> str:
        """``measured``, ``estimated``, or ``mixed`` when sources of both kinds contribute."""
        qs = set(self.domain_quality.values())
        if len(qs) == 1:
            return next(iter(qs))
        return "mixed" if qs else "measured"

    @property
    def below_resolution(self) -> bool:
        """The window is shorter than a source can resolve: its joules are not meaningful."""
        return self.duration_s < self.resolution_s

    @property
    def complete(self) -> bool:
        """No domain has a gap in this window."""
        return not self.gap_s

    @property
    def total_j(self) -> float:
        """Sum over root domains only: overlapping zones are never summed."""
        return math.fsum(self.energy_j.get(d.id, 0.0) for d in root_domains(self.domains))

    def power_w(self, domain: str) -> float:
        """Average power of a domain over the time its joules cover."""
        span = self.covered_s.get(self.source_of.get(domain, ""), 0.0) or self.duration_s
        return self.energy_j.get(domain, 0.0) / span if span > 0 else 0.0

    @property
    def total_power_w(self) -> float:
        return self.total_j / self.duration_s if self.duration_s > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "duration_s": self.duration_s,
            "total_j": self.total_j,
            "quality": self.quality,
            "scope": self.scope,
            "below_resolution": self.below_resolution,
            "resolution_s": self.resolution_s,
            "complete": self.complete,
            "domains": [
                {"id": d.id, "kind": d.kind, "parent": d.parent, "source": self.source_of[d.id],
                 "energy_j": self.energy_j.get(d.id, 0.0), "power_w": self.power_w(d.id),
                 "quality": self.domain_quality[d.id], "gap_s": self.gap_s.get(d.id, 0.0),
                 "scope": self.scope_of_domain(d.id)}
                for d in self.domains
            ],
        }


class WindowResult:
    """What ``with meter.window(key) as w`` yields; ``w.measurement`` is set when the block exits."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.measurement: Measurement | None = None


class Meter:
    """Windows over a set of sources measuring disjoint hardware (e.g. one CPU source and NVML)."""

    def __init__(self, sources: EnergySource | Sequence[EnergySource]) -> None:
        self.sources: list[EnergySource] = [sources] if isinstance(sources, EnergySource) else list(sources)
        if not self.sources:
            raise ConfigError("a meter needs at least one energy source")
        self._domains: list[tuple[EnergySource, list[Domain]]] | None = None
        self._open: dict[str, Snapshot] = {}

    # ------------------------------------------------------------------ domains
    def _check(self) -> list[tuple[EnergySource, list[Domain]]]:
        if self._domains is None:
            pairs = [(s, list(s.domains())) for s in self.sources]
            for src, doms in pairs:
                if not doms:  # an unavailable source measures nothing: say why instead of 0 J
                    res = src.probe()
                    why = f"{res.status.value}: {res.detail}" + (f" (hint: {res.hint})" if res.hint else "")
                    raise EnergySourceError(f"energy source {src.name!r} has no domains to measure; {why}")
            owner: dict[str, str] = {}
            family: dict[str, str] = {}
            for src, doms in pairs:
                for d in doms:
                    if d.id in owner:
                        raise ConfigError(f"energy sources {owner[d.id]!r} and {src.name!r} both report domain {d.id!r}")
                    owner[d.id] = src.name
                fams = {"the CPU" for d in doms if d.kind in CPU_KINDS} | {"the GPUs" for d in doms if d.kind in GPU_KINDS}
                for fam in fams:
                    if fam in family and family[fam] != src.name:
                        raise ConfigError(f"energy sources {family[fam]!r} and {src.name!r} both measure {fam}; "
                                          "their joules would overlap, use one of them")
                    family[fam] = src.name
            self._domains = pairs
        return self._domains

    def domains(self) -> list[Domain]:
        return [d for _, doms in self._check() for d in doms]

    @property
    def resolution_s(self) -> float:
        return max((s.resolution_s for s in self.sources), default=0.0)

    # ------------------------------------------------------------------ readings
    def snapshot(self) -> Snapshot:
        """Read every source now."""
        self._check()
        t = time.monotonic()
        return Snapshot(t, tuple(s.read() for s in self.sources))

    def settled_snapshot(self, after_s: float | None = None, timeout_s: float | None = None) -> Snapshot:
        """A snapshot whose readings all cover time up to ``after_s`` (default: now).

        Sources that report at intervals (perf) lag by up to one interval; this
        waits for their next interval (at most ``timeout_s``, default two of
        the coarsest resolution plus half a second).
        """
        after = time.monotonic() if after_s is None else after_s
        res = self.resolution_s
        deadline = time.monotonic() + (timeout_s if timeout_s is not None else 2 * res + 0.5)
        snap = self.snapshot()
        while any(r.timestamp_s < after for r in snap.readings) and time.monotonic() < deadline:
            time.sleep(max(res / 4.0, 0.001))
            snap = self.snapshot()
        return snap

    def between(self, key: str, a: Snapshot, b: Snapshot) -> Measurement:
        """The measurement from snapshot ``a`` to snapshot ``b``."""
        energy: dict[str, float] = {}
        gaps: dict[str, float] = {}
        source_of: dict[str, str] = {}
        quality: dict[str, str] = {}
        covered: dict[str, float] = {}
        scope: dict[str, str] = {}
        all_domains: list[Domain] = []
        for (src, doms), ra, rb in zip(self._check(), a.readings, b.readings):
            covered[src.name] = max(0.0, rb.timestamp_s - ra.timestamp_s)
            for d in doms:
                all_domains.append(d)
                source_of[d.id] = src.name
                scope[d.id] = src.scope
                quality[d.id] = rb.quality
                ja, jb = ra.joules.get(d.id), rb.joules.get(d.id)
                if ja is None or jb is None:
                    energy[d.id] = 0.0
                    gaps[d.id] = covered[src.name]
                    continue
                energy[d.id] = max(0.0, jb - ja)
                g = rb.gap_s.get(d.id, 0.0) - ra.gap_s.get(d.id, 0.0)
                if g > 0 or d.id in rb.gaps:
                    gaps[d.id] = max(g, 0.0)
        return Measurement(key, a.time_s, max(0.0, b.time_s - a.time_s), energy, tuple(all_domains),
                           source_of, quality, covered, self.resolution_s, gaps, scope)

    # ------------------------------------------------------------------ windows
    def begin(self, key: str) -> None:
        """Open a window. Keys are unique among open windows."""
        snap = self.snapshot()
        if self._open.setdefault(key, snap) is not snap:
            raise WindowError(f"energy window {key!r} is already open")

    def end(self, key: str, settle: bool = False) -> Measurement:
        """Close a window and return its measurement (``settle``: wait for interval sources)."""
        end_s = time.monotonic()
        snap = self.settled_snapshot(end_s) if settle else self.snapshot()
        try:
            start = self._open.pop(key)
        except KeyError:
            raise WindowError(f"energy window {key!r} is not open") from None
        return self.between(key, start, snap)

    def cancel(self, key: str) -> None:
        """Drop an open window without measuring it."""
        self._open.pop(key, None)

    @contextmanager
    def window(self, key: str) -> Iterator[WindowResult]:
        result = WindowResult(key)
        self.begin(key)
        try:
            yield result
        except BaseException:
            self.cancel(key)
            raise
        result.measurement = self.end(key)

    def close(self) -> None:
        for s in self.sources:
            s.close()


class IntervalSampler:
    """Measurements of consecutive fixed intervals from a background thread: a power time series.

    ``on_interval(measurement)`` is called for each interval (from the
    sampler's thread). Intervals are aligned to the start, so they do not drift.
    """

    def __init__(self, meter: Meter, interval_s: float,
                 on_interval: Callable[[Measurement], None] | None = None) -> None:
        if interval_s <= 0:
            raise ConfigError("the sampling interval must be positive")
        self.meter = meter
        self.interval_s = float(interval_s)
        self.on_interval = on_interval
        self.intervals: list[Measurement] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: Snapshot | None = None
        self._lock = threading.Lock()
        self.start_s: float | None = None

    def start(self) -> "IntervalSampler":
        self._last = self.meter.snapshot()
        self.start_s = self._last.time_s
        self._thread = threading.Thread(target=self._loop, name="ipa-ext-interval-sampler", daemon=True)
        self._thread.start()
        return self

    def _take(self, snap: Snapshot | None = None) -> None:
        snap = snap if snap is not None else self.meter.snapshot()
        with self._lock:
            assert self._last is not None
            m = self.meter.between(f"interval-{len(self.intervals)}", self._last, snap)
            self._last = snap
            self.intervals.append(m)
        if self.on_interval is not None:
            self.on_interval(m)

    def _loop(self) -> None:
        assert self.start_s is not None
        k = 1
        while not self._stop.wait(max(0.0, self.start_s + k * self.interval_s - time.monotonic())):
            try:
                self._take()
            except Exception as exc:  # keep sampling; the caller sees the errors
                self.errors.append(f"{type(exc).__name__}: {exc}")
            k += 1
            # skip deadlines already missed (a slow read) rather than bunching samples
            k = max(k, int((time.monotonic() - self.start_s) / self.interval_s) + 1)

    def stop(self, final: bool = True, settle: bool = False) -> list[Measurement]:
        """Stop sampling; with ``final``, measure the last partial interval too.

        ``settle``: the last interval's end reading waits until every source
        covers time up to now (see :meth:`Meter.settled_snapshot`).
        """
        end_s = time.monotonic()
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if final and self._last is not None:
            self._take(self.meter.settled_snapshot(end_s) if settle else None)
        return list(self.intervals)

    def __enter__(self) -> "IntervalSampler":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def combine(key: str, parts: Sequence[Measurement]) -> Measurement:
    """Consecutive measurements of one meter (an :class:`IntervalSampler`'s) as one window.

    Joules, gaps and covered seconds are summed per domain with ``math.fsum``,
    so the window's figures are exactly the sum of its parts: a report of the
    intervals and a report of the window never disagree.
    """
    if not parts:
        raise ValueError("combine: no measurements")
    first, last = parts[0], parts[-1]
    domains = first.domains

    def total(get: Callable[[Measurement], Mapping[str, float]], keys: Sequence[str]) -> dict[str, float]:
        return {k: math.fsum(get(m).get(k, 0.0) for m in parts) for k in keys}

    ids = [d.id for d in domains]
    gaps = {k: v for k, v in total(lambda m: m.gap_s, ids).items()
            if any(k in m.gap_s for m in parts)}
    return Measurement(key, first.start_s, (last.start_s + last.duration_s) - first.start_s,
                       total(lambda m: m.energy_j, ids), domains, dict(first.source_of),
                       dict(last.domain_quality), total(lambda m: m.covered_s, list(first.covered_s)),
                       first.resolution_s, gaps, dict(first.scope_of))
