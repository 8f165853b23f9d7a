"""The load-predictor interface.

A predictor maps the recent per-second request-rate history (oldest first) to
the rate the next adaptation interval should provision for. Predictors are
plugins (hook ``register_predictors``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence


class Predictor(ABC):
    """Base class for load predictors."""

    name: str = ""

    @abstractmethod
    def predict(self, history_rps: Sequence[float]) -> float:
        """Predicted arrival rate in requests per second."""
