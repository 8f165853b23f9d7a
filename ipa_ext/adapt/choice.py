"""Choosing among an optimizer's candidates (IPA's least change) and memoising decisions."""

from __future__ import annotations

from typing import Any, Sequence

from ..model import Configuration, changes
from ..optimize.pool import CandidatePool
from ..optimizers import Decision, Optimizer
from ..problem.problem import Evaluation, Problem


def least_change(candidates: Sequence[Evaluation], current: Configuration | None) -> int:
    """Index of the candidate with the fewest variant and batch changes (IPA's rule).

    Ties go to the earlier (better) candidate; without a current configuration
    the first candidate wins.
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    if isinstance(candidates, CandidatePool):  # vectorised over the pool's option arrays
        return candidates.least_change(current)
    if current is None:
        return 0
    best, best_n = 0, None
    for i, c in enumerate(candidates):
        if len(c.config) != len(current):
            continue
        n = changes(c.config, current)
        if best_n is None or n < best_n:
            best, best_n = i, n
    return best


def depends_on_current(optimizer: Optimizer, problem: Problem) -> bool:
    """Whether a decision can depend on the current configuration (for the memo key)."""
    flag = getattr(optimizer, "uses_current", None)
    if flag is not None:
        return bool(flag)
    return problem.settings.baseline_mode is not None


class DecisionMemo:
    """Decisions keyed by (problem, rate, k, current configuration when it matters)."""

    def __init__(self) -> None:
        self._d: dict[tuple[Any, ...], Decision] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> Decision | None:
        """The stored decision (counted as a hit) or None (counted as a miss)."""
        d = self._d.get(key)
        if d is None:
            self.misses += 1
        else:
            self.hits += 1
        return d

    def put(self, key: tuple[Any, ...], decision: Decision) -> None:
        """Store a decision under ``key``."""
        self._d[key] = decision

    def __len__(self) -> int:
        return len(self._d)
