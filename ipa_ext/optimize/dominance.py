"""Dominance pruning for exact k-best searches that build configurations stage by stage: drop a
candidate that at least k others beat, or tie, whatever the later stages add.

A candidate has *bound* columns (latency, power: sums or maxima, each must stay under a bound)
and *key* columns (the ranking, compared lexicographically, smaller first). Row ``a`` dominates
row ``b`` when every bound column of ``a`` is at most ``b``'s and ``a``'s keys are at most ``b``'s
in every column, or at most in the columns before some column where ``a`` is smaller by more
than a margin. Adding the same completion to both (non-decreasing in every column: a sum, a
maximum, a product of non-negative factors) keeps ``a`` first: floating-point addition and
multiplication are monotone, and the margin exceeds the rounding of any completion. Without
margins the comparison is componentwise.
"""

from __future__ import annotations

import numpy as np

BLOCK = 1 << 22
"""Comparisons per numpy pass of the dominance count (bounds memory)."""
FRONT_BLOCK = 64
"""Rows per numpy pass of the k = 1 front."""
COUNT_ROWS = 4000
"""The most rows whose dominators are counted for k > 1 (the count is quadratic)."""


def _relation(bound_f: np.ndarray, keys_f: np.ndarray, bound_b: np.ndarray, keys_b: np.ndarray,
              margin: np.ndarray, relative: np.ndarray) -> np.ndarray:
    """``f`` dominates ``b``, for arrays that broadcast (columns on the last axis)."""
    ok = np.all(bound_f <= bound_b, axis=-1)
    if np.isinf(margin).all():  # componentwise
        return ok & np.all(keys_f <= keys_b, axis=-1)
    le = keys_f <= keys_b
    lt = keys_f < keys_b - (margin + relative * np.abs(keys_b))
    prefix = np.ones(le.shape[:-1], dtype=bool)
    wins = np.zeros(le.shape[:-1], dtype=bool)
    for c in range(le.shape[-1]):
        wins |= prefix & lt[..., c]
        prefix &= le[..., c]
    return ok & (wins | prefix)


def dominated_by(bound_f: np.ndarray, keys_f: np.ndarray, bound_b: np.ndarray, keys_b: np.ndarray,
                 margin: np.ndarray, relative: np.ndarray) -> np.ndarray:
    """``out[i, j]``: row j of the first set dominates row i of the second (see the module docstring).

    A key column's strict win needs ``keys_f < keys_b - (margin + relative * |keys_b|)``; an
    infinite margin allows no strict win in that column.
    """
    return _relation(bound_f[None, :, :], keys_f[None, :, :], bound_b[:, None, :], keys_b[:, None, :],
                     margin, relative)


def _by_best_before(b: np.ndarray, kv: np.ndarray, margin: np.ndarray, relative: np.ndarray) -> np.ndarray:
    """Rows (in the sorted order) dominated by the earlier row with the smallest keys: a cheap first
    pass that drops most of a large table before the front is built."""
    n = len(kv)
    rank = np.empty(n, dtype=np.intp)
    rank[np.lexsort(kv.T[::-1])] = np.arange(n)
    by_rank = np.argsort(rank)
    best = by_rank[np.minimum.accumulate(rank)]
    out = np.zeros(n, dtype=bool)
    j = best[:-1]
    out[1:] = _relation(b[j], kv[j], b[1:], kv[1:], margin, relative)
    return out


def undominated(bound: np.ndarray, keys: np.ndarray, k: int, margin: np.ndarray | None = None,
                relative: np.ndarray | None = None) -> np.ndarray:
    """Indices (ascending) of the rows dominated by fewer than ``k`` others; of equal rows the
    first dominates the later ones.

    Every completion of a dropped row is matched by ``k`` distinct ones that rank at least as
    well, so the k best survive. A dominator precedes its row in the order of (bounds, keys),
    so one sorted pass does: against the front kept so far for k = 1, counting every earlier
    row otherwise. Pruning only saves work: with k > 1 and more than :data:`COUNT_ROWS` rows,
    every row is kept.
    """
    n, q = keys.shape
    if n <= k or (k > 1 and n > COUNT_ROWS):
        return np.arange(n)
    margin = np.full(q, np.inf) if margin is None else margin
    relative = np.zeros(q) if relative is None else relative
    order = np.lexsort(np.column_stack([bound, keys]).T[::-1])
    b, kv = bound[order], keys[order]
    dropped = np.zeros(n, dtype=bool)
    if k > 1:
        step = max(1, BLOCK // (n * (q + bound.shape[1])))
        pos = np.arange(n)
        for lo in range(0, n, step):
            hi = min(n, lo + step)
            dom = dominated_by(b, kv, b[lo:hi], kv[lo:hi], margin, relative) & (pos[None, :] < pos[lo:hi, None])
            dropped[lo:hi] = dom.sum(axis=1) >= k
        return np.sort(order[~dropped])
    dropped = _by_best_before(b, kv, margin, relative)
    rest = np.flatnonzero(~dropped)
    b, kv, order = b[rest], kv[rest], order[rest]
    n = len(rest)
    dropped = np.zeros(n, dtype=bool)
    kept: list[int] = []
    for lo in range(0, n, FRONT_BLOCK):
        hi = min(n, lo + FRONT_BLOCK)
        inner = dominated_by(b[lo:hi], kv[lo:hi], b[lo:hi], kv[lo:hi], margin, relative)
        out = (inner & np.tri(hi - lo, k=-1, dtype=bool)).any(axis=1)
        if kept:
            out |= dominated_by(b[kept], kv[kept], b[lo:hi], kv[lo:hi], margin, relative).any(axis=1)
        dropped[lo:hi] = out
        kept.extend(lo + np.flatnonzero(~out))
    return np.sort(order[~dropped])
