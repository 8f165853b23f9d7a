"""The simulator's latency histogram: fixed-width bins filled with point masses and uniform spreads."""

from __future__ import annotations

import math


MAX_HISTOGRAM_S = 1e12
"""The latency histogram's range ends here however long the SLA (later latencies count as over)."""


class LatencyHistogram:
    """Request latencies in fixed-width bins, filled with point masses and uniform spreads."""

    def __init__(self, width_s: float, max_s: float) -> None:
        self.width_s = float(width_s)
        self.nbins = int(math.ceil(max_s / width_s)) + 1
        self.point = [0.0] * (self.nbins + 1)
        self.dens = [0.0] * (self.nbins + 2)  # difference array of per-bin density
        self.over = 0.0
        self.max_s = 0.0
        self.total = 0.0

    def add_point(self, lat: float, mass: float) -> None:
        """Add ``mass`` requests of latency ``lat``."""
        i = int(lat / self.width_s)
        if i >= self.nbins:
            self.over += mass
        else:
            self.point[i] += mass
        self.total += mass
        if lat > self.max_s:
            self.max_s = lat

    def add_uniform(self, lo: float, hi: float, mass: float) -> None:
        """Add ``mass`` requests spread evenly over latencies ``lo``..``hi``."""
        if hi - lo < self.width_s:
            self.add_point((lo + hi) / 2, mass)
            if hi > self.max_s:
                self.max_s = hi
            return
        w = self.width_s
        per_s = mass / (hi - lo)
        i0, i1 = int(lo / w), int(hi / w)
        self.total += mass
        if hi > self.max_s:
            self.max_s = hi
        if i1 >= self.nbins:
            cut = self.nbins * w
            if lo >= cut:
                self.over += mass
                return
            self.over += per_s * (hi - cut)
            hi, i1 = cut, self.nbins
        # partial first and last bins as point masses, full bins as density
        if i0 == i1:
            self.point[i0] += per_s * (hi - lo)
            return
        self.point[i0] += per_s * ((i0 + 1) * w - lo)
        if i1 < self.nbins:
            self.point[i1] += per_s * (hi - i1 * w)
        if i1 > i0 + 1:
            self.dens[i0 + 1] += per_s * w
            self.dens[i1] -= per_s * w

    def counts(self) -> list[float]:
        """Requests per bin (beyond the range: ``over``)."""
        out = []
        run = 0.0
        for i in range(self.nbins):
            run += self.dens[i]
            out.append(self.point[i] + run)
        return out

    def quantile(self, q: float) -> float | None:
        """The latency below which a fraction ``q`` of requests fall (bin upper edge)."""
        if self.total <= 0:
            return None
        target = q * self.total
        acc = 0.0
        for i, c in enumerate(self.counts()):
            acc += c
            if acc >= target - 1e-9:
                return min((i + 1) * self.width_s, self.max_s)
        return self.max_s
