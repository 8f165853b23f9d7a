"""A ranked pool of candidate configurations, evaluated when read, for k-best lists too
long to evaluate whole; the adapter's least-change rule runs on its option arrays."""

from __future__ import annotations

import copy
from typing import Callable, Sequence, overload

import numpy as np

from ..model import Configuration
from ..problem.problem import Evaluation, Option

TIE_TOLERANCE = 1e-12
"""Candidates whose ranking values differ by less than this (relative to the
objective's magnitude) are ordered by their evaluated objective."""


class CandidatePool(Sequence[Evaluation]):
    """Candidates best first; each is evaluated on first read and kept.

    An optimizer that enumerates its k best (``num_state_limit`` in the thousands or
    millions) returns them as a pool, so a pool of every feasible configuration costs a
    few array operations per decision, not one evaluation per candidate.

    ``rows[i, s]`` is the index into ``per_stage[s]`` of candidate ``i``'s
    option, ``values`` the ranking value of each row, best first. The ranking
    value is the optimizer's objective computed in another floating-point
    order than the problem's, so rows within ``tolerance`` of each other form
    a block that is ordered by the evaluated objective, then by option
    indices, when first read: the pool's objectives never increase, and
    equal ones keep enumeration order, as in brute force.
    """

    def __init__(
        self,
        per_stage: Sequence[Sequence[Option]],
        rows: np.ndarray,
        values: np.ndarray,
        tolerance: float,
        evaluate: Callable[[tuple[Option, ...]], Evaluation],
    ) -> None:
        self._per_stage = per_stage
        self._rows = rows
        self._evaluate = evaluate
        self._present: Callable[[Evaluation], Evaluation] | None = None
        gaps = np.flatnonzero(np.diff(values) < -tolerance) + 1
        self._starts = np.concatenate([[0], gaps]).astype(np.intp) if len(values) else np.empty(0, np.intp)
        self._orders: dict[int, np.ndarray] = {}
        self._evaluated: dict[int, Evaluation] = {}
        self._shown: dict[int, Evaluation] = {}

    def mapped(self, present: Callable[[Evaluation], Evaluation]) -> CandidatePool:
        """The same pool, in the same order, each candidate passed through ``present``
        when read (a policy re-scoring its base optimizer's candidates)."""
        other = copy.copy(self)  # shares the rows, blocks and base evaluations
        previous = self._present
        other._present = present if previous is None else (lambda ev: present(previous(ev)))
        other._shown = {}
        return other

    # ------------------------------------------------------------------ sequence

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, i: int) -> Evaluation: ...

    @overload
    def __getitem__(self, i: slice) -> list[Evaluation]: ...

    def __getitem__(self, i: int | slice) -> Evaluation | list[Evaluation]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("candidate index out of range")
        shown = self._shown.get(i)
        if shown is None:
            b = self._block(i)
            start = int(self._starts[b])
            ev = self._row_evaluation(start + int(self._order(b)[i - start]))
            shown = ev if self._present is None else self._present(ev)
            self._shown[i] = shown
        return shown

    def __repr__(self) -> str:
        return f"CandidatePool({len(self)} candidates)"

    # ------------------------------------------------------------------ choice

    def changes(self, current: Configuration) -> np.ndarray:
        """Per row (ranking order), the variant and batch changes from ``current``."""
        out = np.zeros(len(self._rows), dtype=np.intp)
        for s, (opts, sc) in enumerate(zip(self._per_stage, current)):
            variant = np.fromiter((o.variant != sc.variant for o in opts), bool, len(opts))
            batch = np.fromiter((o.batch != sc.batch for o in opts), bool, len(opts))
            col = self._rows[:, s]
            out += variant[col]
            out += batch[col]
        return out

    def least_change(self, current: Configuration | None) -> int:
        """Index of the first candidate with the fewest variant and batch changes
        (IPA's rule, as :func:`ipa_ext.adapt.adapter.least_change`)."""
        if current is None or len(current) != len(self._per_stage) or not len(self):
            return 0
        ch = self.changes(current)
        fewest = ch.min()
        b = self._block(int(np.argmax(ch == fewest)))
        start = int(self._starts[b])
        for pos, r in enumerate(self._order(b)):
            if ch[start + int(r)] == fewest:
                return start + pos
        raise AssertionError("unreachable: the block holds a row with the fewest changes")

    # ------------------------------------------------------------------ internals

    def _block(self, i: int) -> int:
        return int(np.searchsorted(self._starts, i, side="right")) - 1

    def _order(self, b: int) -> np.ndarray:
        """Positions within block ``b`` in final order: by evaluated objective, then
        by the options' indices (enumeration order, as brute force breaks ties)."""
        order = self._orders.get(b)
        if order is None:
            start = int(self._starts[b])
            stop = int(self._starts[b + 1]) if b + 1 < len(self._starts) else len(self)
            if stop - start == 1:
                order = np.zeros(1, dtype=np.intp)
            else:
                objectives = np.asarray([self._row_evaluation(r).objective for r in range(start, stop)], float)
                rows = self._rows[start:stop]
                order = np.lexsort([rows[:, s] for s in reversed(range(rows.shape[1]))] + [-objectives])
            self._orders[b] = order
        return order

    def _row_evaluation(self, r: int) -> Evaluation:
        ev = self._evaluated.get(r)
        if ev is None:
            ev = self._evaluate(tuple(self._per_stage[s][int(i)] for s, i in enumerate(self._rows[r])))
            self._evaluated[r] = ev
        return ev
