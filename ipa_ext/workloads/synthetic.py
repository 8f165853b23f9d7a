"""Seeded synthetic request patterns: the embedded default workload, since the Twitter trace cannot ship."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..config.numeric import number
from ..config.show import shown
from ..errors import ConfigError

SYNTHETIC_PATTERNS = ("steady", "bursty", "fluctuating", "diurnal", "step")

MAX_RATE_RPS = 1e9
"""The highest synthetic rate (``base_rps``, ``peak_rps``): far above any pipeline's capacity."""

MAX_DURATION_S = 366 * 86400
"""The longest generated series (synthetic ``duration_s``, static ``load_duration``): a year
of seconds; a longer one would not fit in memory."""


def synthetic(
    pattern: str,
    duration_s: int = 1200,
    seed: int = 0,
    *,
    base_rps: float | None = None,
    peak_rps: float | None = None,
    period_s: float | None = None,
) -> np.ndarray:
    """A seeded synthetic per-second series; every second's count is Poisson around a rate curve.

    * ``steady``: a constant ``base_rps`` (default 20).
    * ``bursty``: ``base_rps`` (15) with bursts to ``peak_rps`` (60) lasting 10-60 s,
      starting on average every ``period_s`` (120) seconds.
    * ``fluctuating``: a smooth random curve between ``base_rps`` (8) and ``peak_rps`` (40)
      changing on a time scale of ``period_s`` (60) seconds.
    * ``diurnal``: a sinusoid between ``base_rps`` (10) and ``peak_rps`` (50) with period
      ``period_s`` (the duration, one "day" per run).
    * ``step``: four equal phases at ``base_rps``, ``peak_rps``, base and peak (15 and 45).
    """
    if pattern not in SYNTHETIC_PATTERNS:
        raise ConfigError(
            f"unknown synthetic pattern {shown(pattern)} (known: {', '.join(SYNTHETIC_PATTERNS)})",
            where="workload.pattern",
        )
    n = number(duration_s, "workload.duration_s", integer=True, minimum=1, maximum=MAX_DURATION_S)
    seed = number(seed, "workload.seed", integer=True, minimum=0)
    base_rps, peak_rps, period_s = (
        None if v is None else number(v, f"workload.{key}", minimum=0.0, maximum=hi)
        for key, v, hi in (("base_rps", base_rps, MAX_RATE_RPS), ("peak_rps", peak_rps, MAX_RATE_RPS),
                           ("period_s", period_s, None))
    )
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    rate = RATE_CURVES[pattern](rng, np.arange(n, dtype=float), base_rps, peak_rps, period_s)
    return rng.poisson(np.maximum(rate, 0.0)).astype(np.int64)


def _or(value: float | None, default: float) -> float:
    return default if value is None else value


def _steady(rng: np.random.Generator, t: np.ndarray, base: float | None, peak: float | None,
            period: float | None) -> np.ndarray:
    return np.full(len(t), _or(base, 20.0))


def _bursty(rng: np.random.Generator, t: np.ndarray, base_rps: float | None, peak_rps: float | None,
            period_s: float | None) -> np.ndarray:
    n = len(t)
    base, peak = _or(base_rps, 15.0), _or(peak_rps, 60.0)
    gap = 120.0 if period_s is None else max(period_s, 1.0)
    rate = np.full(n, base)
    pos = rng.exponential(gap / 2)
    while pos < n:
        length = rng.uniform(10, 60)
        height = rng.uniform(0.5, 1.0) * (peak - base)
        lo, hi = int(pos), min(n, int(pos + length))
        ramp = np.minimum(1.0, np.minimum(t[lo:hi] - pos + 1, pos + length - t[lo:hi]) / 5.0)
        rate[lo:hi] = np.maximum(rate[lo:hi], base + height * ramp)
        pos += length + rng.exponential(gap)
    return rate


def _fluctuating(rng: np.random.Generator, t: np.ndarray, base_rps: float | None, peak_rps: float | None,
                 period_s: float | None) -> np.ndarray:
    lo_r, hi_r = _or(base_rps, 8.0), _or(peak_rps, 40.0)
    scale = 60.0 if period_s is None else max(period_s, 1.0)
    knots = int(len(t) / scale) + 3
    pts = rng.uniform(0.0, 1.0, knots)
    x = np.arange(knots) * scale
    # cosine interpolation between random knots: smooth, bounded by [lo, hi]
    i = np.minimum((t // scale).astype(int), knots - 2)
    f = (t - x[i]) / scale
    w = (1 - np.cos(np.pi * f)) / 2
    level = pts[i] * (1 - w) + pts[i + 1] * w
    return lo_r + (hi_r - lo_r) * level


def _diurnal(rng: np.random.Generator, t: np.ndarray, base_rps: float | None, peak_rps: float | None,
             period_s: float | None) -> np.ndarray:
    lo_r, hi_r = _or(base_rps, 10.0), _or(peak_rps, 50.0)
    period = float(len(t)) if period_s is None else max(period_s, 1.0)
    return lo_r + (hi_r - lo_r) * (1 - np.cos(2 * np.pi * t / period)) / 2


def _step(rng: np.random.Generator, t: np.ndarray, base_rps: float | None, peak_rps: float | None,
          period_s: float | None) -> np.ndarray:
    lo_r, hi_r = _or(base_rps, 15.0), _or(peak_rps, 45.0)
    phase = np.minimum((t * 4 // len(t)).astype(int), 3)
    return np.where(phase % 2 == 0, lo_r, hi_r)


RATE_CURVES: dict[str, Callable[..., np.ndarray]] = {
    "steady": _steady, "bursty": _bursty, "fluctuating": _fluctuating, "diurnal": _diurnal, "step": _step,
}
"""Each synthetic pattern's rate curve (rng, seconds, base_rps, peak_rps, period_s) -> rps per second."""
