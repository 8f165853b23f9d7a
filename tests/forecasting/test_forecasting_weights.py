"""The LSTM weights file: round trip, the shipped Twitter weights, and one-line errors for bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ipa_ext.errors import InputError
from ipa_ext.forecasting import lstm, weights


def _weights(units=4, **kw):
    return weights.LstmWeights(lstm.init_params(units, np.random.default_rng(0)), units=units, **kw)


def _write(path, header_changes=None, arrays=None, drop=(), header=True):
    w = _weights()
    head = {**w.header(), **(header_changes or {})}
    arrs = {k: v for k, v in {**w.params, **(arrays or {})}.items() if k not in drop}
    extra = {"header": np.array(json.dumps(head))} if header else {}
    np.savez(path, **extra, **arrs)
    return path


def test_round_trip_keeps_weights_and_predictions(tmp_path):
    w = _weights(provenance={"seed": 3})
    back = weights.load(weights.save(w, tmp_path / "w.npz"))
    for k in lstm.PARAM_NAMES:
        np.testing.assert_array_equal(back.params[k], w.params[k])
    assert (back.units, back.timesteps, back.activation, back.provenance) == (4, 12, "relu", {"seed": 3})
    x = np.arange(24.0).reshape(2, 12)
    np.testing.assert_array_equal(back.predict(x), w.predict(x))


def test_shipped_weights_are_ipas_shape_and_say_where_they_come_from():
    w = weights.load_shipped()
    assert (w.units, w.timesteps, w.bucket_s, w.horizon_s, w.activation) == (25, 12, 10, 20, "relu")
    assert sum(a.size for a in w.params.values()) == 2726
    prov = w.provenance
    assert prov["command"].startswith("ipa-ext predictor train") and len(prov["trace_sha256"]) == 64
    assert prov["seconds"] == [0, 14 * 86400] and prov["damping"] == 8 and prov["epochs"] == 30
    assert weights.SHIPPED.stat().st_size < 64_000
    # a steady load is predicted near itself
    for level in (5.0, 20.0, 40.0):
        assert w.predict(np.full((1, 12), level))[0] == pytest.approx(level, rel=0.25)


@pytest.mark.parametrize("change, where, needle", [
    ({"header_changes": {"version": 2}}, "header.version", "newer"),
    ({"header_changes": {"version": "1"}}, "header.version", "not supported"),
    ({"header_changes": {"format": "keras"}}, "header.format", "ipa-ext-lstm"),
    ({"header_changes": {"units": 5}}, "kernel", "shape (1, 16)"),
    ({"header_changes": {"units": 0}}, "header.units", "whole number"),
    ({"header_changes": {"activation": "gelu"}}, "header.activation", "relu"),
    ({"arrays": {"recurrent_kernel": np.zeros((4, 12))}}, "recurrent_kernel", "expected (4, 16)"),
    ({"arrays": {"bias": np.full(16, np.nan)}}, "bias", "NaN"),
    ({"arrays": {"dense_bias": np.array(["x"])}}, "dense_bias", "dtype"),
    ({"arrays": {"dense_bias": np.array([object()], dtype=object)}}, "dense_bias", "cannot read"),
    ({"arrays": {"extra": np.zeros(1)}}, "extra", "unexpected"),
    ({"drop": ("dense_kernel",)}, "dense_kernel", "missing"),
    ({"header": False}, "header", "missing"),
])
def test_bad_files_are_one_error_naming_the_field(tmp_path, change, where, needle):
    p = _write(tmp_path / "w.npz", **change)
    with pytest.raises(InputError) as info:
        weights.load(p)
    assert info.value.where == where and needle in str(info.value) and str(p) in str(info.value)


def test_files_that_are_not_weights(tmp_path):
    with pytest.raises(InputError, match="not found"):
        weights.load(tmp_path / "none.npz")
    (tmp_path / "t.npz").write_text("hello")
    with pytest.raises(InputError, match="not an LSTM weights file"):
        weights.load(tmp_path / "t.npz")
    np.save(tmp_path / "plain.npy", np.zeros(3))
    with pytest.raises(InputError, match="not an LSTM weights file"):
        weights.load(tmp_path / "plain.npy")
    np.savez(tmp_path / "h.npz", header=np.array([1, 2]))
    with pytest.raises(InputError, match="JSON object"):
        weights.load(tmp_path / "h.npz")
