"""Building zoo models for real: tiny members built to ONNX, run with onnxruntime, checked
against the spec's counts, a numpy forward pass, BN folding, and the build cache."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from support.serve_extra import require_serve

require_serve()

import onnx  # noqa: E402

from ipa_ext.errors import InputError  # noqa: E402
from ipa_ext.inference import cache, create_session, random_batch, reference, weights, zoo, zoo_model  # noqa: E402
from ipa_ext.inference.graph import to_onnx  # noqa: E402

TINY = {"resnet18": {"input_size": 32, "width": 0.25}, "yolov5n": {"input_size": 64}}
TRAINABLE = (".weight", ".bias", ".bn.scale", ".bn.shift")


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def tiny(cache_dir):
    """The tiny members, built once into the module's cache folder."""
    return {name: zoo_model(name, opts, cache_dir=cache_dir) for name, opts in TINY.items()}


def initializer_sizes(model) -> dict[str, int]:
    return {i.name: int(np.prod(i.dims)) for i in model.graph.initializer}


def run(path_or_bytes, x: np.ndarray) -> np.ndarray:
    session = create_session(path_or_bytes, threads=1)
    return session.run(None, {"input": x})[0]


@pytest.mark.parametrize("name,out_shape", [("resnet18", (1000,)), ("yolov5n", (3 * (8 * 8 + 4 * 4 + 2 * 2), 85))])
def test_tiny_members_run_with_a_dynamic_batch(tiny, name, out_shape):
    m = tiny[name]
    assert m.built and m.path.is_file() and m.path.stat().st_size == m.size_bytes
    session = create_session(m.path, threads=1)
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert session.get_inputs()[0].shape[1:] == [3, m.options.input_size, m.options.input_size]
    for batch in (1, 3):
        y = session.run(None, random_batch(session, batch, seed=batch))[0]
        assert y.shape == (batch, *out_shape)
        assert np.isfinite(y).all()
        assert 0 < float(y.std()) < 1e4


@pytest.mark.parametrize("name", TINY)
def test_the_file_stores_exactly_the_spec_count(tiny, name):
    m = tiny[name]
    model = onnx.load(str(m.path))
    onnx.checker.check_model(model)
    net = zoo.spec(name, TINY[name])
    assert sum(initializer_sizes(model).values()) == net.stored_params(fold_bn=True) == m.stored_params
    assert m.params == net.params()
    props = {p.key: p.value for p in model.metadata_props}
    assert props["ipa_ext.zoo"] == name and int(props["ipa_ext.params"]) == net.params()


@pytest.mark.parametrize("name", TINY)
def test_unfolded_graph_counts_bn_scale_and_shift_as_parameters(name):
    net = zoo.spec(name, TINY[name])
    w = weights.seeded_weights(zoo.calibration_spec(name, TINY[name]), 0)
    sizes = initializer_sizes(to_onnx(net, w, fold_bn=False))
    assert sum(sizes.values()) == net.stored_params(fold_bn=False)
    assert sum(n for k, n in sizes.items() if k.endswith(TRAINABLE)) == net.params()  # as published


@pytest.mark.parametrize("name", TINY)
def test_onnxruntime_matches_the_numpy_forward_pass_folded_or_not(name):
    opts = TINY[name]
    net = zoo.spec(name, opts)
    w = weights.seeded_weights(zoo.calibration_spec(name, opts), 3)
    x = np.random.default_rng(7).standard_normal((2, 3, opts["input_size"], opts["input_size"]), dtype=np.float32)
    expected = reference.forward(net, w, x)[net.output.name]
    for fold in (True, False):
        y = run(to_onnx(net, w, fold_bn=fold).SerializeToString(), x)
        scale = float(np.abs(expected).max())
        np.testing.assert_allclose(y, expected, rtol=1e-3, atol=1e-4 * scale)


def activations(net, w, fold_bn=True, batch=2):
    """Every layer's output of the ONNX graph, run by onnxruntime."""
    model = to_onnx(net, w, fold_bn=fold_bn)
    names = [l.out.name for l in net.layers if l.out.name != net.output.name]
    model.graph.output.extend(onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, None) for n in names)
    x = np.random.default_rng(11).standard_normal((batch, *net.input.shape), dtype=np.float32)
    session = create_session(model.SerializeToString())
    return dict(zip([net.output.name, *names], session.run(None, {"input": x})))


@pytest.mark.parametrize("name,opts", [("resnet152", {"input_size": 64, "width": 0.125}),
                                       ("yolov5x", {"input_size": 64, "width": 0.125})])
def test_activations_stay_finite_and_near_unit_size_through_the_deepest_models(name, opts):
    net = zoo.spec(name, opts)
    acts = activations(net, weights.seeded_weights(zoo.calibration_spec(name, opts), 0))
    assert len(acts) == len(net.layers)
    for layer in net.layers[:-1]:
        a = acts[layer.out.name]
        rms = float(np.sqrt(np.mean(np.square(a, dtype=np.float64))))
        assert np.isfinite(a).all(), layer.name
        assert 0.05 < rms < 50, (layer.name, rms)
    assert np.isfinite(acts[net.output.name]).all()


def test_same_seed_same_file_other_seed_other_weights(tmp_path, tiny):
    again = zoo_model("yolov5n", TINY["yolov5n"], cache_dir=tmp_path)
    assert again.built and again.path.read_bytes() == tiny["yolov5n"].path.read_bytes()
    other = zoo_model("yolov5n", TINY["yolov5n"], seed=1, cache_dir=tmp_path)
    assert other.path != again.path
    a, b = (onnx.numpy_helper.to_array(onnx.load(str(p)).graph.initializer[0]) for p in (again.path, other.path))
    assert a.shape == b.shape and not np.array_equal(a, b)


def test_the_second_call_uses_the_cache(tmp_path):
    opts = TINY["resnet18"]
    first = zoo_model("resnet18", opts, cache_dir=tmp_path)
    stamp = first.path.stat().st_mtime_ns
    second = zoo_model("resnet18", opts, cache_dir=tmp_path)
    assert first.built and not second.built
    assert second.path == first.path and second.path.stat().st_mtime_ns == stamp
    assert second.build_time_s == pytest.approx(first.build_time_s)  # recorded by the first build
    forced = zoo_model("resnet18", opts, cache_dir=tmp_path, force=True)
    assert forced.built and forced.path.read_bytes() == first.path.read_bytes()
    other = zoo_model("resnet18", {**opts, "input_size": 64}, cache_dir=tmp_path)
    assert other.built and other.path != first.path
    assert sorted(b["options"]["input_size"] for b in cache.cached_builds(tmp_path)) == [32, 64]


def test_env_var_chooses_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "env-cache"))
    m = zoo_model("resnet18", TINY["resnet18"])
    assert m.path.parent == tmp_path / "env-cache"


def test_atomic_write_renames_a_complete_file(tmp_path, monkeypatch):
    target = tmp_path / "model.onnx"
    seen = []
    real_fsync = os.fsync

    def fsync(fd):  # the moment before the rename: the data is in a temporary file only
        seen.append((target.exists(), [p.stat().st_size for p in tmp_path.glob(".model.onnx.*.tmp")]))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    cache.atomic_write(target, b"x" * 1000)
    assert seen == [(False, [1000])]
    assert target.read_bytes() == b"x" * 1000 and not list(tmp_path.glob(".*.tmp"))


def test_a_failed_write_leaves_neither_file_nor_temporary(tmp_path, monkeypatch):
    def no_space(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(InputError) as info:
        zoo_model("resnet18", TINY["resnet18"], cache_dir=tmp_path)
    assert "No space left on device" in str(info.value) and str(tmp_path) in str(info.value)
    assert list(tmp_path.iterdir()) == []


def test_a_build_killed_mid_write_leaves_no_model_and_the_next_call_builds(tmp_path):
    code = ("import os, sys\n"
            "from ipa_ext.inference import zoo_model\n"
            "os.fsync = lambda fd: os._exit(9)\n"  # die hard after writing, before the rename
            f"zoo_model('resnet18', {TINY['resnet18']!r}, cache_dir=sys.argv[1])\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert list(tmp_path.glob("*.onnx")) == [] and cache.cached_builds(tmp_path) == []
    assert len(list(tmp_path.glob(".*.tmp"))) == 1  # the dead build's leftover, never read
    m = zoo_model("resnet18", TINY["resnet18"], cache_dir=tmp_path)
    assert m.built and create_session(m.path).run(None, {"input": np.zeros((1, 3, 32, 32), np.float32)})
