"""The load-predictor interface: a plugin predicts the next arrival rate from aggregated history.

Predictors are plugins (hook ``register_predictors``); the built-ins are ``reactive``, ``max``,
``mean`` (IPA calls it ``avg``), ``moving-window-max``, ``ar`` (IPA's ``arima``) and ``lstm``
(IPA's LSTM, see :mod:`ipa_ext.forecasting`). :mod:`ipa_ext.adapt.forecast` wraps them as IPA's
adapter does.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

ALIASES = {"avg": "mean", "arima": "ar"}
"""IPA's predictor names that map to a differently named built-in (IPA's ``avg`` returns
``max/len``, a bug; ``mean`` is the intended average; IPA's ``arima`` is an AR(1), which
``ar`` fits by least squares)."""


class Predictor(ABC):
    """Base class for load predictors."""

    name: str = ""

    @abstractmethod
    def predict(self, history_rps: Sequence[float]) -> float:
        """Predicted arrival rate (rps) from the aggregated history, oldest bucket first.

        ``history_rps`` is never empty.
        """
