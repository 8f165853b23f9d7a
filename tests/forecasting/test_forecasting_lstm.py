"""The numpy LSTM: Keras's shapes and initial weights, a hand-computed forward pass, exact gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ipa_ext.forecasting import lstm
from ipa_ext.forecasting.train import TrainSettings, loss_and_grads


def test_ipa_model_has_2726_parameters():
    assert lstm.count_params(25) == 4 * 25 * (1 + 25 + 1) + 25 + 1 == 2726
    p = lstm.init_params(25, np.random.default_rng(0))
    assert {k: v.shape for k, v in p.items()} == lstm.param_shapes(25)
    assert sum(v.size for v in p.values()) == 2726


def test_initial_weights_follow_keras():
    p = lstm.init_params(25, np.random.default_rng(3))
    assert np.all(p["bias"][25:50] == 1) and np.all(p["bias"][:25] == 0) and np.all(p["bias"][50:] == 0)
    assert np.abs(p["kernel"]).max() <= math.sqrt(6 / 101) and np.abs(p["kernel"]).max() > 0.2
    assert np.abs(p["dense_kernel"]).max() <= math.sqrt(6 / 26)
    u = p["recurrent_kernel"]  # (25, 100): orthonormal rows
    np.testing.assert_allclose(u @ u.T, np.eye(25), atol=1e-12)
    assert np.all(p["dense_bias"] == 0)


def test_forward_matches_a_hand_computation():
    # one unit, two steps, relu: every gate and state written out
    p = {"kernel": np.array([[0.5, -0.3, 0.8, 0.2]]), "recurrent_kernel": np.array([[0.1, 0.4, -0.6, 0.3]]),
         "bias": np.array([0.0, 1.0, 0.1, -0.2]), "dense_kernel": np.array([[1.5]]), "dense_bias": np.array([0.25])}
    sig = lambda z: 1 / (1 + math.exp(-z))  # noqa: E731
    h = c = 0.0
    for x in (2.0, 3.0):
        zi, zf, zc, zo = (x * k + h * u + b for k, u, b in zip(p["kernel"][0], p["recurrent_kernel"][0], p["bias"]))
        c = sig(zf) * c + sig(zi) * max(zc, 0.0)
        h = sig(zo) * max(c, 0.0)
    expected = 1.5 * h + 0.25
    assert lstm.predict(p, np.array([[2.0, 3.0]]))[0] == pytest.approx(expected, rel=1e-12)
    # the same as a (B, T, 1) batch, and with tanh
    assert lstm.predict(p, np.array([[[2.0], [3.0]]]))[0] == pytest.approx(expected, rel=1e-12)
    assert lstm.predict(p, np.array([[2.0, 3.0]]), "tanh")[0] != pytest.approx(expected)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_gradients_match_finite_differences(activation):
    rng = np.random.default_rng(11)
    p = {k: v + rng.normal(0, 0.3, v.shape) for k, v in lstm.init_params(3, rng).items()}
    x, y = rng.uniform(0.5, 2.0, (2, 4)), rng.uniform(0.0, 1.0, 2)
    s = TrainSettings(activation=activation, l1=1e-3)
    _, g = loss_and_grads(p, x, y, s)
    worst = 0.0
    for name, arr in p.items():
        for idx in np.ndindex(arr.shape):
            old = arr[idx]
            arr[idx] = old + 1e-6
            up, _ = loss_and_grads(p, x, y, s)
            arr[idx] = old - 1e-6
            down, _ = loss_and_grads(p, x, y, s)
            arr[idx] = old
            num = (up - down) / 2e-6
            worst = max(worst, abs(num - g[name][idx]) / max(1e-10, abs(num) + abs(g[name][idx])))
    assert worst < 1e-6


def test_sigmoid_does_not_overflow():
    z = np.array([-1000.0, 0.0, 1000.0])
    np.testing.assert_allclose(lstm.sigmoid(z), [0.0, 0.5, 1.0])
