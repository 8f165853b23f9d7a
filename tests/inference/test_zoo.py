"""The model zoo's architecture specs: layer structure, parameter and MAC counts against the
published figures, options, the cache folder and key. Nothing here needs onnx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ipa_ext.errors import InputError, UnknownNameError
from ipa_ext.inference import cache, zoo
from ipa_ext.inference.spec import Add, Concat, Conv, Detect, MaxPool

# torchvision's documented num_params.
TORCHVISION = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
               "resnet101": 44_549_160, "resnet152": 60_192_808}
# YOLOv5 v6.0's release table, Params (M).
YOLOV5_M = {"yolov5n": 1.9, "yolov5s": 7.2, "yolov5m": 21.2, "yolov5l": 46.5, "yolov5x": 86.7}


@pytest.mark.parametrize("name", TORCHVISION)
def test_resnet_parameter_counts_are_torchvisions(name):
    count = zoo.param_count(name)
    assert abs(count - TORCHVISION[name]) <= 0.01 * TORCHVISION[name]
    assert count == TORCHVISION[name]  # the layer structure is the same, so the count is exact


@pytest.mark.parametrize("name", YOLOV5_M)
def test_yolov5_parameter_counts_are_within_5_percent_of_the_release_table(name):
    count = zoo.param_count(name)
    assert abs(count - YOLOV5_M[name] * 1e6) <= 0.05 * YOLOV5_M[name] * 1e6


def test_yolov5_counts_equal_the_model_summaries_exactly():
    """YOLOv5's printed model summaries: n and s unfused (1,872,157 and 7,235,389); m, l and x as
    often quoted after BN fusion, which drops BN's scale and turns its shift into a conv bias."""
    assert zoo.param_count("yolov5n") == 1_872_157
    assert zoo.param_count("yolov5s") == 7_235_389
    fused = {"yolov5m": 21_172_173, "yolov5l": 46_533_693, "yolov5x": 86_705_005}
    for name, count in fused.items():
        net = zoo.spec(name)
        assert net.stored_params(fold_bn=True) == count, name
        bn_channels = sum(l.out.channels for l in net.layers if isinstance(l, Conv) and l.bn)
        assert net.params() == count + bn_channels


def test_published_figures_in_the_registry_are_met():
    for name, e in zoo.ZOO.items():
        assert abs(zoo.param_count(name) - e.published_params) <= e.tolerance * e.published_params, name


@pytest.mark.parametrize("name,gmacs", [("resnet18", 1.81), ("resnet50", 4.09), ("resnet152", 11.51)])
def test_resnet_macs_match_torchvisions_gflops(name, gmacs):
    assert zoo.spec(name).macs() / 1e9 == pytest.approx(gmacs, rel=0.01)


def test_yolov5s_flops_match_the_release_table():
    assert 2 * zoo.spec("yolov5s").macs() / 1e9 == pytest.approx(16.5, rel=0.01)  # 16.5 GFLOPs at 640


def test_resnet50_is_v1_5_stride_on_the_3x3_conv():
    convs = {l.name: l for l in zoo.spec("resnet50").layers if isinstance(l, Conv)}
    assert convs["layer2.0.conv1"].stride == 1 and convs["layer2.0.conv1"].kernel == 1
    assert convs["layer2.0.conv2"].stride == 2 and convs["layer2.0.conv2"].kernel == 3
    assert convs["layer2.0.downsample"].stride == 2 and convs["layer2.0.downsample"].kernel == 1
    assert convs["layer1.0.conv3"].out.channels == 256  # expansion 4
    assert convs["conv1"].kernel == 7 and convs["conv1"].stride == 2 and convs["conv1"].padding == 3
    assert "layer1.1.downsample" not in convs


@pytest.mark.parametrize("name,blocks", [("resnet18", (2, 2, 2, 2)), ("resnet34", (3, 4, 6, 3)),
                                         ("resnet50", (3, 4, 6, 3)), ("resnet101", (3, 4, 23, 3)),
                                         ("resnet152", (3, 8, 36, 3))])
def test_resnet_blocks_per_stage(name, blocks):
    adds = [l.name for l in zoo.spec(name).layers if isinstance(l, Add)]
    assert tuple(sum(a.startswith(f"layer{s}.") for a in adds) for s in (1, 2, 3, 4)) == blocks


def test_resnet_shapes_at_224():
    net = zoo.spec("resnet50")
    shapes = {l.name: l.out.shape for l in net.layers}
    assert shapes["maxpool"] == (64, 56, 56)
    assert shapes["layer4.2.add"] == (2048, 7, 7)
    assert net.output.name == "logits" and net.output.shape == (1000,)


@pytest.mark.parametrize("name,repeats,p_channels", [
    ("yolov5n", (1, 2, 3, 1), (64, 128, 256)), ("yolov5s", (1, 2, 3, 1), (128, 256, 512)),
    ("yolov5m", (2, 4, 6, 2), (192, 384, 768)), ("yolov5l", (3, 6, 9, 3), (256, 512, 1024)),
    ("yolov5x", (4, 8, 12, 4), (320, 640, 1280))])
def test_yolov5_depth_and_width_multipliers(name, repeats, p_channels):
    net = zoo.spec(name)
    adds = [l.name for l in net.layers if isinstance(l, Add)]
    assert tuple(sum(a.startswith(f"layer{i}.m.") for a in adds) for i in (2, 4, 6, 8)) == repeats
    detect = net.layers[-1]
    assert isinstance(detect, Detect)
    assert [x.channels for x in detect.xs] == list(p_channels)
    assert [x.shape[1:] for x in detect.xs] == [(80, 80), (40, 40), (20, 20)]  # P3/8, P4/16, P5/32
    assert net.output.name == "detections" and net.output.shape == (25200, 85)


def test_yolov5_structure():
    net = zoo.spec("yolov5s")
    layers = {l.name: l for l in net.layers}
    stem = layers["layer0"]
    assert (stem.kernel, stem.stride, stem.padding, stem.act) == (6, 2, 2, "silu")
    assert all(l.act == "silu" and l.bn for l in net.layers if isinstance(l, Conv))
    pools = [l for l in net.layers if isinstance(l, MaxPool)]
    assert [p.name for p in pools] == ["layer9.pool0", "layer9.pool1", "layer9.pool2"]  # SPPF
    assert all((p.kernel, p.stride, p.padding) == (5, 1, 2) for p in pools)
    assert len(layers["layer9.cat"].xs) == 4
    # the neck's C3 blocks have no shortcut; the backbone's do
    assert "layer13.m.0.add" not in layers and "layer2.m.0.add" in layers
    assert [x.name for x in layers["layer22"].xs] == ["layer21", "layer10"]  # PAN: cat head P5
    assert isinstance(layers["layer12"], Concat)


def test_width_option_makes_small_models():
    full, tiny = zoo.spec("resnet18"), zoo.spec("resnet18", {"width": 0.25, "input_size": 32})
    assert tiny.layers[0].out.channels == 16
    assert tiny.params() < full.params() / 10
    assert zoo.spec("yolov5n", {"width": 0.5}).layers[0].out.channels == 8


def test_num_classes_changes_the_head_only():
    assert zoo.param_count("resnet18", {"num_classes": 10}) == TORCHVISION["resnet18"] - 990 * 513
    assert zoo.spec("yolov5s", {"num_classes": 3, "input_size": 320}).output.shape == (6300, 8)


def test_counts_need_no_weights_and_ignore_input_size():
    assert zoo.param_count("yolov5x", {"input_size": 320}) == zoo.param_count("yolov5x")
    assert zoo.spec("resnet18", {"input_size": 448}).macs() == pytest.approx(4 * zoo.spec("resnet18").macs(), rel=0.01)


@pytest.mark.parametrize("options,field,needle", [
    ({"input_size": 100}, "input_size", "multiple of 32"),
    ({"input_size": 16}, "input_size", "between 32 and"),
    ({"input_size": "640"}, "input_size", "integer"),
    ({"input_size": True}, "input_size", "integer"),
    ({"width": 0}, "width", "(0, 4]"),
    ({"width": float("nan")}, "width", "(0, 4]"),
    ({"num_classes": 0}, "num_classes", "between 1"),
    ({"fold_bn": "yes"}, "fold_bn", "true or false"),
    ({"depth": 2}, "depth", "unknown zoo option"),
])
def test_bad_options_name_the_file_and_field(options, field, needle):
    with pytest.raises(InputError) as info:
        zoo.model_options("yolov5s", options, path="pipeline.yaml", where="stages.detect.variants.small")
    msg = str(info.value)
    assert msg.startswith(f"pipeline.yaml: stages.detect.variants.small.{field}: "), msg
    assert needle in msg


def test_unknown_name_lists_the_zoo():
    with pytest.raises(UnknownNameError) as info:
        zoo.model_options("resnet19", path="p.yaml", where="zoo")
    assert "resnet18" in str(info.value) and "yolov5x" in str(info.value)
    assert str(info.value).startswith("p.yaml: zoo: unknown zoo model 'resnet19'")


def test_resnet_accepts_any_size_yolo_only_multiples_of_32():
    assert zoo.model_options("resnet18", {"input_size": 100}).input_size == 100
    assert zoo.model_options("yolov5n", {"input_size": 96}).input_size == 96


def test_cache_folder_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(cache.ENV_VAR, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache.resolve_cache_dir() == tmp_path / "home" / ".cache" / "ipa-ext" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache.resolve_cache_dir() == tmp_path / "xdg" / "ipa-ext" / "models"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/ignored")  # the XDG spec: relative paths are invalid
    assert cache.resolve_cache_dir() == tmp_path / "home" / ".cache" / "ipa-ext" / "models"
    monkeypatch.setenv(cache.ENV_VAR, str(tmp_path / "env"))
    assert cache.resolve_cache_dir() == tmp_path / "env"
    assert cache.resolve_cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_cache_key_covers_name_options_seed_and_builder(monkeypatch):
    opts = zoo.model_options("resnet18")
    key = cache.cache_key("resnet18", opts, 0)
    assert key == cache.cache_key("resnet18", zoo.model_options("resnet18", {"input_size": 224}), 0)
    others = {cache.cache_key("resnet34", opts, 0), cache.cache_key("resnet18", opts, 1),
              cache.cache_key("resnet18", zoo.model_options("resnet18", {"input_size": 256}), 0),
              cache.cache_key("resnet18", zoo.model_options("resnet18", {"fold_bn": False}), 0),
              cache.cache_key("resnet18", zoo.model_options("resnet18", {"width": 0.5}), 0)}
    monkeypatch.setattr(cache, "BUILDER_VERSION", zoo.BUILDER_VERSION + 1)
    others.add(cache.cache_key("resnet18", opts, 0))
    assert key not in others and len(others) == 6


def test_importing_the_core_and_the_cli_does_not_import_onnx():
    code = ("import sys, ipa_ext, ipa_ext.cli, ipa_ext.inference, ipa_ext.inference.graph, "
            "ipa_ext.inference.runtime, ipa_ext.inference.onnxfile\n"
            "bad = [m for m in ('onnx', 'onnxruntime') if sys.modules.get(m) is not None]\n"
            "assert not bad, bad\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=Path(__file__).parent)
    assert proc.returncode == 0, proc.stderr
