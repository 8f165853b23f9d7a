"""The ``ar`` load predictor (IPA's ``arima`` maps to it): an AR(p) with intercept fitted by
least squares on the history buckets at every call, the largest of its next ``steps`` values.

Options: ``order`` (p, default 1: IPA's ``ARIMA(1, 0, 0)``), ``steps`` (default 2: IPA's
two-step forecast, 20 s at 10 s buckets), ``history`` (buckets fitted on, default all the
monitoring window holds). Too short a history to fit predicts the last bucket.
"""

from __future__ import annotations

from typing import Any, Sequence

from ipa_ext import hookimpl
from ipa_ext.forecasting import ar
from ipa_ext.config.numeric import option
from ipa_ext.predictors import Predictor


class ArPredictor(Predictor):
    name = "ar"

    def __init__(self, order: Any = 1, steps: Any = 2, history: Any = None) -> None:
        self.order = option("order", order, integer=True, minimum=1, maximum=1000)
        self.steps = option("steps", steps, integer=True, minimum=1, maximum=1000)
        self.history = None if history is None else option("history (buckets)", history, integer=True,
                                                           minimum=self.order + 2)

    def predict(self, history_rps: Sequence[float]) -> float:
        h = history_rps if self.history is None else history_rps[-self.history:]
        return float(max(ar.forecast(h, self.order, self.steps)))


@hookimpl
def register_predictors(register) -> None:
    register("ar", ArPredictor)
