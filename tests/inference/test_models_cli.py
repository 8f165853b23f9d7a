"""``ipa-ext models list | build`` as a user runs them, and the missing ``serve`` extra."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from ipa_ext.cli import main
from ipa_ext.inference import zoo

from support.cli import cli, one_error_line
from support.serve_extra import require_serve

TINY = ["--input-size", "32", "--width", "0.25"]
EXTRA_LINE = "needs the 'serve' extra: pip install 'ipa-ext[serve]'"


def test_list_shows_every_zoo_model_with_spec_counts(capsys, tmp_path):
    code, out, err = cli(capsys, "models", "list", "--cache-dir", str(tmp_path))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["name", "family", "params_M", "published_M", "GMACs", "input", "cached", "size_MB"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    assert list(rows) == list(zoo.ZOO)
    assert rows["resnet50"][1:4] == ["resnet", "25.56", "25.56"] and rows["resnet50"][5:] == ["224", "no", "-"]
    assert rows["yolov5x"][2] == "86.75" and rows["yolov5x"][5] == "640"
    assert lines[-1] == f"cache: {tmp_path} (0 files, 0.0 MB)"


def test_list_json_and_input_size(capsys, tmp_path):
    code, out, _ = cli(capsys, "models", "list", "--json", "--input-size", "320", "--cache-dir", str(tmp_path))
    doc = json.loads(out)
    assert code == 0 and doc["cache_dir"] == str(tmp_path)
    rows = {r["name"]: r for r in doc["models"]}
    assert rows["yolov5s"]["params"] == zoo.param_count("yolov5s")
    assert rows["yolov5s"]["macs"] == zoo.spec("yolov5s", {"input_size": 320}).macs()
    assert all(r["input_size"] == 320 and r["cached"] is False and r["size_bytes"] is None for r in rows.values())


def test_build_then_list_then_build_again(capsys, tmp_path):
    require_serve()
    args = ["--cache-dir", str(tmp_path), *TINY]
    code, out, err = cli(capsys, "models", "build", "resnet18", "resnet34", *args)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["name", "input", "params_M", "size_MB", "build_s", "status", "path"]
    assert [line.split()[0] for line in lines[1:]] == ["resnet18", "resnet34"]
    assert all(line.split()[5] == "built" for line in lines[1:])
    code, out, _ = cli(capsys, "models", "build", "resnet18", "--json", *args)
    (record,) = json.loads(out)
    assert code == 0 and record["built"] is False and record["build_time_s"] > 0
    assert record["params"] == zoo.param_count("resnet18", {"input_size": 32, "width": 0.25})
    assert record["input"] == {"name": "input", "shape": ["batch", 3, 32, 32]}
    code, out, _ = cli(capsys, "models", "list", "--json", "--cache-dir", str(tmp_path))
    rows = {r["name"]: r for r in json.loads(out)["models"]}
    assert rows["resnet18"]["cached"] is False  # the default options (224, full width) are not built
    assert [b["options"]["width"] for b in rows["resnet18"]["cached_builds"]] == [0.25]
    code, out, _ = cli(capsys, "models", "list", "--input-size", "32", "--cache-dir", str(tmp_path))
    assert "no (+1)" in out.splitlines()[1] and "2 files" in out.splitlines()[-1]
    code, out, _ = cli(capsys, "models", "build", "resnet18", "--force", "--json", *args)
    assert json.loads(out)[0]["built"] is True


@pytest.mark.parametrize("argv,needle", [
    (["models", "build", "resnet19"], "unknown zoo model 'resnet19' (available: resnet101,"),
    (["models", "build", "yolov5n", "--input-size", "100"], "--input-size: yolov5n needs a multiple of 32, got 100"),
    (["models", "build", "yolov5n", "--width", "-1"], "--width: must be a number in (0, 4]"),
    (["models", "build", "yolov5n", "--seed", "-2"], "--seed: must be >= 0"),
    (["models", "list", "--input-size", "8"], "--input-size: must be between 32 and 4096, got 8"),
])
def test_bad_arguments_are_one_line_exit_2(capsys, tmp_path, argv, needle):
    code, _, err = cli(capsys, *argv, "--cache-dir", str(tmp_path))
    assert code == 2
    assert needle in one_error_line(err)
    assert list(tmp_path.iterdir()) == []  # nothing built


def test_build_needs_a_name(capsys):
    with pytest.raises(SystemExit) as info:
        main(["models", "build"])
    assert info.value.code == 2
    assert "the following arguments are required: NAME" in one_error_line(capsys.readouterr().err)


def test_an_unwritable_cache_folder_is_one_line(capsys, tmp_path):
    require_serve()  # without the extra, that is the error
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code, _, err = cli(capsys, "models", "build", "resnet18", *TINY, "--cache-dir", str(blocker / "sub"))
    assert code == 2 and "cannot create the model cache folder" in one_error_line(err)


def test_build_without_the_serve_extra_says_which_extra(capsys, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)  # what an environment without onnx gives
    code, _, err = cli(capsys, "models", "build", "resnet18", *TINY, "--cache-dir", str(tmp_path / "new"))
    assert code == 2
    assert one_error_line(err) == f"ipa-ext: error: building zoo model resnet18 {EXTRA_LINE}"
    assert list(tmp_path.iterdir()) == []  # not even the cache folder
    code, out, _ = cli(capsys, "models", "list", "--cache-dir", str(tmp_path))  # listing needs no extra
    assert code == 0 and "resnet152" in out


def test_a_process_without_onnx_lists_and_refuses_to_build(tmp_path):
    code = ("import sys\n"
            "sys.modules['onnx'] = None; sys.modules['onnxruntime'] = None\n"
            "from ipa_ext.cli import main\n"
            "assert main(['models', 'list', '--cache-dir', sys.argv[1]]) == 0\n"
            "sys.exit(main(['models', 'build', 'yolov5n', '--cache-dir', sys.argv[1]]))\n")
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2, proc.stderr
    assert "yolov5x" in proc.stdout
    assert proc.stderr.strip() == f"ipa-ext: error: building zoo model yolov5n {EXTRA_LINE}"


def test_the_cli_names_the_cache_variable_the_cache_reads():
    from ipa_ext.cli import models_cmd
    from ipa_ext.inference import cache

    assert models_cmd.CACHE_ENV_VAR == cache.ENV_VAR
