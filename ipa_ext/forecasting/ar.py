"""An autoregressive AR(p) model with an intercept, fitted by least squares and forecast ahead.

It stands in for IPA's ``arima`` predictor (statsmodels' ``ARIMA(order=(1, 0, 0))`` fitted
on the history buckets, the largest of a 2-step forecast) without statsmodels: the same
model, fitted by ordinary least squares instead of maximum likelihood.
"""

from __future__ import annotations

import numpy as np


def fit(series: np.ndarray, order: int = 1) -> tuple[float, np.ndarray] | None:
    """Intercept and coefficients (lag 1 first) of ``y_t = c + sum_k a_k y_{t-k}``, or None
    when the series has too few points (fewer than ``order + 2``) to fit them."""
    y = np.asarray(series, dtype=float)
    n = len(y) - order
    if n < 2 or order < 1:
        return None
    lags = np.column_stack([y[order - k - 1: order - k - 1 + n] for k in range(order)])
    design = np.column_stack([np.ones(n), lags])
    coef, *_ = np.linalg.lstsq(design, y[order:], rcond=None)  # minimum norm when degenerate
    return float(coef[0]), coef[1:]


def forecast(series: np.ndarray, order: int = 1, steps: int = 2) -> np.ndarray:
    """The next ``steps`` values by iterating the fitted model; the last value repeated when
    the series is too short to fit or the fit is not finite."""
    y = np.asarray(series, dtype=float)
    model = fit(y, order)
    last = float(y[-1]) if len(y) else 0.0
    if model is None or not (np.isfinite(model[0]) and np.all(np.isfinite(model[1]))):
        return np.full(steps, last)
    c, a = model
    hist = list(y[-order:])
    out = []
    for _ in range(steps):
        nxt = c + float(np.dot(a, hist[::-1][:order]))
        out.append(nxt)
        hist.append(nxt)
    res = np.array(out)
    return res if np.all(np.isfinite(res)) else np.full(steps, last)
