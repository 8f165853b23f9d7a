"""Checks a user's ONNX file before a stage uses it, and reads its input's name, shape and type.

Every problem is an :class:`~ipa_ext.errors.InputError` naming the file and the field.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import InputError
from .deps import require


@dataclass(frozen=True)
class OnnxInfo:
    """A checked model's single input (dims: int when fixed, a name or None when free) and outputs."""

    path: Path
    input_name: str
    input_shape: tuple[int | str | None, ...]
    input_dtype: str
    output_names: tuple[str, ...]
    opset: int

    @property
    def fixed_batch(self) -> int | None:
        """The batch size the model insists on, or None when the batch dimension is free."""
        dim = self.input_shape[0] if self.input_shape else None
        return dim if isinstance(dim, int) and dim > 0 else None

    @property
    def image_size(self) -> int | None:
        """H (= W) of a (N, C, H, W) input with fixed square spatial dims, else None."""
        if len(self.input_shape) != 4:
            return None
        h, w = self.input_shape[2:]
        return h if isinstance(h, int) and h > 0 and h == w else None


class _Errors:
    """Errors naming the ONNX file, or the config that names it, and a field."""

    def __init__(self, file: Path, config: str | Path | None) -> None:
        self.file, self.config = file, config

    def __call__(self, message: str, field: str) -> InputError:
        if self.config is not None:
            return InputError(f"{self.file}: {message}", path=self.config, where=field)
        return InputError(message, path=self.file, where=field)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _dims(value_info: Any) -> tuple[int | str | None, ...]:
    dims = []
    for d in value_info.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
    return tuple(dims)


def _load(onnx: Any, file: Path, err: _Errors, field: str) -> Any:
    if not file.exists():
        raise err("file not found", field)
    if file.is_dir():
        raise err("is a folder, not an ONNX file", field)
    try:
        model = onnx.load(str(file), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise err(f"not a readable ONNX model ({_first_line(exc)})", field) from None
    if not model.graph.node:
        raise err("not an ONNX model: it has no graph nodes", field)
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise err(f"not a valid ONNX model: {_first_line(exc)}", field) from None
    return model


def _check_size(shape: tuple[int | str | None, ...], name: str, input_size: int, err: _Errors, field: str) -> None:
    shown = "x".join(str(d) if d is not None else "?" for d in shape)
    if len(shape) != 4:
        raise err(f"input {name!r} is {shown}, not an image batch (N, C, H, W); input_size does not apply", field)
    for dim in shape[2:]:
        if isinstance(dim, int) and dim > 0 and dim != input_size:
            raise err(f"input {name!r} is {shown}; it does not take input_size {input_size}", field)


def check_onnx(file: str | Path, *, input_size: int | None = None, config: str | Path | None = None,
               where: str = "model", size_where: str = "input_size") -> OnnxInfo:
    """Load and check ``file``: it exists, parses, passes the ONNX checker, has exactly one
    input and, when ``input_size`` is given, an (N, C, H, W) input whose fixed H and W equal it.

    Errors name ``config`` (when the file comes from a config) or the file, and the field
    ``where`` (file problems) or ``size_where`` (a size mismatch).
    """
    onnx = require("onnx", "checking an ONNX model")
    path = Path(file)
    err = _Errors(path, config)
    model = _load(onnx, path, err, where)
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        names = ", ".join(repr(i.name) for i in inputs) or "none"
        raise err(f"has {len(inputs)} inputs ({names}); a pipeline stage feeds exactly one", where)
    inp = inputs[0]
    elem = inp.type.tensor_type.elem_type
    try:
        dtype = str(onnx.helper.tensor_dtype_to_np_dtype(elem))
    except Exception:
        raise err(f"input {inp.name!r} is not a tensor of a numeric type", where) from None
    shape = _dims(inp)
    if input_size is not None:
        _check_size(shape, inp.name, input_size, err, size_where)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    return OnnxInfo(path, inp.name, shape, dtype, tuple(o.name for o in model.graph.output), opset)
