"""The ``lstm`` and ``ar`` predictor plugins: registered, IPA's names map to them, they predict sensibly."""

from __future__ import annotations

import numpy as np
import pytest

from ipa_ext.errors import ConfigError, InputError
from ipa_ext.forecasting import lstm, weights
from ipa_ext.adapt.forecast import Forecaster
from ipa_ext.predictors import ALIASES


def test_lstm_and_ar_are_registered_and_arima_maps_to_ar(host):
    assert {"lstm", "ar"} <= set(host.registry.names("predictor"))
    assert ALIASES["arima"] == "ar"


def test_ar_predictor_takes_the_largest_of_its_steps(host):
    p = host.registry.create("predictor", "ar")
    assert p.predict([1.0, 2.0, 3.0, 4.0, 5.0]) == pytest.approx(7.0)  # steps 6 and 7
    assert p.predict([9.0, 8.0, 7.0, 6.0]) == pytest.approx(5.0)  # falling: the first step
    assert host.registry.create("predictor", "ar", {"steps": 1}).predict([1.0, 2.0, 3.0]) == pytest.approx(4.0)
    short = host.registry.create("predictor", "ar", {"history": 3})
    assert short.predict([100.0, 0.0, 1.0, 2.0, 3.0]) == pytest.approx(5.0)  # fits the last 3 only
    assert p.predict([7.0]) == 7.0


@pytest.mark.parametrize("options, needle", [({"order": 0}, "order"), ({"steps": 1.5}, "steps"),
                                             ({"history": 2}, "history"), ({"lags": 2}, "lags")])
def test_ar_rejects_bad_options(host, options, needle):
    with pytest.raises(ConfigError, match=needle):
        host.registry.create("predictor", "ar", options, where="predictor.options")


def test_lstm_predictor_runs_the_shipped_model_on_the_last_buckets(host):
    p = host.registry.create("predictor", "lstm")
    hist = [float(v) for v in np.random.default_rng(0).integers(5, 40, 20)]
    expected = weights.load_shipped().predict(np.array([hist[-12:]]))[0]
    assert p.predict(hist) == pytest.approx(expected)
    # a short history is padded with its oldest bucket
    assert p.predict([7.0, 9.0]) == pytest.approx(p.predict([7.0] * 11 + [9.0]))


def test_lstm_predictor_with_its_own_weights_file(host, tmp_path):
    params = lstm.init_params(3, np.random.default_rng(1))
    params["dense_kernel"][:] = 0.0
    params["dense_bias"][:] = 42.0  # predicts 42 whatever it sees
    f = weights.save(weights.LstmWeights(params, units=3, timesteps=4), tmp_path / "w.npz")
    p = host.registry.create("predictor", "lstm", {"weights": str(f)})
    assert p.predict([1.0, 2.0]) == 42.0
    fc = Forecaster(p, p, backup_duration_s=0, margin_pct=10)
    assert fc.forecast([5] * 30).rate_rps == 46  # round(42 * 1.1)


def test_lstm_predictor_option_errors(host, tmp_path):
    with pytest.raises(ConfigError, match="weights"):
        host.registry.create("predictor", "lstm", {"weights": 5}, where="predictor.options")
    with pytest.raises(InputError, match="weights file not found"):
        host.registry.create("predictor", "lstm", {"weights": str(tmp_path / "none.npz")})


def test_negative_lstm_outputs_become_zero(host, tmp_path):
    params = lstm.init_params(2, np.random.default_rng(1))
    params["dense_kernel"][:] = 0.0
    params["dense_bias"][:] = -3.0
    f = weights.save(weights.LstmWeights(params, units=2), tmp_path / "neg.npz")
    p = host.registry.create("predictor", "lstm", {"weights": str(f)})
    assert p.predict([1.0]) == -3.0
    assert Forecaster(p, p, backup_duration_s=0).forecast([1] * 20).rate_rps == 0.0


def test_lstm_scale_feeds_the_model_at_the_scale_it_learnt(host):
    plain = host.registry.create("predictor", "lstm")
    scaled = host.registry.create("predictor", "lstm", {"scale": 8})
    hist = [80.0, 96.0, 120.0, 104.0] * 3
    assert scaled.predict(hist) == pytest.approx(8 * plain.predict([v / 8 for v in hist]))
    for bad in (0, -1, "x"):
        with pytest.raises(ConfigError, match="scale"):
            host.registry.create("predictor", "lstm", {"scale": bad}, where="predictor.options")
