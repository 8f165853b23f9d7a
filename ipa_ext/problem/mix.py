"""Stages served by several variants at once: a load split (InfAdapter, Clover) or an ensemble (Cocktail).

A :class:`StageMix` is a :class:`~ipa_ext.model.StageConfig` (its own fields
describe the part with the largest load share, so code that knows only plain
stage configurations still sees a sensible one) plus ``parts``: each part's
configuration and the share of the stage's requests it serves. The simulator
and the local backend route each part its share of the requests, with the
part's own latency, queue and drops, and weigh accuracy and energy by what
each part served (docs/adaptation.md, docs/local.md).
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


@dataclass(frozen=True, order=True)
class StageEnsemble(StageConfig):
    """A stage served by an ensemble (Cocktail): every member answers every request.

    ``members`` are the members' configurations, each sized for the stage's
    whole load. A request leaves the stage when every member has answered
    (the majority vote needs all answers), so the stage's latency is the
    slowest member's and its cost is every member's compute for every request.
    The stage configuration's own fields describe the first member (by
    convention the most accurate), so code that knows only plain stage
    configurations still sees a sensible one.
    """

    members: tuple[StageConfig, ...] = ()

    @classmethod
    def of(cls, members: Sequence[StageConfig]) -> StageEnsemble:
        """An ensemble of ``members``; the first one names the stage's main variant."""
        if not members:
            raise ValueError("an ensemble needs at least one member")
        names = [m.variant for m in members]
        if len(set(names)) != len(names):
            raise ValueError(f"an ensemble's members must be distinct variants, got {names}")
        main = members[0]
        return cls(main.variant, main.cpu, main.batch, main.replicas, tuple(members))

    def as_dict(self) -> dict[str, Any]:
        d = super().as_dict()
        d["members"] = [m.as_dict() for m in self.members]
        return d


def stage_parts(sc: StageConfig) -> tuple[tuple[StageConfig, float], ...]:
    """The (configuration, load share) parts of a mix; a plain stage is one part with the whole load."""
    parts = getattr(sc, "parts", None)
    if parts:
        return tuple(parts)
    return ((sc, 1.0),)


def stage_members(sc: StageConfig) -> tuple[StageConfig, ...]:
    """The members of an ensemble, each serving the whole load; a plain stage is its own one member."""
    members = getattr(sc, "members", None)
    if members:
        return tuple(members)
    return (sc,)
