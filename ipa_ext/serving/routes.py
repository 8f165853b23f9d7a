"""How the router spreads one stage's requests over its replica groups: a mix's groups take turns by their
shares (smooth weighted round-robin, so any run of requests is split within one request of the shares), an
ensemble's groups all answer every request, and the members' answers are combined by majority vote."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

MIX = "mix"
ENSEMBLE = "ensemble"


@dataclass(frozen=True)
class Route:
    """A stage's groups in order, with the share of requests each takes (a mix) or all of them (an ensemble).

    An ensemble's first group is its first member (by convention the most accurate): it breaks ties.
    """

    kind: str
    groups: tuple[str, ...]
    shares: tuple[float, ...] = ()

    @classmethod
    def mix(cls, shares: Mapping[str, float]) -> Route:
        return cls(MIX, tuple(shares), tuple(float(s) for s in shares.values()))

    @classmethod
    def ensemble(cls, groups: Sequence[str]) -> Route:
        return cls(ENSEMBLE, tuple(groups), tuple(1.0 for _ in groups))


@dataclass
class RoundRobin:
    """Smooth weighted round-robin: each turn every group gains its share, the richest is picked and pays the
    total. Deterministic; ties go to the earlier group; groups not live this turn neither gain nor pay."""

    credit: dict[str, float] = field(default_factory=dict)

    def pick(self, route: Route, live: set[str]) -> str | None:
        turn = [(g, s) for g, s in zip(route.groups, route.shares) if s > 0 and g in live]
        if not turn:
            return None
        total = sum(s for _, s in turn)
        best, best_credit = None, -float("inf")
        for g, s in turn:
            c = self.credit[g] = self.credit.get(g, 0.0) + s
            if c > best_credit + 1e-12:
                best, best_credit = g, c
        assert best is not None
        self.credit[best] -= total
        return best


@dataclass(frozen=True)
class Vote:
    """An ensemble stage's answer to one request: the winning class (None when outputs are not comparable),
    how many members voted for it, how many answered, and whether the first member was outvoted."""

    answer: int | None
    votes: int
    members: int
    rule: str  # majority | first-member
    outvoted: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {"answer": self.answer, "votes": self.votes, "members": self.members, "rule": self.rule,
                "outvoted": self.outvoted}


def class_of(outputs: Mapping[str, np.ndarray]) -> int | None:
    """A classifier's answer: the argmax of its first output when that is one row of scores, else None."""
    if not outputs:
        return None
    first = next(iter(outputs.values()))
    if first.ndim != 2 or first.shape[0] != 1 or first.shape[1] < 1 or not np.issubdtype(first.dtype, np.number):
        return None
    return int(np.argmax(first[0]))


def majority(outputs: Sequence[Mapping[str, np.ndarray]]) -> Vote:
    """The members' answers (in member order) combined: the class most members chose, ties to the earliest
    member among the tied; when any answer is not one row of class scores, or the members' class counts
    differ, the first member's answer stands (``first-member``)."""
    n = len(outputs)
    classes = [class_of(o) for o in outputs]
    widths = {next(iter(o.values())).shape[1] for o in outputs if o and class_of(o) is not None}
    if not classes or any(c is None for c in classes) or len(widths) != 1:
        return Vote(classes[0] if classes else None, 1 if n else 0, n, "first-member")
    counts: dict[int, int] = {}
    for c in classes:
        counts[c] = counts.get(c, 0) + 1  # type: ignore[index]
    top = max(counts.values())
    winner = next(c for c in classes if counts[c] == top)  # type: ignore[index]
    assert winner is not None
    return Vote(winner, top, n, "majority", outvoted=classes[0] != winner)
