"""The modelled accuracy of an ensemble's majority vote (Cocktail), and a stage option that is an ensemble.

The model (docs/optimizers.md, "cocktail"): member i answers correctly with probability
p_i (its accuracy / 100), independently of the others; the ensemble answers correctly
when more than half of its members do, and on a tie (an even ensemble split in half)
it takes the answer of its most accurate member. Counting a vote as correct only when
the correct answers are a majority treats every wrong answer as the same wrong answer:
for top-1 classification over many classes, wrong answers rarely agree and a plurality
vote does better, so this is a pessimistic-plurality model; the independence of errors
is the optimistic part (real models err on the same hard inputs).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Mapping, Sequence

from ..model import Stage
from .mix import StageEnsemble
from .options import Option

if TYPE_CHECKING:  # pragma: no cover
    from .problem import Problem

ACCURACY_MODEL = "modelled (independent errors, majority vote)"
"""The label of an ensemble's accuracy in decisions' info and reports."""


def correct_counts(accuracies: Sequence[float]) -> list[float]:
    """P(exactly k members are correct) for k = 0..n, members correct independently with the
    given probabilities (the Poisson-binomial distribution, by the exact O(n^2) recurrence)."""
    dist = [1.0]
    for p in accuracies:
        nxt = [0.0] * (len(dist) + 1)
        for k, f in enumerate(dist):
            nxt[k] += f * (1.0 - p)
            nxt[k + 1] += f * p
        dist = nxt
    return dist


def majority_accuracy(accuracies: Sequence[float]) -> float:
    """The probability that a majority vote of members with these accuracies (0..1) is correct.

    Errors are independent; the vote is correct when more than half of the members are; a tie
    goes to the answer of the most accurate member (the first of equals). One member: its own
    accuracy; two: the more accurate one's (a disagreement is a tie); three at 0.8: 0.896.
    """
    ps = [float(p) for p in accuracies]
    if not ps:
        raise ValueError("an ensemble needs at least one member")
    for p in ps:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"a member's accuracy must be a probability in 0..1, got {p!r}")
    n = len(ps)
    dist = correct_counts(ps)
    out = sum(dist[n // 2 + 1:])
    if n % 2 == 0:
        best = max(range(n), key=lambda i: (ps[i], -i))
        rest = correct_counts(ps[:best] + ps[best + 1:])
        out += ps[best] * rest[n // 2 - 1]  # the best is right and exactly half of the others are
    return min(1.0, max(0.0, out))


def ensemble_accuracy_pct(stage: Stage, variants: Sequence[str]) -> float:
    """The modelled accuracy, in percent, of a majority vote of ``variants`` of ``stage``
    (variant accuracies are percentages; one variant: its own accuracy, exactly)."""
    if len(variants) == 1:
        return stage.variant(variants[0]).accuracy
    return 100.0 * majority_accuracy([stage.variant(v).accuracy / 100.0 for v in variants])


def rank_score(stage: Stage, scores: Mapping[str, float], accuracy_pct: float) -> float:
    """An accuracy in percent on a stage's rank-normalised scale: linear between the ranked
    variants it lies between, 0 at or below the least accurate, 1 at or above the most accurate."""
    ranked = sorted(stage.variants, key=lambda v: (v.accuracy, v.name))
    lower = [v for v in ranked if v.accuracy <= accuracy_pct]
    upper = [v for v in ranked if v.accuracy > accuracy_pct]
    if not lower:
        return 0.0
    lo = lower[-1]
    if not upper:
        return float(scores[lo.name])
    hi = upper[0]
    t = (accuracy_pct - lo.accuracy) / (hi.accuracy - lo.accuracy)
    return float(scores[lo.name] + t * (scores[hi.name] - scores[lo.name]))


def ensemble_score(problem: Problem, index: int, variants: Sequence[str]) -> float:
    """A majority vote's accuracy on the scale of the problem's accuracy objective: percent/100,
    or with ``normalize_accuracy`` the rank scale (:func:`rank_score`); one variant: its own score."""
    scores = problem.stage_accuracies[index]
    if len(variants) == 1:
        return float(scores[variants[0]])
    stage = problem.pipeline.stages[index]
    pct = ensemble_accuracy_pct(stage, variants)
    if problem.settings.normalize_accuracy:
        return rank_score(stage, scores, pct)
    return pct / 100.0


@dataclass(frozen=True)
class EnsembleOption(Option):
    """A stage's ensemble as one option: every member serves the whole rate.

    Its own (variant, cpu, batch, replicas) fields are the first member's; latency is the
    slowest member's, capacity the smallest member's, cores the members' sum, and
    ``accuracy`` the modelled vote's score (:func:`ensemble_score`).
    """

    members: tuple[Option, ...] = ()
    accuracy_pct: float = 0.0

    @property
    def slowest(self) -> Option:
        return max(self.members, key=lambda m: m.latency_s)

    @property
    def model_latency_s(self) -> float:
        return self.slowest.model_latency_s

    @property
    def latency_s(self) -> float:
        return self.slowest.latency_s

    @property
    def capacity_rps(self) -> float:
        return min(m.capacity_rps for m in self.members)

    @property
    def cores(self) -> float:
        return float(sum(m.cores for m in self.members))

    def config(self) -> StageEnsemble:
        return StageEnsemble.of([m.config() for m in self.members])


def ensemble_option(problem: Problem, members: Sequence[Option]) -> EnsembleOption:
    """The ensemble of ``members`` (options of one stage at one rate, distinct variants),
    ordered most accurate first; its accuracy is the modelled majority vote."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    index = members[0].stage_index
    stage = problem.pipeline.stages[index]
    ordered = tuple(sorted(members, key=lambda m: (-stage.variant(m.variant).accuracy, m.variant)))
    names = [m.variant for m in ordered]
    slowest = max(ordered, key=lambda m: m.latency_s)
    first = ordered[0]
    return EnsembleOption(
        stage_index=index, variant=first.variant, cpu=first.cpu, batch=first.batch,
        replicas=first.replicas, profile=first.profile,
        accuracy=ensemble_score(problem, index, names), queue_s=slowest.queue_s,
        members=ordered, accuracy_pct=ensemble_accuracy_pct(stage, names),
    )
