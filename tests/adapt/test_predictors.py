"""Load predictors on known series, IPA's 10 s max buckets, backup predictor and margin."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipa_ext.adapt.forecast import Forecaster, bucket_max


@pytest.fixture(scope="module")
def preds(host):
    return {n: host.registry.create("predictor", n) for n in host.registry.names("predictor")}


def test_builtin_predictors_are_registered(preds):
    assert {"reactive", "max", "mean", "moving-window-max"} <= set(preds)


def test_buckets_are_maxima_of_ten_seconds_from_the_oldest():
    series = list(range(25))  # 0..24
    assert bucket_max(series, 10) == [9.0, 19.0, 24.0]  # last bucket partial, as IPA
    assert bucket_max([5, 1, 3], 1) == [5.0, 1.0, 3.0]


def test_predictors_on_a_known_series(preds, host):
    series = [4.0, 10.0, 6.0, 2.0, 8.0]
    assert preds["reactive"].predict(series) == 8.0
    assert preds["max"].predict(series) == 10.0
    assert preds["mean"].predict(series) == 6.0  # not IPA's max/len = 2.0
    mw = host.registry.create("predictor", "moving-window-max", {"window": 2})
    assert mw.predict(series) == 8.0
    assert host.registry.create("predictor", "moving-window-max", {"window": 3}).predict(series) == 8.0
    assert host.registry.create("predictor", "moving-window-max", {"window": 4}).predict(series) == 10.0


def test_moving_window_rejects_bad_windows(host):
    from ipa_ext.errors import ConfigError

    with pytest.raises(ConfigError, match="window"):
        host.registry.create("predictor", "moving-window-max", {"window": 0})


def test_forecaster_uses_backup_until_history_is_long_enough(preds):
    fc = Forecaster(preds["reactive"], preds["max"], bucket_s=10, backup_duration_s=30)
    short = [50] * 5 + [1] * 15  # two buckets: [50, 1]
    f = fc.forecast(short)
    assert f.backup and f.predictor == "max" and f.rate_rps == 50 and f.buckets_rps == (50.0, 1.0)
    long = [50] * 5 + [1] * 25  # three buckets: [50, 1, 1]
    f = fc.forecast(long)
    assert not f.backup and f.predictor == "reactive" and f.rate_rps == 1


def test_margin_and_rounding_follow_ipa(preds):
    fc = Forecaster(preds["mean"], preds["mean"], backup_duration_s=0, margin_pct=10, bucket_s=1)
    f = fc.forecast([10, 13])  # mean 11.5, +10% = 12.65 -> round 13
    assert f.raw_rps == 11.5 and f.rate_rps == 13
    exact = Forecaster(preds["mean"], preds["mean"], backup_duration_s=0, margin_pct=10, bucket_s=1,
                       round_rate=False)
    assert exact.forecast([10, 13]).rate_rps == pytest.approx(12.65)


def test_empty_history_predicts_zero(preds):
    f = Forecaster(preds["max"], preds["max"]).forecast([])
    assert f.rate_rps == 0 and f.backup


@given(st.lists(st.integers(0, 500), min_size=1, max_size=300), st.integers(1, 20))
def test_predictions_lie_within_the_buckets(values, window):
    from ipa_ext_plugins.predictors.builtin import (
        MaxPredictor, MeanPredictor, MovingWindowMaxPredictor, ReactivePredictor,
    )

    b = bucket_max(values, 10)
    lo, hi = min(b), max(b)
    assert MaxPredictor().predict(b) == hi == max(values)
    assert lo <= MeanPredictor().predict(b) <= hi
    assert lo <= MovingWindowMaxPredictor(window).predict(b) <= hi
    assert ReactivePredictor().predict(b) == max(values[(len(values) - 1) // 10 * 10:])
