"""IPA's forecasting around a load predictor: aggregation, backup predictor, margin and rounding.

Every adaptation interval the loop reads the per-second request-rate history
(``monitoring_duration_s``, oldest first) and asks a :class:`Forecaster` for
the rate to provision for. As IPA's adapter does, the forecaster

1. aggregates the history into ``bucket_s``-second buckets by their maximum,
   starting from the oldest second (IPA uses 10 s; the last bucket may be partial);
2. uses the *backup* predictor while there are fewer than
   ``backup_duration_s / bucket_s`` buckets, the main predictor after that;
3. adds ``margin_pct`` percent and rounds to a whole request rate
   (IPA: ``round(prediction * (1 + margin/100))``).

A :class:`~ipa_ext.predictors.Predictor` sees only the aggregated buckets.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

from ..predictors import Predictor


def bucket_max(series: Sequence[float], bucket_s: int) -> list[float]:
    """IPA's aggregation: the maximum of each ``bucket_s``-second slice, from the oldest."""
    if bucket_s <= 1:
        return [float(x) for x in series]
    return [float(max(series[i : i + bucket_s])) for i in range(0, len(series), bucket_s)]


@dataclass(frozen=True)
class Forecast:
    """One prediction and how it was made."""

    rate_rps: float
    """The rate to provision for: the prediction plus the margin, rounded when configured."""
    raw_rps: float
    """The predictor's output before the margin."""
    predictor: str
    """The name of the predictor that made it (the main or the backup one)."""
    backup: bool
    buckets_rps: tuple[float, ...]
    """The aggregated history the predictor saw."""


class Forecaster:
    """Main and backup predictor, aggregation, margin and rounding (see module docstring)."""

    def __init__(
        self,
        main: Predictor,
        backup: Predictor,
        *,
        bucket_s: int = 10,
        backup_duration_s: float = 120.0,
        margin_pct: float = 0.0,
        round_rate: bool = True,
    ) -> None:
        if int(bucket_s) != bucket_s or bucket_s < 1:
            raise ValueError(f"bucket_s must be a whole number >= 1, got {bucket_s!r}")
        if backup_duration_s < 0 or not math.isfinite(backup_duration_s):
            raise ValueError(f"backup_duration_s must be >= 0, got {backup_duration_s!r}")
        if margin_pct <= -100 or not math.isfinite(margin_pct):
            raise ValueError(f"margin_pct must be > -100, got {margin_pct!r}")
        self.main = main
        self.backup = backup
        self.bucket_s = int(bucket_s)
        self.backup_duration_s = float(backup_duration_s)
        self.margin_pct = float(margin_pct)
        self.round_rate = round_rate

    @property
    def min_buckets(self) -> int:
        """Buckets needed before the main predictor takes over (IPA: ``int(duration / step)``)."""
        return int(self.backup_duration_s / self.bucket_s)

    def forecast(self, history_rps: Sequence[float]) -> Forecast:
        buckets = bucket_max(history_rps, self.bucket_s)
        if not buckets:
            return Forecast(0.0, 0.0, self.backup.name, True, ())
        use_backup = len(buckets) < self.min_buckets
        predictor = self.backup if use_backup else self.main
        raw = float(predictor.predict(buckets))
        if not math.isfinite(raw):
            raise ValueError(f"predictor {predictor.name!r} returned {raw!r}")
        raw = max(raw, 0.0)
        value = raw * (1.0 + self.margin_pct / 100.0)
        if self.round_rate:
            value = float(round(value))
        return Forecast(value, raw, predictor.name, use_backup, tuple(buckets))
