"""Shared plotting helpers: matplotlib loading, distinct series styles and min/max envelope downsampling.

Only :func:`pyplot` imports matplotlib (the ``plot`` extra); :func:`envelope`
and :func:`series_styles` are plain Python so they can be tested without it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf",
    "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
)
"""Series colours: matplotlib's tab10 without its grey, then darker tab20b shades.
Black and grey are kept for reference lines (load, workload markers)."""

MARKERS = "osD^v<>PX*hp"
DASHES = ((0, (6, 3)), (0, (2, 2)), (0, (6, 2, 1, 2)), (0, (3, 1, 1, 1, 1, 1)), (0, (8, 2, 2, 2)))
"""Line styles for series drawn over an identical one, so both stay visible."""

MAX_POINTS = 1500
"""Above this many points a series is drawn as a min/max envelope (about one bucket per pixel column)."""


def pyplot() -> Any:
    """matplotlib.pyplot on the non-interactive Agg backend; ImportError without the ``plot`` extra."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def series_styles(names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """A distinct colour and marker per name, in order (no grey, no black)."""
    return {n: {"color": PALETTE[i % len(PALETTE)], "marker": MARKERS[i % len(MARKERS)]}
            for i, n in enumerate(names)}


MARKERS_PER_LINE = 30


def overlay_style(rank: int, points: int) -> dict[str, Any]:
    """Line keywords for the ``rank``-th series (1, 2, ...) drawn over an identical one of ``points`` points.

    Each gets its own dash pattern, about :data:`MARKERS_PER_LINE` markers at
    other data points than the series before it, and a thinner line than the
    series under it, so every colour shows.
    """
    every = max(1, points // MARKERS_PER_LINE)
    return {"linestyle": DASHES[(rank - 1) % len(DASHES)], "lw": max(0.8, 1.7 - 0.3 * rank),
            "markevery": ((rank * max(1, every // 4)) % every, every), "markersize": 4, "zorder": 2 + rank}


@dataclass(frozen=True)
class Envelope:
    """A series reduced to buckets: per bucket its x (the first point's), min, max and mean.

    ``lo``, ``hi`` and ``mean`` are None for a bucket without values (a gap).
    ``size`` is the number of points per bucket (the last may hold fewer).
    """

    x: list[float]
    lo: list[float | None]
    hi: list[float | None]
    mean: list[float | None]
    size: int

    @property
    def downsampled(self) -> bool:
        return self.size > 1


def envelope(xs: Sequence[float], ys: Sequence[float | None], max_points: int = MAX_POINTS) -> Envelope:
    """Downsample ``ys`` (None: no value) into at most ``max_points`` consecutive buckets.

    Every bucket keeps the minimum and the maximum of its values, so peaks and
    dips survive the reduction; the mean gives the line to draw through them.
    A series of at most ``max_points`` points comes back unchanged (buckets of one).
    """
    if len(xs) != len(ys):
        raise ValueError(f"xs and ys differ in length ({len(xs)} and {len(ys)})")
    if max_points < 1:
        raise ValueError(f"max_points must be >= 1, got {max_points}")
    size = max(1, math.ceil(len(xs) / max_points))
    out_x: list[float] = []
    lo: list[float | None] = []
    hi: list[float | None] = []
    mean: list[float | None] = []
    for start in range(0, len(xs), size):
        vals = [y for y in ys[start:start + size] if y is not None]
        out_x.append(xs[start])
        if vals:
            lo.append(min(vals))
            hi.append(max(vals))
            mean.append(math.fsum(vals) / len(vals))
        else:
            lo.append(None)
            hi.append(None)
            mean.append(None)
    return Envelope(out_x, lo, hi, mean, size)


def nan(values: Sequence[float | None]) -> list[float]:
    """None as NaN, which matplotlib leaves as a gap."""
    return [math.nan if v is None else float(v) for v in values]
