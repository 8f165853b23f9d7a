"""Seeded random weights for a spec, calibrated on a random batch so activations stay near
unit size at any depth (README, "Model zoo", says how)."""

from __future__ import annotations

import numpy as np

from . import reference
from .spec import Conv, Detect, Layer, Linear, Net

CALIBRATION_BATCH = 2


def _normal(rng: np.random.Generator, shape: tuple[int, ...], std: float) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32) * np.float32(std)


def _second_moment(x: np.ndarray) -> float:
    return max(float(np.mean(np.square(x, dtype=np.float64))), 1e-12)


def _channel_stats(z: np.ndarray) -> tuple[np.ndarray, float]:
    """Per-channel means and the variance around them pooled over channels (unbiased).

    Deep layers see few positions per channel on a small calibration batch; pooling keeps
    the variance estimate sound there.
    """
    mean = z.mean(axis=(0, 2, 3), dtype=np.float64)
    samples = z.shape[0] * z.shape[2] * z.shape[3]
    centred = z - mean[None, :, None, None].astype(np.float32)
    var = float(np.sum(np.square(centred, dtype=np.float64)) / (z.shape[1] * max(samples - 1, 1)))
    return mean.astype(np.float32), max(var, 1e-6)


def _conv(layer: Conv, w: dict[str, np.ndarray], rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    c = layer.out.channels
    std = 1.0 / np.sqrt(layer.fan_in * _second_moment(x))
    w[f"{layer.name}.weight"] = _normal(rng, (c, layer.x.channels, layer.kernel, layer.kernel), std)
    if layer.bias:
        w[f"{layer.name}.bias"] = _normal(rng, (c,), 0.1)
    z = reference.conv_pre_bn(layer, w, x)
    if layer.bn:
        w[f"{layer.name}.bn.scale"] = rng.uniform(0.75, 1.25, c).astype(np.float32)
        w[f"{layer.name}.bn.shift"] = _normal(rng, (c,), 0.1)
        mean, var = _channel_stats(z)
        w[f"{layer.name}.bn.mean"] = mean
        w[f"{layer.name}.bn.var"] = np.full(c, var, dtype=np.float32)
    return reference.conv_finish(layer, w, z)


def _linear(layer: Linear, w: dict[str, np.ndarray], rng: np.random.Generator, x: np.ndarray) -> None:
    std = 1.0 / np.sqrt(layer.x.channels * _second_moment(x))
    w[f"{layer.name}.weight"] = _normal(rng, (layer.out.channels, layer.x.channels), std)
    w[f"{layer.name}.bias"] = _normal(rng, (layer.out.channels,), 0.1)


def _detect(layer: Detect, w: dict[str, np.ndarray], rng: np.random.Generator, xs: list[np.ndarray]) -> None:
    for i, x in enumerate(xs):
        c_in, c_out = x.shape[1], layer.level_channels(i)
        w[f"{layer.name}.{i}.weight"] = _normal(rng, (c_out, c_in, 1, 1), 1.0 / np.sqrt(c_in * _second_moment(x)))
        w[f"{layer.name}.{i}.bias"] = _normal(rng, (c_out,), 0.1)


def _last_use(net: Net) -> dict[str, int]:
    last: dict[str, int] = {}
    for i, layer in enumerate(net.layers):
        for t in _inputs(layer):
            last[t] = i
    return last


def _inputs(layer: Layer) -> list[str]:
    if hasattr(layer, "xs"):
        return [x.name for x in layer.xs]
    if hasattr(layer, "a"):
        return [layer.a.name, layer.b.name]
    return [layer.x.name]


def seeded_weights(calibration: Net, seed: int, *, batch: int = CALIBRATION_BATCH) -> dict[str, np.ndarray]:
    """Weights by name (``conv1.weight``, ``conv1.bn.var``, ...) for every net with ``calibration``'s layers.

    ``calibration`` is the spec at a small input size (weights do not depend on it); the
    same seed gives the same weights on the same machine.
    """
    rng = np.random.default_rng(seed)
    data = np.random.default_rng([seed, 1]).standard_normal((batch, *calibration.input.shape), dtype=np.float32)
    w: dict[str, np.ndarray] = {}
    acts = {calibration.input.name: data}
    last = _last_use(calibration)
    for i, layer in enumerate(calibration.layers):
        if isinstance(layer, Conv):
            out = _conv(layer, w, rng, acts[layer.x.name])
        else:
            if isinstance(layer, Linear):
                _linear(layer, w, rng, acts[layer.x.name])
            elif isinstance(layer, Detect):
                _detect(layer, w, rng, [acts[x.name] for x in layer.xs])
            out = reference.apply(layer, w, acts)
        acts[layer.out.name] = out
        for name in _inputs(layer):
            if last.get(name) == i:
                acts.pop(name, None)
    return w
