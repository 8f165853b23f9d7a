"""Variants that name real models (``model: FILE.onnx``, ``zoo: NAME``): parsed and checked at load
time without onnx, ignored by the simulation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ipa_ext.cli import main
from ipa_ext.config.pipeline_files import load_pipeline
from ipa_ext.errors import ProfileError

PIPELINE = """\
name: tiny
stages:
  - name: det
    input_size: 64
    variants:
      - {name: small, accuracy: 40, zoo: yolov5n, width: 0.25}
      - {name: big, accuracy: 60, zoo: yolov5s, input_size: 96, seed: 3}
  - name: cls
    variants:
      - {name: mine, accuracy: 70, model: models/mine.onnx, input_size: 32}
      - {name: plain, accuracy: 76}
"""
PROFILES = """stage,variant,cpu,batch,latency_s,throughput_rps
det,small,1,1,0.1,10
det,big,1,1,0.3,3.3
cls,mine,1,1,0.05,20
cls,plain,1,1,0.08,12
"""


def write(tmp_path: Path, pipeline: str = PIPELINE) -> tuple[Path, Path]:
    pp = tmp_path / "pipeline.yaml"
    pp.write_text(pipeline)
    cp = tmp_path / "profiles.csv"
    cp.write_text(PROFILES)
    return pp, cp


def test_model_fields_are_parsed_with_stage_defaults(tmp_path):
    pp, cp = write(tmp_path)
    pipe = load_pipeline(pp, cp)
    small, big = pipe.models[("det", "small")], pipe.models[("det", "big")]
    assert (small.kind, small.source, small.input_size, dict(small.options), small.seed) == \
        ("zoo", "yolov5n", 64, {"width": 0.25}, 0)
    assert (big.input_size, big.seed) == (96, 3)  # the variant's own size wins over the stage's
    assert small.zoo_options() == {"width": 0.25, "input_size": 64}
    mine = pipe.models[("cls", "mine")]
    assert mine.kind == "file" and mine.path == tmp_path / "models" / "mine.onnx" and mine.input_size == 32
    assert ("cls", "plain") not in pipe.models
    assert small.label == "zoo yolov5n input_size=64 width=0.25" and mine.label == "file models/mine.onnx input_size=32"
    assert mine.where == "stages[1].variants.mine.model"


@pytest.mark.parametrize("change,field,message", [
    ("zoo: yolov5n, width: 0.25", "stages[0].variants.small.zoo", "unknown zoo model 'yolo9'"),
    ("input_size: 64", "stages[0].input_size", "needs a multiple of 32, got 50"),
    ("width: 0.25", "stages[0].variants.small.width", "applies to a model"),
])
def test_bad_model_fields_name_the_file_and_field(tmp_path, change, field, message):
    text = PIPELINE
    if field.endswith(".zoo"):
        text = text.replace(change, "zoo: yolo9")
    elif field == "stages[0].input_size":
        text = text.replace(change, "input_size: 50")
    else:
        text = text.replace("zoo: yolov5n, width: 0.25", "width: 0.25")
    pp, cp = write(tmp_path, text)
    with pytest.raises(ProfileError) as exc:
        load_pipeline(pp, cp)
    assert str(exc.value).startswith(f"{pp}: {field}: ") and message in str(exc.value)


@pytest.mark.parametrize("variant,field,message", [
    ("{name: mine, accuracy: 70, model: a.onnx, zoo: resnet18}", "stages[1].variants.mine", "not both"),
    ("{name: mine, accuracy: 70, model: a.onnx, width: 0.5}", "stages[1].variants.mine.width", "is a zoo option"),
    ("{name: mine, accuracy: 70, model: 7}", "stages[1].variants.mine.model", "must be the path of an ONNX file"),
    ("{name: mine, accuracy: 70, zoo: resnet18, widht: 0.5}", "stages[1].variants.mine.widht", "unknown key"),
    ("{name: mine, accuracy: 70, zoo: resnet18, input_size: -3}", "stages[1].variants.mine.input_size",
     "must be a whole number >= 1"),
    ("{name: mine, accuracy: 70, zoo: resnet18, seed: x}", "stages[1].variants.mine.seed", "whole number >= 0"),
    ("{name: mine, accuracy: 70, zoo: resnet18, width: 9}", "stages[1].variants.mine.width", "(0, 4]"),
])
def test_bad_variant_models(tmp_path, variant, field, message):
    text = PIPELINE.replace("{name: mine, accuracy: 70, model: models/mine.onnx, input_size: 32}", variant)
    pp, cp = write(tmp_path, text)
    with pytest.raises(ProfileError) as exc:
        load_pipeline(pp, cp)
    assert str(exc.value).startswith(f"{pp}: {field}: ") and message in str(exc.value)


def test_validate_prints_one_line_for_an_unknown_zoo_name(tmp_path, capsys):
    pp, cp = write(tmp_path, PIPELINE.replace("zoo: yolov5s", "zoo: yolov5xl"))
    cfg = tmp_path / "config.yaml"
    cfg.write_text("pipeline: pipeline.yaml\nprofiles: profiles.csv\n")
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert err.startswith(f"ipa-ext: error: {pp}: stages[0].variants.big.zoo: unknown zoo model 'yolov5xl'")


def test_an_inline_pipeline_resolves_model_files_against_the_config(tmp_path):
    from ipa_ext.config.config import load_config

    body = textwrap.indent(PIPELINE, "  ")
    (tmp_path / "profiles.csv").write_text(PROFILES)
    cfg = tmp_path / "sub" / "config.yaml"
    cfg.parent.mkdir()
    cfg.write_text(f"pipeline:\n{body}profiles: ../profiles.csv\n")
    config = load_config(cfg)
    assert config.pipeline.models[("cls", "mine")].path == tmp_path / "sub" / "models" / "mine.onnx"


def test_loading_and_optimizing_never_imports_onnx(tmp_path):
    """The simulation ignores the model fields and works without the serve extra (onnx blocked)."""
    pp, cp = write(tmp_path)
    cfg = tmp_path / "config.yaml"
    cfg.write_text("pipeline: pipeline.yaml\nprofiles: profiles.csv\nsla_s: 5\nthreshold: 1\n")
    code = textwrap.dedent(f"""
        import sys
        sys.modules["onnx"] = None; sys.modules["onnxruntime"] = None   # import would fail
        from ipa_ext.cli import main
        assert main(["optimize", {str(cfg)!r}, "--rate", "2"]) == 0
        from ipa_ext.inference import zoo
        assert "yolov5n" in zoo.ZOO
        assert sys.modules["onnx"] is None and sys.modules["onnxruntime"] is None
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("ok")


def test_model_references_are_read_with_the_pipeline_loaders_rules(tmp_path):
    """Found by the fuzz suite: an invalid ``!!timestamp`` (month 13) crashed the model-reference
    reader (exit 70) after the pipeline loader had accepted it as text."""
    pp, cp = write(tmp_path, PIPELINE.replace("name: tiny", "name: !!timestamp 2001-13-45"))
    pipe = load_pipeline(pp, cp)
    assert pipe.name == "2001-13-45"
    assert pipe.models[("det", "small")].source == "yolov5n"
