"""Latency statistics of a row's timed batches (percentiles, spread) and the coefficient of variation."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from typing import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) with linear interpolation between order statistics
    (numpy's default method): p50 of [1, 2, 3, 4] is 2.5, p100 the maximum."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0.0 <= q <= 100.0:
        raise ValueError(f"percentile must be in [0, 100], got {q}")
    xs = sorted(values)
    pos = (len(xs) - 1) * q / 100.0
    lo = math.floor(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def cv(values: Sequence[float]) -> float:
    """Coefficient of variation: sample standard deviation over the mean (0 for fewer than two values)."""
    if len(values) < 2:
        return 0.0
    mean = statistics.fmean(values)
    return statistics.stdev(values) / mean if mean > 0 else 0.0


@dataclass(frozen=True)
class LatencySummary:
    """What one row's timed batch latencies say: the chosen percentile, median, mean, extremes, spread."""

    count: int
    percentile: float
    """Which percentile :attr:`latency_s` is (99 by default, as IPA's profiles)."""
    latency_s: float
    p50_s: float
    mean_s: float
    min_s: float
    max_s: float
    cv: float


def summarize(latencies_s: Sequence[float], q: float = 99.0) -> LatencySummary:
    """Summary of per-batch latencies in seconds."""
    if not latencies_s:
        raise ValueError("no timed batches")
    return LatencySummary(len(latencies_s), q, percentile(latencies_s, q), percentile(latencies_s, 50.0),
                          statistics.fmean(latencies_s), min(latencies_s), max(latencies_s), cv(latencies_s))
