"""Turn a spec and its weights into an ONNX model (opset 17, dynamic batch dimension).

BatchNorm is folded into the preceding conv's weight and bias unless ``fold_bn=False``,
which keeps BatchNormalization nodes. Needs the ``serve`` extra (onnx).
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .deps import require
from .reference import BN_EPS
from .spec import Add, Concat, Conv, Detect, GlobalPool, Linear, MaxPool, Net, Upsample

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17, so older onnxruntime releases load the files


class _Graph:
    """Nodes and initializers under construction."""

    def __init__(self, onnx: Any) -> None:
        self.helper = onnx.helper
        self.numpy_helper = onnx.numpy_helper
        self.nodes: list[Any] = []
        self.inits: list[Any] = []

    def init(self, name: str, array: np.ndarray) -> str:
        self.inits.append(self.numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def const(self, name: str, array: np.ndarray) -> str:
        value = self.numpy_helper.from_array(np.asarray(array), name)
        self.nodes.append(self.helper.make_node("Constant", [], [name], name=name, value=value))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(self.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output

    def act(self, x: str, act: str | None, out: str) -> str:
        if act == "relu":
            return self.node("Relu", [x], out)
        if act == "silu":
            return self.node("Mul", [x, self.node("Sigmoid", [x], f"{out}/sigmoid")], out)
        raise ValueError(f"unknown activation {act!r}")


def _folded(layer: Conv, w: Mapping[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray | None]:
    name = layer.name
    weight, bias = w[f"{name}.weight"], w.get(f"{name}.bias")
    if not layer.bn:
        return weight, bias
    scale = w[f"{name}.bn.scale"].astype(np.float64) / np.sqrt(w[f"{name}.bn.var"].astype(np.float64) + BN_EPS)
    shift = w[f"{name}.bn.shift"] - w[f"{name}.bn.mean"] * scale
    if bias is not None:
        shift = shift + bias * scale
    return weight * scale[:, None, None, None], shift


def _conv(g: _Graph, layer: Conv, w: Mapping[str, np.ndarray], fold_bn: bool) -> None:
    name, out = layer.name, layer.out.name
    keep_bn = layer.bn and not fold_bn
    weight, bias = (w[f"{name}.weight"], w.get(f"{name}.bias")) if keep_bn else _folded(layer, w)
    inputs = [layer.x.name, g.init(f"{name}.weight", weight)]
    if bias is not None:
        inputs.append(g.init(f"{name}.bias", bias))
    y = out if not keep_bn and layer.act is None else f"{out}/conv"
    k, s, p = layer.kernel, layer.stride, layer.padding
    g.node("Conv", inputs, y, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
    if keep_bn:
        params = [g.init(f"{name}.bn.{part}", w[f"{name}.bn.{part}"]) for part in ("scale", "shift", "mean", "var")]
        y = g.node("BatchNormalization", [y, *params], out if layer.act is None else f"{out}/bn", epsilon=BN_EPS)
    if layer.act is not None:
        g.act(y, layer.act, out)


def _detect(g: _Graph, layer: Detect, w: Mapping[str, np.ndarray]) -> None:
    no, levels = layer.outputs_per_anchor, []
    for i, x in enumerate(layer.xs):
        p, (ny, nx), na = f"{layer.name}.{i}", x.shape[1:], len(layer.anchors[i])
        y = g.node("Conv", [x.name, g.init(f"{p}.weight", w[f"{p}.weight"]), g.init(f"{p}.bias", w[f"{p}.bias"])],
                   f"{p}/conv", kernel_shape=[1, 1])
        y = g.node("Reshape", [y, g.const(f"{p}/shape5", np.array([0, na, no, ny, nx], np.int64))], f"{p}/reshape")
        y = g.node("Sigmoid", [g.node("Transpose", [y], f"{p}/transpose", perm=[0, 1, 3, 4, 2])], f"{p}/sigmoid")
        split = g.const(f"{p}/split", np.array([2, 2, no - 4], np.int64))
        parts = [f"{p}/xy", f"{p}/wh", f"{p}/scores"]
        g.nodes.append(g.helper.make_node("Split", [y, split], parts, name=f"{p}/split_node", axis=-1))
        gy, gx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        offset = (np.stack([gx, gy], -1)[None, None] - 0.5) * layer.strides[i]
        scale = np.array(2.0 * layer.strides[i], np.float32)
        xy = g.node("Add", [g.node("Mul", [parts[0], g.const(f"{p}/xy_scale", scale)], f"{p}/xy_scaled"),
                            g.const(f"{p}/grid", offset.astype(np.float32))], f"{p}/xy_px")
        anchors4 = 4.0 * np.asarray(layer.anchors[i], np.float32)[None, :, None, None, :]
        wh = g.node("Mul", [g.node("Mul", [parts[1], parts[1]], f"{p}/wh_sq"), g.const(f"{p}/anchors", anchors4)],
                    f"{p}/wh_px")
        y = g.node("Concat", [xy, wh, parts[2]], f"{p}/boxes", axis=-1)
        levels.append(g.node("Reshape", [y, g.const(f"{p}/shape3", np.array([0, -1, no], np.int64))], f"{p}/rows"))
    g.node("Concat", levels, layer.out.name, axis=1)


def _emit(g: _Graph, net: Net, w: Mapping[str, np.ndarray], fold_bn: bool) -> None:
    for layer in net.layers:
        out = layer.out.name
        if isinstance(layer, Conv):
            _conv(g, layer, w, fold_bn)
        elif isinstance(layer, Add):
            y = g.node("Add", [layer.a.name, layer.b.name], out if layer.act is None else f"{out}/sum")
            if layer.act is not None:
                g.act(y, layer.act, out)
        elif isinstance(layer, MaxPool):
            k, s, p = layer.kernel, layer.stride, layer.padding
            g.node("MaxPool", [layer.x.name], out, kernel_shape=[k, k], strides=[s, s], pads=[p, p, p, p])
        elif isinstance(layer, Concat):
            g.node("Concat", [x.name for x in layer.xs], out, axis=1)
        elif isinstance(layer, Upsample):
            scales = g.const(f"{out}/scales", np.array([1, 1, layer.scale, layer.scale], np.float32))
            g.node("Resize", [layer.x.name, "", scales], out, mode="nearest",
                   coordinate_transformation_mode="asymmetric", nearest_mode="floor")
        elif isinstance(layer, GlobalPool):
            g.node("Flatten", [g.node("GlobalAveragePool", [layer.x.name], f"{out}/pool")], out, axis=1)
        elif isinstance(layer, Linear):
            inputs = [layer.x.name, g.init(f"{layer.name}.weight", w[f"{layer.name}.weight"]),
                      g.init(f"{layer.name}.bias", w[f"{layer.name}.bias"])]
            g.node("Gemm", inputs, out, transB=1)
        elif isinstance(layer, Detect):
            _detect(g, layer, w)
        else:
            raise TypeError(f"unknown layer {layer!r}")


def to_onnx(net: Net, weights: Mapping[str, np.ndarray], *, fold_bn: bool = True,
            metadata: Mapping[str, str] | None = None) -> Any:
    """An ``onnx.ModelProto`` of ``net`` with ``weights``; input ``input`` (batch, C, H, W)."""
    onnx = require("onnx", "building an ONNX model")
    from .. import __version__

    g = _Graph(onnx)
    _emit(g, net, weights, fold_bn)
    h = onnx.helper
    inp = h.make_tensor_value_info(net.input.name, onnx.TensorProto.FLOAT, ["batch", *net.input.shape])
    assert net.output is not None
    out = h.make_tensor_value_info(net.output.name, onnx.TensorProto.FLOAT, ["batch", *net.output.shape])
    graph = h.make_graph(g.nodes, net.name, [inp], [out], initializer=g.inits)
    model = h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)], producer_name="ipa-ext",
                         producer_version=__version__, doc_string=f"{net.name}: seeded random weights (ipa-ext zoo)")
    model.ir_version = IR_VERSION
    if metadata:
        h.set_model_props(model, dict(metadata))
    return model
