"""onnxruntime sessions held to a thread budget (N intra-op threads, one inter-op, sequential,
no spinning), and random input batches of the right shape and type."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InputError
from .deps import require

DTYPES = {
    "tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64,
    "tensor(int64)": np.int64, "tensor(int32)": np.int32, "tensor(int8)": np.int8,
    "tensor(uint8)": np.uint8, "tensor(bool)": np.bool_,
}


def session_options(threads: int = 1) -> Any:
    """``onnxruntime.SessionOptions`` for ``threads`` intra-op threads, 1 inter-op, sequential, no spinning."""
    ort = require("onnxruntime", "running an ONNX model")
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise InputError(f"must be an integer >= 1, got {threads!r}", where="threads")
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")
    so.add_session_config_entry("session.inter_op.allow_spinning", "0")
    so.log_severity_level = 3  # errors only
    return so


def create_session(model: str | Path | bytes, *, threads: int = 1,
                   providers: Sequence[str] = ("CPUExecutionProvider",)) -> Any:
    """An ``onnxruntime.InferenceSession`` of ``model`` (a path or serialized bytes).

    A file onnxruntime cannot load is an :class:`InputError` naming it.
    """
    ort = require("onnxruntime", "running an ONNX model")
    so = session_options(threads)
    source = model if isinstance(model, bytes) else str(model)
    try:
        return ort.InferenceSession(source, sess_options=so, providers=list(providers))
    except Exception as exc:  # onnxruntime raises its own pybind exception types
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        where = None if isinstance(model, bytes) else model
        raise InputError(f"onnxruntime cannot load the model: {reason}", path=where, where="model") from None


def concrete_shape(dims: Sequence[Any], batch: int, input_size: int | None = None) -> tuple[int, ...]:
    """``dims`` with the batch dimension set to ``batch`` and, for an image input (N, C, H, W)
    with free H and W, those set to ``input_size``; a free dimension left over is a ValueError."""
    shape = []
    for i, dim in enumerate(dims):
        if i == 0:
            if isinstance(dim, int) and dim > 0 and dim != batch:
                raise ValueError(f"the model's batch dimension is fixed at {dim}; cannot feed a batch of {batch}")
            shape.append(batch)
        elif isinstance(dim, int) and dim > 0:
            shape.append(dim)
        elif len(dims) == 4 and i >= 2 and input_size is not None:
            shape.append(input_size)
        else:
            raise ValueError(f"dimension {i} of {list(dims)} is not fixed; give an input size")
    return tuple(shape)


def random_batch(session: Any, batch: int, *, input_size: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """A random feed for every input of ``session``: N(0, 1) floats, small non-negative integers."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in session.get_inputs():
        dtype = DTYPES.get(inp.type)
        if dtype is None:
            raise ValueError(f"input {inp.name!r} has type {inp.type}, which random_batch does not make")
        shape = concrete_shape(inp.shape, batch, input_size)
        if np.issubdtype(dtype, np.floating):
            feeds[inp.name] = rng.standard_normal(shape, dtype=np.float32).astype(dtype)
        elif dtype is np.bool_:
            feeds[inp.name] = rng.integers(0, 2, shape).astype(np.bool_)
        else:
            feeds[inp.name] = rng.integers(0, 100, shape).astype(dtype)
    return feeds
