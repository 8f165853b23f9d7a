"""Exact k best of a selection problem by enumerating its option combinations with numpy.

One vectorised pass computes every combination's latency, power and value and a partial
sort keeps the k best, equal values in enumeration order as brute force has them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator, Sequence

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .selection import Selection

CHUNK = 1 << 18
"""Combinations evaluated per numpy pass (bounds memory for large products)."""
REL_TOL = 1e-9
"""The relative tolerance of a bound, as :func:`ipa_ext.problem.within` has it."""
_SUM_ULPS = 8.0
"""Rounding allowance between numpy's and Python's sums of one combination, in ulps
per stage of the largest magnitude: combinations that close to a bound are handed to
the caller's exact test instead of being decided by the numpy sum."""


def relaxed(bound: float) -> float:
    """``bound`` plus the tolerance :func:`ipa_ext.problem.within` allows."""
    return bound + REL_TOL * max(1.0, abs(bound))


@dataclass
class Ranked:
    """The k best combinations: option indices per stage, best first, and their values."""

    rows: np.ndarray
    values: np.ndarray
    combinations: int
    feasible: int
    rejected: int = 0
    complete: bool = True
    """True when every feasible combination (within the pool gap) is listed."""


@dataclass
class _Stage:
    """One stage's kept options as arrays (original indices in ``index``)."""

    index: np.ndarray
    lat: np.ndarray
    coef: np.ndarray
    power: np.ndarray | None
    factor: np.ndarray | None

    def take(self, keep: np.ndarray) -> _Stage:
        return _Stage(self.index[keep], self.lat[keep], self.coef[keep],
                      None if self.power is None else self.power[keep],
                      None if self.factor is None else self.factor[keep])


def _column(data: Sequence[Sequence[float]], s: int, opts: Sequence[int]) -> np.ndarray:
    return np.asarray([float(data[s][i]) for i in opts], dtype=float)


def _stages(sel: Selection, kept: Sequence[Sequence[int]]) -> list[_Stage]:
    return [
        _Stage(
            index=np.asarray(opts, dtype=np.intp),
            lat=_column(sel.latencies, s, opts),
            coef=_column(sel.coefficients, s, opts),
            power=_column(sel.powers, s, opts) if sel.powers is not None else None,
            factor=_column(sel.factors, s, opts) if sel.has_product and sel.factors is not None else None,
        )
        for s, opts in enumerate(kept)
    ]


def _margin(columns: Sequence[np.ndarray]) -> float:
    return _SUM_ULPS * len(columns) * float(np.finfo(float).eps) * sum(
        float(np.max(np.abs(c))) for c in columns if len(c))


def _bounds(sel: Selection) -> list[tuple[str, float]]:
    out = [("lat", relaxed(sel.latency_bound))]
    if sel.powers is not None:
        assert sel.power_bound is not None
        out.append(("power", relaxed(sel.power_bound)))
    return out


def feasible_options(sel: Selection, kept: Sequence[Sequence[int]]) -> list[list[int]]:
    """Per stage, the kept options that fit in some combination within every bound.

    An option whose latency plus the other stages' smallest latencies exceeds the
    bound (or likewise for power) is in no feasible combination. Repeated until
    nothing changes (dropping an option for power can raise a latency minimum).
    """
    stages = _stages(sel, kept)
    while stages and all(len(st.index) for st in stages):
        changed = False
        for attr, bound in _bounds(sel):
            cols = [getattr(st, attr) for st in stages]
            slack = bound + _margin(cols) - sum(float(c.min()) for c in cols)
            for s, col in enumerate(cols):
                keep = col - col.min() <= slack
                if not keep.all():
                    stages[s] = stages[s].take(keep)
                    changed = True
            if any(not len(st.index) for st in stages):
                break
        if not changed:
            break
    return [[int(i) for i in st.index] for st in stages]


def _grow(acc: dict[str, np.ndarray], st: _Stage) -> dict[str, np.ndarray]:
    """Extend partial combinations by one stage (C order: the new stage varies fastest)."""
    out = {"lat": np.add.outer(acc["lat"], st.lat).ravel(), "coef": np.add.outer(acc["coef"], st.coef).ravel()}
    if st.power is not None:
        out["power"] = np.add.outer(acc["power"], st.power).ravel()
    if st.factor is not None:
        out["factor"] = np.multiply.outer(acc["factor"], st.factor).ravel()
    return out


def _start(st: _Stage) -> dict[str, np.ndarray]:
    out = {"lat": st.lat, "coef": st.coef}
    if st.power is not None:
        out["power"] = st.power
    if st.factor is not None:
        out["factor"] = st.factor
    return out


def _chunks(stages: Sequence[_Stage]) -> Iterator[tuple[int, dict[str, np.ndarray]]]:
    """Every combination in enumeration order, at most about :data:`CHUNK` per piece.

    Sums are accumulated stage by stage in stage order, so each combination's
    latency, power and value are the same floating-point numbers as a running
    sum over its stages. Yields (flat index of the first combination, columns).
    """
    sizes = [len(st.index) for st in stages]
    j, suffix = len(sizes) - 1, sizes[-1]
    while j > 0 and suffix * sizes[j - 1] <= CHUNK:
        j -= 1
        suffix *= sizes[j]
    prefix = _start(stages[0])
    for st in stages[1:j]:
        prefix = _grow(prefix, st)
    if j == 0:
        for st in stages[1:]:
            prefix = _grow(prefix, st)
        yield 0, prefix
        return
    rows = len(prefix["lat"])
    block = max(1, CHUNK // suffix)
    for b0 in range(0, rows, block):
        acc = {key: col[b0:b0 + block] for key, col in prefix.items()}
        for st in stages[j:]:
            acc = _grow(acc, st)
        yield b0 * suffix, acc


def _top(values: np.ndarray, flat: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best by value, ties to the smaller flat index (unordered)."""
    if len(values) <= k:
        return values, flat
    part = np.argpartition(-values, k - 1)
    t = values[part[k - 1]]
    above = np.flatnonzero(values > t)
    tied = np.flatnonzero(values == t)
    tied = tied[np.argsort(flat[tied], kind="stable")[: k - len(above)]]
    keep = np.concatenate([above, tied])
    return values[keep], flat[keep]


def _feasible_mask(
    cols: dict[str, np.ndarray],
    bounds: Sequence[tuple[str, float, float]],
    decide: Callable[[int], bool],
) -> tuple[np.ndarray, int]:
    """Which combinations of a chunk meet every bound; (mask, rejected by ``decide``).

    A sum within the rounding margin of a bound is decided by ``decide`` (the
    caller's exact test), every other one by the numpy sum.
    """
    sure = np.ones(len(cols["lat"]), dtype=bool)
    maybe = sure.copy()
    for key, bound, margin in bounds:
        sure &= cols[key] <= bound - margin
        maybe &= cols[key] <= bound + margin
    rejected = 0
    for i in np.flatnonzero(maybe & ~sure):
        if decide(int(i)):
            sure[i] = True
        else:
            rejected += 1
    return sure, rejected


def enumerate_k_best(
    sel: Selection,
    kept: Sequence[Sequence[int]],
    k: int,
    accept: Callable[[tuple[int, ...]], bool] | None = None,
    pool_gap: float | None = None,
) -> Ranked:
    """The k best feasible combinations of the kept options, exactly.

    ``kept`` should hold only options in some feasible combination
    (:func:`feasible_options`): the work is the product of its sizes.
    ``accept`` is the caller's exact feasibility test; it decides only the
    combinations whose numpy sums are within rounding distance of a bound
    (Python's ``sum`` may round differently). Without it those are decided by
    the numpy sums against the relaxed bounds.
    """
    stages = _stages(sel, kept)
    empty = Ranked(np.empty((0, sel.stages), dtype=np.intp), np.empty(0), 0, 0)
    if not stages or any(not len(st.index) for st in stages):
        return empty
    sizes = [len(st.index) for st in stages]
    total = math.prod(sizes)
    bounds = [(key, b, _margin([getattr(st, key) for st in stages])) for key, b in _bounds(sel)]
    keep_n = k + 1  # one more than asked: tells whether the list is complete
    best_v, best_f = np.empty(0), np.empty(0, dtype=np.int64)
    feasible = rejected = 0
    for offset, cols in _chunks(stages):

        def decide(i: int, offset: int = offset, cols: dict[str, np.ndarray] = cols) -> bool:
            if accept is None:
                return all(cols[key][i] <= b for key, b, _m in bounds)
            pos = np.unravel_index(offset + i, sizes)
            return accept(tuple(int(stages[s].index[p]) for s, p in enumerate(pos)))

        mask, rej = _feasible_mask(cols, bounds, decide)
        rejected += rej
        idx = np.flatnonzero(mask)
        feasible += len(idx)
        values = cols["coef"][idx]
        if sel.has_product:
            values = values + sel.factor_weight * cols["factor"][idx]
        best_v, best_f = _top(np.concatenate([best_v, values]),
                              np.concatenate([best_f, idx.astype(np.int64) + offset]), keep_n)
    order = np.lexsort((best_f, -best_v))
    best_v, best_f = best_v[order], best_f[order]
    if pool_gap is not None and len(best_v):
        top = float(best_v[0])
        within = best_v >= top - pool_gap * abs(top) - REL_TOL * max(1.0, abs(top))
        best_v, best_f = best_v[within], best_f[within]
    complete = len(best_v) <= k
    best_v, best_f = best_v[:k], best_f[:k]
    pos = np.unravel_index(best_f, sizes)
    rows = np.stack([stages[s].index[p] for s, p in enumerate(pos)], axis=1) if len(best_f) else empty.rows
    return Ranked(rows, best_v, total, feasible, rejected, complete)
