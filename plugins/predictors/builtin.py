"""Built-in load predictors: ``reactive``, ``max``, ``mean`` and ``moving-window-max``.

Each sees the history aggregated into buckets by their maximum (see
:mod:`ipa_ext.predictors`), oldest first:

=================  ==========================================================
name               prediction
=================  ==========================================================
reactive           the last bucket
max                the largest bucket of the whole monitoring window
mean               the mean of the buckets (IPA's ``avg`` intends this; upstream
                   returns ``max/len``, a bug not copied here)
moving-window-max  the largest of the last ``window`` buckets (default 6, one
                   minute at IPA's 10 s buckets)
=================  ==========================================================
"""

from __future__ import annotations

from typing import Sequence

from ipa_ext import hookimpl
from ipa_ext.config.numeric import option
from ipa_ext.predictors import Predictor


class ReactivePredictor(Predictor):
    name = "reactive"

    def predict(self, history_rps: Sequence[float]) -> float:
        return float(history_rps[-1])


class MaxPredictor(Predictor):
    name = "max"

    def predict(self, history_rps: Sequence[float]) -> float:
        return float(max(history_rps))


class MeanPredictor(Predictor):
    name = "mean"

    def predict(self, history_rps: Sequence[float]) -> float:
        return float(sum(history_rps)) / len(history_rps)


class MovingWindowMaxPredictor(Predictor):
    name = "moving-window-max"

    def __init__(self, window: int = 6) -> None:
        self.window = option("window (buckets)", window, integer=True, minimum=1)

    def predict(self, history_rps: Sequence[float]) -> float:
        return float(max(history_rps[-self.window :]))


@hookimpl
def register_predictors(register) -> None:
    register("reactive", ReactivePredictor)
    register("max", MaxPredictor)
    register("mean", MeanPredictor)
    register("moving-window-max", MovingWindowMaxPredictor)
