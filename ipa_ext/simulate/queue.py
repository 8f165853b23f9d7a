"""The fluid FIFO queue in front of the pipeline: admit or drop arrivals, serve at the bottleneck rate.

The queue holds slices of requests ``[n, first arrival s, last arrival s]``, each spread
evenly over its arrival interval, so every request's wait is exact for the fluid model.
"""

from __future__ import annotations

from collections import deque
from typing import Sequence

from .histogram import LatencyHistogram

EPS = 1e-9
"""Fluid amounts below this many requests are treated as zero."""


def service_latency_s(latency_s: float, batch_waits: Sequence[float], rate_rps: float, max_wait_s: float) -> float:
    """Seconds a request takes once it leaves the queue: the per-batch latencies plus half of each batch's fill time.

    A batch of ``b`` waits ``(b - 1) / rate_rps`` to fill, at most ``max_wait_s`` (the batching timeout).
    """
    fill = 0.0
    if rate_rps > 0.0:
        for bw in batch_waits:
            w = bw / rate_rps
            fill += (w if w < max_wait_s else max_wait_s) * 0.5
    return latency_s + fill


class FluidQueue:
    """FIFO slices of queued requests and their total (see the module docstring)."""

    def __init__(self) -> None:
        self.slices: deque[list[float]] = deque()  # [n, first arrival, last arrival]
        self.total = 0.0

    def shrink_to(self, bound: float) -> float:
        """Drop the newest requests beyond ``bound`` (when a reconfiguration lowers it); returns how many."""
        excess = self.total - bound
        dropped = excess
        q = self.slices
        while excess > EPS and q:
            seg = q[-1]
            if seg[0] <= excess + EPS:
                excess -= seg[0]
                q.pop()
            else:
                keep = (seg[0] - excess) / seg[0]
                seg[2] = seg[1] + (seg[2] - seg[1]) * keep
                seg[0] -= excess
                excess = 0.0
        self.total = bound
        return dropped

    def admit(self, t: int, a: float, capacity_rps: float, bound: float) -> float:
        """Queue second ``t``'s ``a`` arrivals up to ``bound`` queued requests; returns how many are dropped.

        Over capacity the queue grows at ``a - capacity_rps`` until it is full at ``x1`` into
        the second; after that arrivals are admitted at the service rate.
        """
        C, Q, q = capacity_rps, self.total, self.slices
        if a > C and Q + (a - C) > bound:
            x1 = (bound - Q) / (a - C)
            if x1 < 0.0:
                x1 = 0.0
            elif x1 > 1.0:
                x1 = 1.0
            n1 = a * x1
            n2 = C * (1.0 - x1)
            if n1 > EPS:
                q.append([n1, t, t + x1])
            if n2 > EPS:
                q.append([n2, t + x1, t + 1.0])
            adm = n1 + n2
            self.total = Q + adm
            return a - adm
        q.append([a, float(t), t + 1.0])
        self.total = Q + a
        return 0.0

    def serve(
        self, t: int, capacity_rps: float, service_s: float, late_after_s: float, hist: LatencyHistogram
    ) -> tuple[float, float, float, float]:
        """Serve second ``t`` at ``capacity_rps`` from the front; returns (served, latency sum, max, late).

        Latencies are the exact wait plus ``service_s``; a request is late when its wait
        exceeds ``late_after_s``. Each served part goes into ``hist``.
        """
        q, C, S = self.slices, capacity_rps, service_s
        served = lat_sum = lat_max = late = 0.0
        tau = float(t)
        end = t + 1.0
        while q:
            seg = q[0]
            n, tf, tl = seg
            span = tl - tf
            nc = n / C
            slope2 = nc if nc > span else span
            us = (end - tau) / nc if nc > 0.0 else 1.0
            if slope2 > 0.0:
                u2 = (end - tf) / slope2
                if u2 < us:
                    us = u2
            if us >= 1.0 or n * (1.0 - us) < EPS:
                us = 1.0
            elif us <= 0.0:
                break
            for pm, w0, w1 in _wait_pieces(n, us, tau - tf, nc - span):
                if pm <= 0.0:
                    continue
                served += pm
                lat_sum += pm * ((w0 + w1) * 0.5 + S)
                lo, hi = (w0, w1) if w0 <= w1 else (w1, w0)
                if hi + S > lat_max:
                    lat_max = hi + S
                if hi > lo:
                    hist.add_uniform(lo + S, hi + S, pm)
                    if hi > late_after_s:
                        frac = (hi - late_after_s) / (hi - lo)
                        late += pm * (frac if frac < 1.0 else 1.0)
                else:
                    hist.add_point(lo + S, pm)
                    if lo > late_after_s:
                        late += pm
            if us < 1.0:
                seg[0] = n - n * us
                seg[1] = tf + us * span
                break
            q.popleft()
            d1 = tau + nc
            d2 = tf + slope2
            tau = d1 if d1 > d2 else d2
        Q = self.total - served
        if not q or Q < EPS:
            if q:
                # rounding residue: serve it with the last wait
                served += Q
                lat_sum += Q * S
                q.clear()
            Q = 0.0
        self.total = Q
        return served, lat_sum, lat_max, late

    def clear(self) -> None:
        """Empty the queue."""
        self.slices.clear()
        self.total = 0.0


def _wait_pieces(n: float, us: float, A: float, g: float) -> tuple[tuple[float, float, float], ...]:
    """The served part of a slice as (requests, first wait, last wait) pieces with linear waits.

    The wait of the slice's fraction ``u`` is ``max(A + u*g, u*max(g, 0))`` over ``u`` in ``[0, us]``,
    with ``A`` the time the server reached the slice minus its first arrival and ``g`` the
    slice's service time minus its arrival span.
    """
    m = n * us
    if g >= 0.0:
        w0 = A if A > 0.0 else 0.0
        return ((m, w0, w0 + g * us),)
    if A <= 0.0:
        return ((m, 0.0, 0.0),)
    u0 = A / -g
    if u0 >= us:
        return ((m, A, A + g * us),)
    return ((n * u0, A, 0.0), (n * (us - u0), 0.0, 0.0))


class _Pieces:
    """Stands in for the histogram to collect what :meth:`FluidQueue.serve` records, as (lo, hi, requests)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, float, float]] = []

    def add_point(self, lat: float, mass: float) -> None:
        self.items.append((lat, lat, mass))

    def add_uniform(self, lo: float, hi: float, mass: float) -> None:
        self.items.append((lo, hi, mass))


def serve_spread(
    queue: FluidQueue, t: int, capacity_rps: float, service_s: float, late_tol_s: float, hist: LatencyHistogram,
    offsets: Sequence[float],
) -> tuple[float, float, float, float]:
    """:meth:`FluidQueue.serve` with drawn service times ``service_s + offset``, each taking an equal part
    of every served piece. Returns (served, latency sum, max, late); late means latency > ``late_tol_s``."""
    pieces = _Pieces()
    served, lat_sum, lat_max, _ = queue.serve(
        t, capacity_rps, service_s, late_tol_s - service_s, pieces)  # type: ignore[arg-type]
    k = len(offsets)
    late = 0.0
    for x0, x1, m in pieces.items:
        mk = m / k
        for d in offsets:
            limit = late_tol_s - d
            if x1 > x0:
                hist.add_uniform(x0 + d, x1 + d, mk)
                if x1 > limit:
                    frac = (x1 - limit) / (x1 - x0)
                    late += mk * (frac if frac < 1.0 else 1.0)
            else:
                hist.add_point(x0 + d, mk)
                if x0 > limit:
                    late += mk
    if served <= 0.0:
        return 0.0, 0.0, 0.0, 0.0
    return served, lat_sum + served * sum(offsets) / k, lat_max + max(offsets), late


def reroute(queues: Sequence[FluidQueue], weights: Sequence[float]) -> list[FluidQueue]:
    """Pool the requests waiting in ``queues`` and split them over new queues by ``weights``.

    Each request keeps its arrival time; slices are ordered by first arrival, and slices
    over the same interval are merged.
    """
    pooled: list[list[float]] = []
    for seg in sorted((s for q in queues for s in q.slices), key=lambda s: (s[1], s[2])):
        if pooled and pooled[-1][1] == seg[1] and pooled[-1][2] == seg[2]:
            pooled[-1][0] += seg[0]
        else:
            pooled.append(list(seg))
    out = []
    for w in weights:
        q = FluidQueue()
        q.slices.extend([n * w, tf, tl] for n, tf, tl in pooled if n * w > 0.0)
        q.total = sum(s[0] for s in q.slices)
        out.append(q)
    return out
