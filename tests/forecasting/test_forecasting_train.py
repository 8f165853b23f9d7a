"""IPA's training samples, Keras's Adam, and a fit that learns and reproduces under a seed."""

from __future__ import annotations

import numpy as np
import pytest

from ipa_ext.forecasting import lstm
from ipa_ext.forecasting.train import (Adam, TraceTooShort, TrainSettings, clean_series, ipa_samples,
                                       trace_samples, train)


def brute_samples(s, T=12, b=10, hz=20, stride=10):
    xs, ys = [], []
    for i in range(0, len(s) - T * b, stride):
        xs.append([max(s[i + j * b: i + (j + 1) * b]) for j in range(T)])
        ys.append(max(s[i + T * b: i + T * b + hz]))
    return np.array(xs, dtype=float).reshape(-1, T), np.array(ys, dtype=float)


@pytest.mark.parametrize("n", [121, 125, 130, 139, 140, 141, 377, 1000])
def test_samples_match_ipas_loop(n):
    s = np.random.default_rng(n).integers(1, 50, n)
    x, y = ipa_samples(s)
    bx, by = brute_samples(list(s))
    np.testing.assert_array_equal(x, bx)
    np.testing.assert_array_equal(y, by)
    assert len(y) == len(range(0, n - 120, 10))


def test_samples_with_a_stride_that_is_not_a_bucket():
    s = np.random.default_rng(2).integers(1, 50, 300)
    x, y = ipa_samples(s, timesteps=3, bucket_s=10, horizon_s=7, stride_s=4)
    bx, by = brute_samples(list(s), 3, 10, 7, 4)
    np.testing.assert_array_equal(x, bx)
    np.testing.assert_array_equal(y, by)


def test_too_short_series_give_no_sample():
    x, y = ipa_samples(np.ones(120))
    assert x.shape == (0, 12) and y.shape == (0,)


def test_damping_then_dropping_zero_seconds():
    np.testing.assert_array_equal(clean_series(np.array([0, 7, 8, 17, 0, 80]), 8), [1, 2, 10])
    np.testing.assert_array_equal(clean_series(np.array([0, 7, 8]), None), [7, 8])


def test_trace_samples_say_why_a_span_is_too_short():
    with pytest.raises(TraceTooShort, match="holds 500 seconds"):
        trace_samples(np.ones(500, dtype=int), 0, 600, None)
    s = np.r_[np.zeros(400, dtype=int), np.full(100, 9)]
    with pytest.raises(TraceTooShort, match="100 non-zero seconds.*at least 121"):
        trace_samples(s, 0, 500, 8)
    x, y = trace_samples(np.full(300, 16), 0, 300, 8)
    assert len(y) == 18 and np.all(x == 2) and np.all(y == 2)


def test_adam_takes_keras_steps():
    params = {"w": np.array([1.0, -2.0])}
    opt = Adam(learning_rate=0.1)
    g = np.array([0.5, -4.0])
    opt.step(params, {"w": g})
    # step 1: m = 0.1 g, v = 0.001 g^2, alpha = 0.1 sqrt(0.001)/0.1 -> w - alpha m / (sqrt(v) + eps)
    alpha = 0.1 * np.sqrt(1 - 0.999) / (1 - 0.9)
    expected = np.array([1.0, -2.0]) - alpha * 0.1 * g / (np.sqrt(0.001 * g * g) + 1e-7)
    np.testing.assert_allclose(params["w"], expected, rtol=1e-12)
    opt.step(params, {"w": g})
    assert opt.iterations == 2


def _toy(n=800, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n * 10 + 200)
    s = np.maximum(1, np.round(20 + 10 * np.sin(t / 90) + rng.normal(0, 1, len(t)))).astype(int)
    return ipa_samples(s)


def test_training_lowers_the_loss_and_beats_the_initial_model():
    x, y = _toy()
    s = TrainSettings(units=8, epochs=10, seed=1, learning_rate=0.01)
    r = train(x, y, s)
    init = lstm.init_params(8, np.random.Generator(np.random.PCG64(1)))
    mse0 = float(np.mean((lstm.predict(init, x) - y) ** 2))
    mse1 = float(np.mean((lstm.predict(r.params, x) - y) ** 2))
    assert r.epoch_losses[-1] < 0.01 * r.epoch_losses[0] and mse1 < 0.01 * mse0
    assert r.steps == 10 * -(-len(y) // 64)  # the last partial batch is kept


def test_the_same_seed_gives_the_same_weights_and_another_seed_others():
    x, y = _toy(200)
    a = train(x, y, TrainSettings(units=4, epochs=2, seed=5)).params
    b = train(x, y, TrainSettings(units=4, epochs=2, seed=5)).params
    c = train(x, y, TrainSettings(units=4, epochs=2, seed=6)).params
    for k in lstm.PARAM_NAMES:
        np.testing.assert_array_equal(a[k], b[k])
    assert any(not np.array_equal(a[k], c[k]) for k in lstm.PARAM_NAMES)
