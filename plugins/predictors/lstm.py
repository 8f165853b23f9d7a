"""The ``lstm`` load predictor: IPA's LSTM (25 units, twelve 10 s bucket maxima in, the next
20 s peak out), numpy-only, with the weights trained on the Twitter trace or a file of one's own.

Options: ``weights``, the path of a weights file written by ``ipa-ext predictor train``
(relative to the config's folder; default: the shipped Twitter weights); ``scale``
(default 1, as IPA): the model sees the history divided by ``scale`` and its output is
multiplied by it, so weights trained on a damped trace (the shipped ones: damping 8) can
serve an undamped load at the scale they learnt (``scale: 8``). The model sees
the last ``timesteps`` buckets; a shorter history is padded at the front with its oldest
bucket. A negative output (the linear head is not clipped, upstream neither) becomes 0
in the forecaster.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ipa_ext import hookimpl
from ipa_ext.config.numeric import option
from ipa_ext.predictors import Predictor


class LstmPredictor(Predictor):
    name = "lstm"
    PATH_OPTIONS = ("weights",)
    """Options holding a file path; the runner resolves relative ones against the config's folder."""

    def __init__(self, weights: Any = None, scale: Any = 1) -> None:
        from ipa_ext.forecasting import weights as weights_file  # numpy model code only when used

        self.scale = option("scale", scale, positive=True, maximum=1e9)
        if weights is not None and (not isinstance(weights, str) or not weights):
            raise ValueError(f"weights: expected the path of a weights file, got {weights!r:.80}")
        self.weights = weights_file.load(weights) if weights is not None else weights_file.load_shipped()
        self.source = str(weights) if weights is not None else "shipped:twitter-lstm"

    def predict(self, history_rps: Sequence[float]) -> float:
        steps = self.weights.timesteps
        h = np.asarray(history_rps[-steps:], dtype=float)
        if len(h) < steps:
            h = np.concatenate([np.full(steps - len(h), h[0]), h])
        return self.scale * float(self.weights.predict(h[None, :] / self.scale)[0])


@hookimpl
def register_predictors(register) -> None:
    register("lstm", LstmPredictor)
