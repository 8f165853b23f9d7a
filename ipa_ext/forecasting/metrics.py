"""Forecast quality: MAE, SMAPE (the M3 form, 0-200 %), MAPE in %, and how often and by how much
a forecast falls short of the actual peak (the shortfalls are what cause SLO misses).

Inputs are flattened first, so a model's (N, 1) output and an (N,) target line up (upstream's
SMAPE broadcast them to (N, N)). 0/0 counts as 0 in SMAPE; MAPE skips points whose actual is 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def _pair(actual: Any, forecast: Any) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(actual, dtype=float).ravel()
    f = np.asarray(forecast, dtype=float).ravel()
    if a.shape != f.shape:
        raise ValueError(f"{a.size} actual values but {f.size} forecasts")
    if a.size == 0:
        raise ValueError("no values")
    return a, f


def mae(actual: Any, forecast: Any) -> float:
    a, f = _pair(actual, forecast)
    return float(np.mean(np.abs(f - a)))


def smape(actual: Any, forecast: Any) -> float:
    """``100/n * sum |F - A| / ((|A| + |F|) / 2)`` (Makridakis's M3 form, IPA's), 0/0 as 0."""
    a, f = _pair(actual, forecast)
    den = (np.abs(a) + np.abs(f)) / 2.0
    ratio = np.divide(np.abs(f - a), den, out=np.zeros_like(a), where=den > 0)
    return float(100.0 * np.mean(ratio))


def mape(actual: Any, forecast: Any) -> float:
    """``100/n * sum |A - F| / |A|`` over the points whose actual is not 0 (NaN if none)."""
    a, f = _pair(actual, forecast)
    keep = a != 0
    if not keep.any():
        return float("nan")
    return float(100.0 * np.mean(np.abs(a[keep] - f[keep]) / np.abs(a[keep])))


def shortfall(actual: Any, forecast: Any) -> dict[str, float]:
    """Share of points with ``F < A`` (%), and over those the mean shortfall ``A - F`` in units
    and in % of ``A`` (0 when there is none)."""
    a, f = _pair(actual, forecast)
    under = f < a
    if not under.any():
        return {"under_pct": 0.0, "under_mean": 0.0, "under_mean_pct": 0.0}
    gap = a[under] - f[under]
    return {"under_pct": float(100.0 * under.mean()), "under_mean": float(gap.mean()),
            "under_mean_pct": float(100.0 * np.mean(gap / a[under]))}


def quality(actual: Any, forecast: Any) -> dict[str, float]:
    """All of the above, plus the mean over-provisioning ``F - A`` where ``F > A``."""
    a, f = _pair(actual, forecast)
    over = f > a
    return {"n": int(a.size), "mae": mae(a, f), "smape_pct": smape(a, f), "mape_pct": mape(a, f),
            **shortfall(a, f), "over_mean": float((f[over] - a[over]).mean()) if over.any() else 0.0}
