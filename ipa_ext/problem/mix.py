"""A stage served by several variants at once, with the load split among them (InfAdapter).

A :class:`StageMix` is a :class:`~ipa_ext.model.StageConfig` (its own fields
describe the part with the largest load share, so code that knows only plain
stage configurations still sees a sensible one) plus ``parts``: each part's
configuration and the share of the stage's requests it serves. The simulator
serves a mix with the summed capacity of its parts, weights accuracy and
per-request energy by the shares, and takes the slowest part's latency.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..model import StageConfig


@dataclass(frozen=True, order=True)
class StageMix(StageConfig):
    parts: tuple[tuple[StageConfig, float], ...] = ()

    @classmethod
    def of(cls, parts: Sequence[tuple[StageConfig, float]]) -> StageMix:
        """A mix from (configuration, share) pairs; shares are normalised to sum to 1."""
        if not parts:
            raise ValueError("a stage mix needs at least one part")
        total = float(sum(s for _, s in parts))
        if total <= 0:
            norm = tuple((p, 1.0 / len(parts)) for p, _ in parts)
        else:
            norm = tuple((p, float(s) / total) for p, s in parts)
        main = max(norm, key=lambda ps: ps[1])[0]
        return cls(main.variant, main.cpu, main.batch, main.replicas, norm)

    def as_dict(self) -> dict[str, Any]:
        d = super().as_dict()
        d["parts"] = [{**p.as_dict(), "share": s} for p, s in self.parts]
        return d
