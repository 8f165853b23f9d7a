"""IPA's LSTM training data and fit: 10 s bucket windows of a damped trace, Keras's Adam on MSE + L1.

:func:`ipa_samples` builds IPA's samples (``prediction-modules/lstm-module/train.py``): from
a per-second series with the zero seconds dropped, every ``stride_s`` seconds the maxima of
the last ``timesteps`` buckets of ``bucket_s`` seconds, and the peak of the next ``horizon_s``
seconds as the target. :func:`train` fits the model as Keras's ``fit`` does: shuffled
mini-batches every epoch (the last partial batch kept), one Adam step per batch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from . import lstm

SECONDS_PER_DAY = 86400


@dataclass(frozen=True)
class TrainSettings:
    """IPA's model and fit settings (``create_model`` and ``fit`` in upstream's ``train.py``)."""

    units: int = 25
    timesteps: int = 12
    bucket_s: int = 10
    horizon_s: int = 20
    stride_s: int = 10
    activation: str = "relu"
    epochs: int = 30
    batch_size: int = 64
    learning_rate: float = 1e-3
    l1: float = 1e-5
    """L1 weight on the input kernel only (Keras ``kernel_regularizer``)."""
    seed: int = 7

    @property
    def history_s(self) -> int:
        return self.timesteps * self.bucket_s


def clean_series(series: np.ndarray, damping: int | None = 8) -> np.ndarray:
    """IPA's preparation: each second integer-divided by ``damping``, then zero seconds dropped
    (upstream's filter for the trace's missing half-hours; the series is stitched over them)."""
    s = np.asarray(series, dtype=np.int64)
    if damping is not None and damping > 1:
        s = s // int(damping)
    return s[s != 0]


def ipa_samples(series: np.ndarray, timesteps: int = 12, bucket_s: int = 10, horizon_s: int = 20,
                stride_s: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Inputs (N, timesteps) and targets (N,) from a per-second series, as IPA's ``get_x_y``.

    For ``i`` in ``range(0, len - timesteps*bucket_s, stride_s)``: ``x`` is the maxima of the
    ``timesteps`` buckets from ``i``, ``y`` the maximum of the next ``horizon_s`` seconds
    (shorter near the end). A series of at most ``timesteps*bucket_s`` seconds gives none.
    """
    s = np.asarray(series, dtype=float)
    hist = timesteps * bucket_s
    starts = np.arange(0, max(len(s) - hist, 0), stride_s)
    if len(starts) == 0:
        return np.zeros((0, timesteps)), np.zeros(0)
    if stride_s % bucket_s == 0:  # buckets align: one reduction over whole buckets
        nb = -(-len(s) // bucket_s)
        padded = np.full(nb * bucket_s, -np.inf)
        padded[: len(s)] = s
        bm = padded.reshape(nb, bucket_s).max(axis=1)
        k = starts // bucket_s
        x = bm[k[:, None] + np.arange(timesteps)]
    else:
        x = np.array([[s[i + j * bucket_s: i + (j + 1) * bucket_s].max() for j in range(timesteps)]
                      for i in starts])
    cummax_windows = np.lib.stride_tricks.sliding_window_view(
        np.concatenate([s, np.full(horizon_s - 1, -np.inf)]), horizon_s)
    y = cummax_windows[starts + hist].max(axis=1)
    return x, y


@dataclass
class Adam:
    """Keras's Adam (``keras/optimizers/adam.py``): epsilon added to sqrt(v) without bias correction."""

    learning_rate: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    epsilon: float = 1e-7
    iterations: int = 0
    m: dict[str, np.ndarray] = field(default_factory=dict)
    v: dict[str, np.ndarray] = field(default_factory=dict)

    def step(self, params: lstm.Params, grads: lstm.Params) -> None:
        self.iterations += 1
        t = self.iterations
        alpha = self.learning_rate * np.sqrt(1 - self.beta2 ** t) / (1 - self.beta1 ** t)
        for k, g in grads.items():
            m = self.m.setdefault(k, np.zeros_like(g))
            v = self.v.setdefault(k, np.zeros_like(g))
            m += (1 - self.beta1) * (g - m)
            v += (1 - self.beta2) * (g * g - v)
            params[k] -= alpha * m / (np.sqrt(v) + self.epsilon)


def loss_and_grads(params: lstm.Params, x: np.ndarray, y: np.ndarray, settings: TrainSettings
                   ) -> tuple[float, lstm.Params]:
    """Mean squared error over the batch plus the L1 penalty of the input kernel, and its gradients."""
    pred, cache = lstm.forward(params, x, settings.activation)
    err = pred - y
    loss = float(np.mean(err * err)) + settings.l1 * float(np.abs(params["kernel"]).sum())
    grads = lstm.backward(params, cache, 2.0 * err / len(y))
    grads["kernel"] += settings.l1 * np.sign(params["kernel"])
    return loss, grads


@dataclass
class TrainResult:
    params: lstm.Params
    epoch_losses: list[float]
    """Mean training loss of each epoch (as Keras prints it)."""
    steps: int
    seconds: float


class TrainingDiverged(ArithmeticError):
    """The loss became NaN or infinite."""


def train(x: np.ndarray, y: np.ndarray, settings: TrainSettings = TrainSettings(),
          progress: Callable[[int, float, float], None] | None = None) -> TrainResult:
    """Fit from Keras-style initial weights drawn with ``settings.seed``; the same inputs and
    seed give the same weights. ``progress(epoch, loss, seconds)`` is called after each epoch."""
    rng = np.random.Generator(np.random.PCG64(settings.seed))
    params = lstm.init_params(settings.units, rng)
    opt = Adam(settings.learning_rate)
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    start = time.perf_counter()
    losses: list[float] = []
    for epoch in range(1, settings.epochs + 1):
        order = rng.permutation(len(y))
        total = 0.0
        for b in range(0, len(y), settings.batch_size):
            idx = order[b: b + settings.batch_size]
            loss, grads = loss_and_grads(params, x[idx], y[idx], settings)
            if not np.isfinite(loss):
                raise TrainingDiverged(f"the training loss became {loss} in epoch {epoch}")
            opt.step(params, grads)
            total += loss * len(idx)
        losses.append(total / len(y))
        if progress is not None:
            progress(epoch, losses[-1], time.perf_counter() - start)
    return TrainResult(params, losses, opt.iterations, time.perf_counter() - start)


class TraceTooShort(ValueError):
    """A span of a trace that yields no training sample; the message says what it holds."""


def trace_samples(series: np.ndarray, start_s: int, end_s: int, damping: int | None,
                  settings: TrainSettings = TrainSettings()) -> tuple[np.ndarray, np.ndarray]:
    """IPA's samples from seconds ``[start_s, end_s)`` of a trace (damped, zero seconds dropped).

    :class:`TraceTooShort` when the trace ends before ``end_s`` or the span keeps too few
    non-zero seconds for one input window and a second to predict.
    """
    if end_s > len(series):
        raise TraceTooShort(f"the trace holds {len(series)} seconds ({len(series) / SECONDS_PER_DAY:.2f} days), "
                            f"the span needs {end_s}")
    kept = clean_series(series[start_s:end_s], damping)
    need = settings.history_s + 1
    if len(kept) < need:
        raise TraceTooShort(f"seconds {start_s}-{end_s} hold {len(kept)} non-zero seconds after damping; "
                            f"the input window needs at least {need} ({settings.timesteps} buckets of "
                            f"{settings.bucket_s} s and one second to predict)")
    return ipa_samples(kept, settings.timesteps, settings.bucket_s, settings.horizon_s, settings.stride_s)
