"""Dominance pruning keeps the k best under every completion (sums added to bounds and keys)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ipa_ext.optimize.dominance import dominated_by, undominated

values = st.sampled_from([0.0, 0.5, 1.0, 1.5, 2.0, 3.0])  # few values: many ties and equal rows


def table(n, cols):
    return st.lists(st.lists(values, min_size=cols, max_size=cols), min_size=n, max_size=n).map(
        lambda rows: np.array(rows, dtype=float))


def top_k(bound, keys, limit, k):
    """Key rows of the k best rows within the limit, best first."""
    ok = np.all(bound <= limit, axis=1)
    kk = keys[ok]
    order = np.lexsort(kk.T[::-1])
    return [tuple(r) for r in kk[order[:k]]]


@settings(max_examples=150)
@given(st.integers(2, 30).flatmap(lambda n: st.tuples(table(n, 2), table(n, 3))),
       st.lists(st.tuples(table(1, 2), table(1, 3)), min_size=1, max_size=4),
       st.integers(1, 3), st.booleans(), st.floats(1, 5))
def test_the_k_best_survive_every_completion(rows, completions, k, margins, limit):
    bound, keys = rows
    margin = np.full(3, 1e-9) if margins else None
    kept = undominated(bound, keys, k, margin)
    assert list(kept) == sorted(set(kept.tolist()))
    for cb, ck in completions:
        assert top_k(bound + cb, keys + ck, limit, k) == top_k(bound[kept] + cb, keys[kept] + ck, limit, k)


def test_margins_decide_by_the_first_key_and_prune_more():
    bound = np.array([[1.0], [1.0]])
    keys = np.array([[0.0, 5.0], [1.0, 0.0]])  # row 0 wins the first key, loses the second
    assert list(undominated(bound, keys, 1)) == [0, 1]                   # componentwise: both stay
    assert list(undominated(bound, keys, 1, np.array([1e-9, 1e-9]))) == [0]  # lexicographic: row 0
    assert list(undominated(bound, keys, 1, np.array([2.0, 2.0]))) == [0, 1]  # a win within the margin is none
    assert dominated_by(bound, keys, bound, keys, np.array([1e-9, 1e-9]), np.zeros(2)).tolist() == [
        [True, False], [True, True]]
    # a later (larger) bound never dominates, however good its keys
    assert list(undominated(np.array([[1.0], [2.0]]), np.array([[1.0, 1.0], [0.0, 0.0]]), 1,
                            np.array([1e-9, 1e-9]))) == [0, 1]
