"""``ipa-ext predictor train`` and the lstm/ar predictors in configs: end to end, in process."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from support.paths import VIDEO
from ipa_ext.cli import main
from ipa_ext.forecasting import lstm, weights


def _trace(path, n=3000, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    path.write_text(" ".join(str(v) for v in rng.poisson(80 + 40 * np.sin(t / 120))))
    return path


def _train(tmp_path, capsys, *extra):
    trace = _trace(tmp_path / "t.txt")
    rc = main(["predictor", "train", "--trace", str(trace), "--window", "0-3000", "--epochs", "2", "--quiet",
               *extra])
    return rc, capsys.readouterr()


def test_train_writes_weights_with_provenance(tmp_path, capsys):
    out = tmp_path / "w.npz"
    rc, cap = _train(tmp_path, capsys, "--out", str(out), "--json")
    assert rc == 0, cap.err
    s = json.loads(cap.out)
    assert s["samples"] == len(range(0, 3000 - 120, 10)) and s["parameters"] == 2726 and s["steps"] == 2 * 5
    w = weights.load(out)
    assert w.provenance["command"].startswith("ipa-ext predictor train --trace t.txt --window 0-3000 --damping 8")
    assert w.provenance["seed"] == 7 and len(w.provenance["epoch_losses"]) == 2


def test_train_is_reproducible_under_a_seed(tmp_path, capsys):
    files = []
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        rc, _ = _train(tmp_path, capsys, "--seed", seed, "--out", str(tmp_path / f"{name}.npz"))
        assert rc == 0
        files.append(weights.load(tmp_path / f"{name}.npz").params)
    for k in lstm.PARAM_NAMES:
        np.testing.assert_array_equal(files[0][k], files[1][k])
    assert any(not np.array_equal(files[0][k], files[2][k]) for k in lstm.PARAM_NAMES)


def test_train_prints_progress_and_a_summary(tmp_path, capsys):
    trace = _trace(tmp_path / "t.txt")
    rc = main(["predictor", "train", "--trace", str(trace), "--window", "0-2000", "--epochs", "2",
               "--out", str(tmp_path / "w.npz")])
    cap = capsys.readouterr()
    assert rc == 0 and "epoch 2/2: loss" in cap.err
    assert "2,726 parameters" in cap.out and f"wrote {tmp_path / 'w.npz'}" in cap.out


def _one_line(capsys, rc, *needles):
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and err.startswith("ipa-ext: error:"), err
    for n in needles:
        assert n in err, (n, err)


@pytest.mark.parametrize("args, needles", [
    (["--days", "1-14"], ["t.txt: --days: too short for training", "3000 seconds"]),
    (["--window", "0-100"], ["t.txt: --window", "100 non-zero seconds", "at least 121"]),
    (["--window", "0-3000", "--damping", "100000"], ["0 non-zero seconds"]),
    (["--days", "3-2"], ["--days: expected 1 <= A <= B"]),
    (["--days", "x"], ["--days: expected A-B"]),
    (["--window", "50-10"], ["--window"]),
    (["--damping", "0"], ["--damping: must be >= 1"]),
    (["--epochs", "0"], ["--epochs: must be >= 1"]),
    (["--seed", "-1"], ["--seed: must be >= 0"]),
])
def test_train_bad_input_is_one_line_exit_2(tmp_path, capsys, args, needles):
    trace = _trace(tmp_path / "t.txt")
    rc = main(["predictor", "train", "--trace", str(trace), "--out", str(tmp_path / "w.npz"), *args])
    _one_line(capsys, rc, *needles)
    assert not (tmp_path / "w.npz").exists()


def test_train_on_a_missing_or_bad_trace(tmp_path, capsys):
    _one_line(capsys, main(["predictor", "train", "--trace", str(tmp_path / "none.txt")]), "trace file not found")
    (tmp_path / "bad.txt").write_text("1 2 x")
    _one_line(capsys, main(["predictor", "train", "--trace", str(tmp_path / "bad.txt")]), "'x'")


def _config(tmp_path, predictor):
    data = yaml.safe_load((VIDEO / "config.yaml").read_text())
    data["pipeline"] = str(VIDEO / data["pipeline"])
    data["profiles"] = str(VIDEO / data["profiles"])
    data["predictor"] = predictor
    data["workload"] = {"type": "synthetic", "pattern": "fluctuating", "duration_s": 300, "seed": 1}
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def _simulate(tmp_path, capsys, cfg):
    rc = main(["simulate", str(cfg), "--out", str(tmp_path / "o"), "--quiet", "--json", "--no-seconds"])
    return rc, capsys.readouterr()


@pytest.mark.parametrize("name", ["lstm", "ar", "arima"])
def test_simulate_with_the_new_predictors(tmp_path, capsys, name):
    rc, cap = _simulate(tmp_path, capsys, _config(tmp_path, {"name": name, "backup": "max"}))
    assert rc == 0, cap.err
    s = json.loads(cap.out)
    assert s["predictor"]["name"] == ("ar" if name == "arima" else name) and s["decisions"] == len(range(10, 300, 10))
    lines = [json.loads(x) for x in (tmp_path / "o" / "adaptation.jsonl").read_text().splitlines()]
    used = {x["prediction"]["predictor"] for x in lines if "prediction" in x}
    assert used == {"max", s["predictor"]["name"]}


def test_simulate_with_a_weights_file_relative_to_the_config(tmp_path, capsys):
    params = lstm.init_params(3, np.random.default_rng(1))
    params["dense_kernel"][:] = 0.0
    params["dense_bias"][:] = 17.0
    (tmp_path / "m").mkdir()
    weights.save(weights.LstmWeights(params, units=3), tmp_path / "m" / "w.npz")
    rc, cap = _simulate(tmp_path, capsys, _config(tmp_path, {"name": "lstm", "options": {"weights": "m/w.npz"}}))
    assert rc == 0, cap.err
    lines = [json.loads(x) for x in (tmp_path / "o" / "adaptation.jsonl").read_text().splitlines()]
    assert {x["predicted_rps"] for x in lines if x.get("prediction", {}).get("predictor") == "lstm"} == {17.0}


def test_a_bad_weights_file_in_a_config_is_one_line(tmp_path, capsys):
    w = weights.LstmWeights(lstm.init_params(3, np.random.default_rng(1)), units=3)
    f = weights.save(w, tmp_path / "w.npz")
    data = dict(np.load(f))
    data["recurrent_kernel"] = data["recurrent_kernel"][:, :8]
    np.savez(tmp_path / "bad.npz", **data)
    rc, cap = _simulate(tmp_path, capsys, _config(tmp_path, {"name": "lstm", "options": {"weights": "bad.npz"}}))
    err = cap.err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and "bad.npz: recurrent_kernel: shape (3, 8)" in err, err
    rc = main(["validate", str(_config(tmp_path, {"name": "lstm", "options": {"weights": "bad.npz"}}))])
    _one_line(capsys, rc, "bad.npz: recurrent_kernel: shape (3, 8)", "expected (3, 12)")


def test_an_ipa_config_with_the_lstm_runs_through_from_ipa(tmp_path, capsys, shared_data):
    c = tmp_path / "c.yaml"
    c.write_text(f"from_ipa: {shared_data / 'ipa-configs' / 'video-1.yaml'}\n"
                 f"pipeline: {VIDEO / 'pipeline.yaml'}\nprofiles: {VIDEO / 'profiles.csv'}\n"
                 f"workload: {{trace: {shared_data / 'twitter-trace' / 'workload.tbz2'}}}\n")
    rc, cap = _simulate(tmp_path, capsys, c)
    assert rc == 0, cap.err
    s = json.loads(cap.out)
    assert s["predictor"]["name"] == "lstm" and s["predictor"]["backup"] == "max"
