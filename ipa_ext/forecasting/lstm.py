"""IPA's LSTM in numpy: one Keras-style LSTM layer (gates i, f, c, o) and a linear head, with backprop.

Parameters are a dict of arrays named and shaped as Keras exports them:
``kernel (D, 4H)``, ``recurrent_kernel (H, 4H)``, ``bias (4H,)``, ``dense_kernel (H, 1)``,
``dense_bias (1,)``. Each step computes ``z = x_t W + h U + b``; ``i, f, o`` are sigmoids,
``g = act(z_c)``, ``c = f c + i g``, ``h = o act(c)``; the output is ``h_T V + d``.
IPA uses ``act = relu`` in both places; ``tanh`` (Keras's default) is supported too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

PARAM_NAMES = ("kernel", "recurrent_kernel", "bias", "dense_kernel", "dense_bias")
"""Keras's export order of the LSTM layer's and the Dense layer's weights."""

Params = dict[str, np.ndarray]


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(z, 0.0)


def _relu_grad(z: np.ndarray, _out: np.ndarray) -> np.ndarray:
    return (z > 0).astype(z.dtype)  # 0 at exactly 0, as TensorFlow


def _tanh_grad(_z: np.ndarray, out: np.ndarray) -> np.ndarray:
    return 1.0 - out * out


ACTIVATIONS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray, np.ndarray], np.ndarray]]] = {
    "relu": (_relu, _relu_grad),
    "tanh": (np.tanh, _tanh_grad),
}
"""Activation name -> (function, derivative from the pre-activation and the output)."""


def sigmoid(z: np.ndarray) -> np.ndarray:
    """The logistic function, written with tanh so it never overflows."""
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def param_shapes(units: int, input_dim: int = 1) -> dict[str, tuple[int, ...]]:
    """The shape of every parameter of an LSTM with ``units`` cells and a 1-output head."""
    h4 = 4 * units
    return {"kernel": (input_dim, h4), "recurrent_kernel": (units, h4), "bias": (h4,),
            "dense_kernel": (units, 1), "dense_bias": (1,)}


def count_params(units: int, input_dim: int = 1) -> int:
    """Number of trainable parameters (IPA's 25 units, 1 input: 2,726)."""
    return sum(int(np.prod(s)) for s in param_shapes(units, input_dim).values())


def _glorot_uniform(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    limit = np.sqrt(6.0 / (shape[0] + shape[1]))
    return rng.uniform(-limit, limit, size=shape)


def _orthogonal(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Keras's orthogonal initialiser: QR of a normal (max, min) matrix, signs fixed, transposed."""
    rows, cols = shape
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    q, r = np.linalg.qr(a)
    q = q * np.sign(np.diag(r))
    return q.T if rows < cols else q


def init_params(units: int, rng: np.random.Generator, input_dim: int = 1) -> Params:
    """Keras's initial weights: glorot-uniform kernels, orthogonal recurrent kernel,
    zero biases except the forget gate's (``unit_forget_bias``: ones)."""
    shapes = param_shapes(units, input_dim)
    bias = np.zeros(4 * units)
    bias[units:2 * units] = 1.0
    return {
        "kernel": _glorot_uniform(rng, shapes["kernel"]),  # type: ignore[arg-type]
        "recurrent_kernel": _orthogonal(rng, shapes["recurrent_kernel"]),  # type: ignore[arg-type]
        "bias": bias,
        "dense_kernel": _glorot_uniform(rng, shapes["dense_kernel"]),  # type: ignore[arg-type]
        "dense_bias": np.zeros(1),
    }


@dataclass
class Cache:
    """What the backward pass needs from the forward pass."""

    x: np.ndarray
    h_prev: list[np.ndarray]
    c_prev: list[np.ndarray]
    gates: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]  # i, f, z_c, g, o
    c: list[np.ndarray]
    act_c: list[np.ndarray]
    h_last: np.ndarray
    activation: str


def _as_batch(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=float)
    return x[..., None] if x.ndim == 2 else x


def forward(params: Mapping[str, np.ndarray], x: np.ndarray, activation: str = "relu") -> tuple[np.ndarray, Cache]:
    """Outputs (B,) for inputs (B, T) or (B, T, D), and the cache for :func:`backward`."""
    act = ACTIVATIONS[activation][0]
    x = _as_batch(x)
    batch, steps, _ = x.shape
    units = params["recurrent_kernel"].shape[0]
    u = params["recurrent_kernel"]
    xw = x @ params["kernel"] + params["bias"]  # (B, T, 4H): the input part of every step at once
    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    cache = Cache(x, [], [], [], [], [], h, activation)
    for t in range(steps):
        z = xw[:, t] + h @ u
        i = sigmoid(z[:, :units])
        f = sigmoid(z[:, units:2 * units])
        zc = z[:, 2 * units:3 * units]
        g = act(zc)
        o = sigmoid(z[:, 3 * units:])
        cache.h_prev.append(h)
        cache.c_prev.append(c)
        c = f * c + i * g
        ac = act(c)
        h = o * ac
        cache.gates.append((i, f, zc, g, o))
        cache.c.append(c)
        cache.act_c.append(ac)
    cache.h_last = h
    y = h @ params["dense_kernel"] + params["dense_bias"]
    return y[:, 0], cache


def predict(params: Mapping[str, np.ndarray], x: np.ndarray, activation: str = "relu") -> np.ndarray:
    """Outputs (B,) for inputs (B, T) or (B, T, D)."""
    return forward(params, x, activation)[0]


def backward(params: Mapping[str, np.ndarray], cache: Cache, dy: np.ndarray) -> Params:
    """Gradients of a loss with respect to every parameter, given ``dy`` = dloss/doutput (B,)."""
    grad = ACTIVATIONS[cache.activation][1]
    units = params["recurrent_kernel"].shape[0]
    u_t = params["recurrent_kernel"].T
    dy = np.asarray(dy, dtype=float).reshape(-1, 1)
    grads: Params = {
        "dense_kernel": cache.h_last.T @ dy,
        "dense_bias": dy.sum(axis=0),
    }
    dh = dy @ params["dense_kernel"].T
    dc = np.zeros_like(dh)
    steps = len(cache.c)
    dz_all = np.empty((dh.shape[0], steps, 4 * units))
    du = np.zeros_like(params["recurrent_kernel"])
    for t in reversed(range(steps)):
        i, f, zc, g, o = cache.gates[t]
        ac = cache.act_c[t]
        do = dh * ac
        dc = dc + dh * o * grad(cache.c[t], ac)
        dz = dz_all[:, t]
        dz[:, :units] = dc * g * i * (1.0 - i)
        dz[:, units:2 * units] = dc * cache.c_prev[t] * f * (1.0 - f)
        dz[:, 2 * units:3 * units] = dc * i * grad(zc, g)
        dz[:, 3 * units:] = do * o * (1.0 - o)
        du += cache.h_prev[t].T @ dz
        dh = dz @ u_t
        dc = dc * f
    x = cache.x
    grads["kernel"] = x.reshape(-1, x.shape[2]).T @ dz_all.reshape(-1, 4 * units)
    grads["recurrent_kernel"] = du
    grads["bias"] = dz_all.sum(axis=(0, 1))
    return grads
