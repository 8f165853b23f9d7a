"""AR(p) by least squares, and the forecast-quality metrics (SMAPE M3 form, MAPE, shortfalls)."""

from __future__ import annotations

import numpy as np
import pytest

from ipa_ext.forecasting import ar, metrics


def test_ar_recovers_the_coefficients_of_a_noise_free_series():
    y = [0.0, 1.0]
    for _ in range(40):
        y.append(2.0 + 0.5 * y[-1] - 0.2 * y[-2])
    c, a = ar.fit(y, 2)
    assert c == pytest.approx(2.0) and a == pytest.approx([0.5, -0.2])


def test_ar_forecast_iterates_the_model():
    y = [1.0, 2.0, 3.0, 4.0, 5.0]  # y_t = 1 + y_{t-1}
    np.testing.assert_allclose(ar.forecast(y, 1, 3), [6.0, 7.0, 8.0])
    rng = np.random.default_rng(0)
    z = [10.0]
    for _ in range(500):
        z.append(3.0 + 0.7 * z[-1] + rng.normal(0, 0.5))
    c, a = ar.fit(z, 1)
    assert a[0] == pytest.approx(0.7, abs=0.05)
    f = ar.forecast(z, 1, 2)
    assert f[0] == pytest.approx(c + a[0] * z[-1]) and f[1] == pytest.approx(c + a[0] * f[0])


def test_ar_falls_back_to_the_last_value():
    np.testing.assert_allclose(ar.forecast([5.0, 5.0, 5.0, 5.0], 1, 2), [5.0, 5.0])  # degenerate: minimum norm
    np.testing.assert_array_equal(ar.forecast([3.0, 9.0], 1, 2), [9.0, 9.0])  # too short to fit
    assert ar.fit([1.0, 2.0], 1) is None and ar.fit([1.0, 2.0, 4.0], 1) is not None


def test_smape_is_the_m3_form_and_flattens_its_inputs():
    a, f = [10.0, 20.0, 0.0], [12.0, 20.0, 0.0]
    assert metrics.smape(a, f) == pytest.approx(100 / 3 * (2 / 11))
    col = np.array(f).reshape(-1, 1)  # an (N, 1) model output against an (N,) target
    assert metrics.smape(a, col) == metrics.smape(a, f)
    assert metrics.smape([0.0], [5.0]) == 200.0
    with pytest.raises(ValueError):
        metrics.smape([1.0, 2.0], [1.0])


def test_mape_is_in_percent_and_skips_zero_actuals():
    assert metrics.mape([10.0, 20.0, 0.0], [12.0, 15.0, 3.0]) == pytest.approx(100 * (0.2 + 0.25) / 2)
    assert np.isnan(metrics.mape([0.0], [1.0]))


def test_shortfall_counts_and_sizes_under_predictions():
    s = metrics.shortfall([10.0, 20.0, 30.0, 40.0], [12.0, 15.0, 30.0, 30.0])
    assert s == {"under_pct": 50.0, "under_mean": 7.5, "under_mean_pct": pytest.approx(100 * (0.25 + 0.25) / 2)}
    assert metrics.shortfall([1.0], [1.0])["under_pct"] == 0.0
    q = metrics.quality([10.0, 20.0], [12.0, 15.0])
    assert q["n"] == 2 and q["mae"] == 3.5 and q["over_mean"] == 2.0 and q["under_pct"] == 50.0
