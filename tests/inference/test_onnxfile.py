"""A user's ONNX file: checks that name the file and field, and the onnxruntime helpers
(session threading options, random input batches)."""

from __future__ import annotations

import numpy as np
import pytest

from support.serve_extra import require_serve

require_serve()

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from ipa_ext.errors import InputError  # noqa: E402
from ipa_ext.inference import check_onnx, create_session, random_batch, zoo_model  # noqa: E402
from ipa_ext.inference.runtime import concrete_shape  # noqa: E402


@pytest.fixture(scope="module")
def zoo_file(tmp_path_factory):
    return zoo_model("resnet18", {"input_size": 32, "width": 0.25}, cache_dir=tmp_path_factory.mktemp("m")).path


def relu_model(path, shape, *, inputs=1, elem=TensorProto.FLOAT):
    """A one-node model per input (Relu) with the given input shape."""
    names = [f"x{i}" for i in range(inputs)]
    nodes = [helper.make_node("Relu", [n], [f"y{i}"]) for i, n in enumerate(names)]
    graph = helper.make_graph(nodes, "relu", [helper.make_tensor_value_info(n, elem, shape) for n in names],
                              [helper.make_tensor_value_info(f"y{i}", elem, shape) for i in range(inputs)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_a_zoo_model_passes_and_its_input_is_read(zoo_file):
    info = check_onnx(zoo_file, input_size=32)
    assert info.input_name == "input" and info.input_dtype == "float32"
    assert info.input_shape == ("batch", 3, 32, 32)
    assert info.fixed_batch is None and info.image_size == 32
    assert info.output_names == ("logits",) and info.opset == 17
    assert check_onnx(zoo_file).image_size == 32  # no size asked: nothing to compare


def test_a_size_mismatch_names_the_file_and_field(zoo_file):
    with pytest.raises(InputError) as info:
        check_onnx(zoo_file, input_size=224)
    assert str(info.value) == f"{zoo_file}: input_size: input 'input' is batchx3x32x32; it does not take input_size 224"
    with pytest.raises(InputError) as info:
        check_onnx(zoo_file, input_size=224, config="pipeline.yaml", where="stages.a.variants.v.model",
                   size_where="stages.a.variants.v.input_size")
    assert str(info.value).startswith(f"pipeline.yaml: stages.a.variants.v.input_size: {zoo_file}: input 'input'")


@pytest.mark.parametrize("content,needle", [
    (None, "file not found"),
    (b"", "no graph nodes"),
    (b"\xff\xfe this is not protobuf \x00\x01\x02" * 10, "not a readable ONNX model"),
    (b"name: resnet\nlayers: 18\n", "not"),
])
def test_bad_files_are_one_input_error_naming_the_file(tmp_path, content, needle):
    path = tmp_path / "model.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        check_onnx(path)
    assert str(info.value).startswith(f"{path}: model: "), str(info.value)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)


def test_a_truncated_model_is_rejected(tmp_path, zoo_file):
    half = tmp_path / "half.onnx"
    half.write_bytes(zoo_file.read_bytes()[: zoo_file.stat().st_size // 2])
    with pytest.raises(InputError) as info:
        check_onnx(half)
    assert str(info.value).startswith(f"{half}: model: not a")


def test_a_folder_is_not_a_model(tmp_path):
    with pytest.raises(InputError, match="is a folder"):
        check_onnx(tmp_path)


def test_a_model_with_two_inputs_is_rejected(tmp_path):
    path = relu_model(tmp_path / "two.onnx", ["N", 3, 8, 8], inputs=2)
    with pytest.raises(InputError, match=r"has 2 inputs \('x0', 'x1'\); a pipeline stage feeds exactly one"):
        check_onnx(path)


def test_free_spatial_dims_take_any_input_size_and_a_non_image_input_takes_none(tmp_path):
    free = relu_model(tmp_path / "free.onnx", ["N", 3, "H", "W"])
    info = check_onnx(free, input_size=96)
    assert info.input_shape == ("N", 3, "H", "W") and info.image_size is None
    flat = relu_model(tmp_path / "flat.onnx", ["N", 128])
    assert check_onnx(flat).input_shape == ("N", 128)
    with pytest.raises(InputError, match="not an image batch"):
        check_onnx(flat, input_size=96)


def test_a_fixed_batch_is_reported(tmp_path):
    info = check_onnx(relu_model(tmp_path / "b1.onnx", [1, 3, 16, 16]), input_size=16)
    assert info.fixed_batch == 1


def test_session_options_are_the_ones_asked_for(zoo_file):
    session = create_session(zoo_file, threads=2)
    so = session.get_session_options()
    assert so.intra_op_num_threads == 2 and so.inter_op_num_threads == 1
    assert so.execution_mode == ort.ExecutionMode.ORT_SEQUENTIAL
    assert so.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert session.get_providers() == ["CPUExecutionProvider"]


def test_bad_thread_counts_and_unloadable_files(tmp_path, zoo_file):
    with pytest.raises(InputError, match="threads: must be an integer >= 1"):
        create_session(zoo_file, threads=0)
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x00garbage")
    with pytest.raises(InputError) as info:
        create_session(junk)
    assert str(info.value).startswith(f"{junk}: model: onnxruntime cannot load the model")


def test_random_batch_fills_free_dims_and_keeps_dtypes(tmp_path, zoo_file):
    session = create_session(zoo_file)
    feeds = random_batch(session, 4, seed=1)
    assert feeds["input"].shape == (4, 3, 32, 32) and feeds["input"].dtype == np.float32
    assert not np.array_equal(feeds["input"], random_batch(session, 4, seed=2)["input"])
    free = create_session(relu_model(tmp_path / "free.onnx", ["N", 3, "H", "W"]))
    assert random_batch(free, 2, input_size=40)["x0"].shape == (2, 3, 40, 40)
    with pytest.raises(ValueError, match="give an input size"):
        random_batch(free, 2)
    ints = create_session(relu_model(tmp_path / "int.onnx", ["N", 5], elem=TensorProto.INT32))
    assert random_batch(ints, 3)["x0"].dtype == np.int32
    fixed = create_session(relu_model(tmp_path / "b1.onnx", [1, 3, 8, 8]))
    with pytest.raises(ValueError, match="fixed at 1"):
        random_batch(fixed, 2)


def test_concrete_shape():
    assert concrete_shape(["N", 3, "H", "W"], 5, 64) == (5, 3, 64, 64)
    assert concrete_shape([None, 3, 224, 224], 2) == (2, 3, 224, 224)
    assert concrete_shape([1, 10], 1) == (1, 10)
