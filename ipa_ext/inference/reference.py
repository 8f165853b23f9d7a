"""A plain numpy forward pass of a spec: calibrates the seeded weights and checks the ONNX graph.

Slow and simple on purpose (NCHW, float32, no fusion); it runs at small input sizes only.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .spec import Add, Concat, Conv, Detect, GlobalPool, Layer, Linear, MaxPool, Net, Upsample

BN_EPS = 1e-5
Weights = Mapping[str, np.ndarray]


def conv2d(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, stride: int, pad: int) -> np.ndarray:
    """Conv2d as a batched matrix product over im2col patches (none needed for 1x1)."""
    out_c, in_c, k, _ = w.shape
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    if k == 1:
        x = x[:, :, ::stride, ::stride]
        n, _, ho, wo = x.shape
        patches = x.reshape(n, in_c, ho * wo)
    else:
        win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]  # n, c, ho, wo, k, k
        n, _, ho, wo = win.shape[:4]
        patches = win.transpose(0, 1, 4, 5, 2, 3).reshape(n, in_c * k * k, ho * wo)
    y = np.matmul(w.reshape(out_c, -1), patches).reshape(n, out_c, ho, wo)
    return y if b is None else y + b[None, :, None, None]


def activation(x: np.ndarray, act: str | None) -> np.ndarray:
    if act == "relu":
        return np.maximum(x, 0)
    if act == "silu":
        return x * sigmoid(x)
    return x


def batch_norm(z: np.ndarray, w: Weights, name: str) -> np.ndarray:
    scale = w[f"{name}.bn.scale"] / np.sqrt(w[f"{name}.bn.var"] + BN_EPS)
    shift = w[f"{name}.bn.shift"] - w[f"{name}.bn.mean"] * scale
    return z * scale[None, :, None, None] + shift[None, :, None, None]


def conv_pre_bn(layer: Conv, w: Weights, x: np.ndarray) -> np.ndarray:
    bias = w[f"{layer.name}.bias"] if layer.bias else None
    return conv2d(x, w[f"{layer.name}.weight"], bias, layer.stride, layer.padding)


def conv_finish(layer: Conv, w: Weights, z: np.ndarray) -> np.ndarray:
    if layer.bn:
        z = batch_norm(z, w, layer.name)
    return activation(z, layer.act).astype(np.float32)


def maxpool(x: np.ndarray, k: int, stride: int, pad: int) -> np.ndarray:
    if pad:
        x = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), constant_values=-np.inf)
    return sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride].max(axis=(-2, -1))


def sigmoid(x: np.ndarray) -> np.ndarray:
    return (0.5 * (1 + np.tanh(0.5 * x))).astype(x.dtype)


def detect(layer: Detect, w: Weights, xs: list[np.ndarray]) -> np.ndarray:
    rows = []
    no = layer.outputs_per_anchor
    for i, x in enumerate(xs):
        n, _, ny, nx = x.shape
        na = len(layer.anchors[i])
        y = conv2d(x, w[f"{layer.name}.{i}.weight"], w[f"{layer.name}.{i}.bias"], 1, 0)
        y = sigmoid(y.reshape(n, na, no, ny, nx).transpose(0, 1, 3, 4, 2))
        gy, gx = np.meshgrid(np.arange(ny), np.arange(nx), indexing="ij")
        grid = np.stack([gx, gy], axis=-1)[None, None].astype(np.float32)  # (1, 1, ny, nx, 2) as x, y
        anchors = np.asarray(layer.anchors[i], dtype=np.float32)[None, :, None, None, :]
        xy = (y[..., 0:2] * 2 - 0.5 + grid) * layer.strides[i]
        wh = (y[..., 2:4] * 2) ** 2 * anchors
        rows.append(np.concatenate([xy, wh, y[..., 4:]], axis=-1).reshape(n, -1, no))
    return np.concatenate(rows, axis=1).astype(np.float32)


def apply(layer: Layer, w: Weights, acts: Mapping[str, np.ndarray]) -> np.ndarray:
    """The output of one layer given the activations computed so far."""
    if isinstance(layer, Conv):
        return conv_finish(layer, w, conv_pre_bn(layer, w, acts[layer.x.name]))
    if isinstance(layer, Add):
        return activation(acts[layer.a.name] + acts[layer.b.name], layer.act)
    if isinstance(layer, MaxPool):
        return maxpool(acts[layer.x.name], layer.kernel, layer.stride, layer.padding)
    if isinstance(layer, Concat):
        return np.concatenate([acts[x.name] for x in layer.xs], axis=1)
    if isinstance(layer, Upsample):
        return acts[layer.x.name].repeat(layer.scale, axis=2).repeat(layer.scale, axis=3)
    if isinstance(layer, GlobalPool):
        return acts[layer.x.name].mean(axis=(2, 3))
    if isinstance(layer, Linear):
        return acts[layer.x.name] @ w[f"{layer.name}.weight"].T + w[f"{layer.name}.bias"]
    if isinstance(layer, Detect):
        return detect(layer, w, [acts[x.name] for x in layer.xs])
    raise TypeError(f"unknown layer {layer!r}")


def forward(net: Net, w: Weights, x: np.ndarray,
            before: Callable[[Layer, dict[str, np.ndarray]], None] | None = None) -> dict[str, np.ndarray]:
    """Every activation of ``net`` on ``x`` by tensor name; ``before(layer, acts)`` runs first per layer."""
    acts: dict[str, np.ndarray] = {net.input.name: x.astype(np.float32)}
    for layer in net.layers:
        if before is not None:
            before(layer, acts)
        acts[layer.out.name] = apply(layer, w, acts)
    return acts
