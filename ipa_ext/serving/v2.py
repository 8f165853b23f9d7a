"""The Open Inference Protocol (KServe V2) tensors: JSON data and the binary tensor extension, both ways."""

from __future__ import annotations

import json
from typing import Any, Mapping, Sequence

import numpy as np

DATATYPES = {"FP32": np.float32, "FP64": np.float64, "FP16": np.float16, "INT64": np.int64, "INT32": np.int32,
             "INT16": np.int16, "INT8": np.int8, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
             "UINT64": np.uint64, "BOOL": np.bool_}
ORT_TYPES = {"tensor(float)": "FP32", "tensor(double)": "FP64", "tensor(float16)": "FP16",
             "tensor(int64)": "INT64", "tensor(int32)": "INT32", "tensor(int8)": "INT8", "tensor(uint8)": "UINT8",
             "tensor(bool)": "BOOL"}
HEADER_LENGTH = "inference-header-content-length"


class ProtocolError(ValueError):
    """A request that does not follow the protocol (answered with 400)."""


def datatype_of(array: np.ndarray) -> str:
    for name, dtype in DATATYPES.items():
        if array.dtype == dtype:
            return name
    raise ProtocolError(f"no V2 datatype for {array.dtype}")


def split_body(body: bytes, headers: Mapping[str, str]) -> tuple[dict[str, Any], bytes]:
    """The JSON header of a request or response and the binary part after it."""
    size = headers.get(HEADER_LENGTH)
    try:
        n = int(size) if size is not None else len(body)
        head = json.loads(body[:n]) if n else {}
    except (ValueError, UnicodeDecodeError) as exc:
        raise ProtocolError(f"bad JSON: {exc}") from None
    if not isinstance(head, dict):
        raise ProtocolError("the body must be a JSON object")
    return head, body[n:]


def _tensor(spec: Any, blob: memoryview, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise ProtocolError("each input needs a name")
    dtype = DATATYPES.get(spec.get("datatype"))
    if dtype is None:
        raise ProtocolError(f"input {spec['name']!r}: unsupported datatype {spec.get('datatype')!r}")
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise ProtocolError(f"input {spec['name']!r}: shape must be a list of whole numbers >= 0")
    size = (spec.get("parameters") or {}).get("binary_data_size")
    try:
        if size is not None:
            if not isinstance(size, int) or offset + size > len(blob):
                raise ProtocolError(f"input {spec['name']!r}: binary_data_size {size!r} is beyond the body")
            array = np.frombuffer(blob[offset:offset + size], dtype=dtype).reshape(shape)
            offset += size
        else:
            array = np.asarray(spec.get("data"), dtype=dtype).reshape(shape)
    except (ValueError, TypeError) as exc:
        raise ProtocolError(f"input {spec['name']!r}: data does not fit shape {shape}: {exc}") from None
    return spec["name"], array, offset


def decode_inputs(head: Mapping[str, Any], binary: bytes) -> dict[str, np.ndarray]:
    """The input tensors of an inference request, by name (binary chunks in input order)."""
    inputs = head.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise ProtocolError("'inputs' must be a non-empty list")
    blob, offset, out = memoryview(binary), 0, {}
    for spec in inputs:
        name, array, offset = _tensor(spec, blob, offset)
        out[name] = array
    return out


def encode(head: dict[str, Any], tensors: Sequence[tuple[str, np.ndarray]], key: str, *,
           binary: bool) -> tuple[bytes, dict[str, str]]:
    """A request (``key="inputs"``) or response (``"outputs"``) body and its headers."""
    specs, chunks = [], []
    for name, array in tensors:
        spec: dict[str, Any] = {"name": name, "shape": list(array.shape), "datatype": datatype_of(array)}
        if binary:
            raw = np.ascontiguousarray(array).tobytes()
            spec["parameters"] = {"binary_data_size": len(raw)}
            chunks.append(raw)
        else:
            spec["data"] = array.ravel().tolist()
        specs.append(spec)
    text = json.dumps({**head, key: specs}, separators=(",", ":")).encode()
    if not binary:
        return text, {"content-type": "application/json"}
    return text + b"".join(chunks), {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(text))}


def wants_binary_output(head: Mapping[str, Any]) -> bool:
    if bool((head.get("parameters") or {}).get("binary_data_output")):
        return True
    return any(isinstance(o, dict) and (o.get("parameters") or {}).get("binary_data")
               for o in head.get("outputs") or [])


def decode_outputs(head: Mapping[str, Any], binary: bytes) -> dict[str, np.ndarray]:
    """The output tensors of an inference response, by name."""
    return decode_inputs({"inputs": head.get("outputs")}, binary)
