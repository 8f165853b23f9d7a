"""The simulator's model of an ensemble stage's accuracy: a majority vote of members with independent errors."""

from __future__ import annotations

from typing import Mapping, Sequence


def majority_vote_accuracy(accuracies: Sequence[float]) -> float:
    """The chance (0..1) that a majority vote of independent members is right.

    Each member is right with its own accuracy (0..1), independently of the others;
    the vote is right when more than half of the members are, and a tie goes to the
    most accurate member's answer. One member gives its own accuracy.
    """
    if not accuracies:
        raise ValueError("an ensemble needs at least one member")
    ranked = sorted((min(max(float(a), 0.0), 1.0) for a in accuracies), reverse=True)
    n = len(ranked)
    top, others = ranked[0], ranked[1:]
    # dist[k]: chance that exactly k of the other members are right
    dist = [1.0]
    for p in others:
        nxt = [0.0] * (len(dist) + 1)
        for k, q in enumerate(dist):
            nxt[k] += q * (1.0 - p)
            nxt[k + 1] += q * p
        dist = nxt
    right = 0.0
    for k, q in enumerate(dist):
        if 2 * (k + 1) >= n:  # the top member right: a majority, or a tie it decides
            right += top * q
        if 2 * k > n:  # the top member wrong: only a strict majority of the others
            right += (1.0 - top) * q
    return right


def ensemble_score(members: Sequence[str], percent: Mapping[str, float], scores: Mapping[str, float],
                   normalized: bool) -> float:
    """An ensemble's value in the objective's accuracy scale: a fraction, or rank-normalised.

    Without ``normalized`` it is the modelled accuracy / 100. Rank-normalised, the modelled
    accuracy (percent) is placed on the stage's scale by linear interpolation between its
    variants' (accuracy, score) points, clamped to the least and most accurate variants'
    scores. One member gives its own score.
    """
    if len(members) == 1:
        return float(scores[members[0]])
    pct = 100.0 * majority_vote_accuracy([percent[m] / 100.0 for m in members])
    if not normalized:
        return pct / 100.0
    points = sorted((percent[v], scores[v]) for v in scores)
    if pct <= points[0][0]:
        return float(points[0][1])
    for (a0, s0), (a1, s1) in zip(points, points[1:]):
        if pct <= a1:
            return float(s0 + (s1 - s0) * (pct - a0) / (a1 - a0)) if a1 > a0 else float(s1)
    return float(points[-1][1])
