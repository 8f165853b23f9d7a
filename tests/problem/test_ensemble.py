"""The ensemble accuracy model (independent errors, majority vote, ties to the most accurate member)
and the ensemble stage option."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ipa_ext.problem.ensemble import (
    EnsembleOption, correct_counts, ensemble_accuracy_pct, ensemble_option, ensemble_score, majority_accuracy,
    rank_score,
)
from ipa_ext.problem.mix import StageEnsemble, stage_members

from support.problems import make_pipeline, make_problem, vote_by_outcomes


@pytest.mark.parametrize("ps, want", [
    ([0.8, 0.8, 0.8], 0.896),        # 3 p^2 - 2 p^3
    ([0.7, 0.7, 0.7], 0.784),
    ([0.7] * 5, 0.83692),
    ([0.8, 0.7, 0.6], 0.788),        # p1p2 + p1p3 + p2p3 - 2 p1p2p3
    ([0.9, 0.6, 0.6], 0.792),        # weak members drag a strong one down
    ([0.7] * 4, 0.784),              # P(K >= 3) 0.6517 + P(K = 2 and the first right) 0.1323
    ([0.6, 0.9], 0.9),               # a split pair is a tie: the more accurate member's answer
    ([0.55], 0.55),
    ([1.0, 0.0, 0.0], 0.0),
    ([1.0, 1.0, 0.0], 1.0),
])
def test_hand_checked_values(ps, want):
    assert majority_accuracy(ps) == pytest.approx(want, abs=1e-12)


@settings(max_examples=200)
@given(st.lists(st.floats(0, 1), min_size=1, max_size=7))
def test_the_recurrence_equals_the_sum_over_outcomes(ps):
    assert majority_accuracy(ps) == pytest.approx(vote_by_outcomes(ps), abs=1e-12)
    dist = correct_counts(ps)
    assert len(dist) == len(ps) + 1 and math.fsum(dist) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [[], [1.2], [0.5, -0.1]])
def test_refuses_what_is_not_a_probability(bad):
    with pytest.raises(ValueError):
        majority_accuracy(bad)


STAGE = {"A": {
    "variants": {"a1": 60.0, "a2": 70.0, "a3": 80.0},
    "rows": [("a1", 1, 1, 0.1, 10.0, 1.0, 0.5), ("a2", 1, 1, 0.2, 5.0, 1.0, 1.0), ("a2", 1, 2, 0.3, 8.0, 1.0, 0.8),
             ("a3", 2, 1, 0.3, 4.0, 2.0, 2.0)],
}}


def problem(**kw):
    kw.setdefault("sla_s", 5.0)
    kw.setdefault("allocation_mode", "variable")
    return make_problem(make_pipeline(STAGE), threshold=0, **kw)


def test_percent_and_scores():
    stage = problem().pipeline.stages[0]
    assert ensemble_accuracy_pct(stage, ["a3"]) == 80.0
    assert ensemble_accuracy_pct(stage, ["a3", "a2", "a1"]) == pytest.approx(78.8)  # (0.8, 0.7, 0.6)
    raw = problem(normalize_accuracy=False)
    assert ensemble_score(raw, 0, ["a1", "a2", "a3"]) == pytest.approx(0.788)
    ranked = problem(normalize_accuracy=True)
    scores = ranked.stage_accuracies[0]
    assert [ensemble_score(ranked, 0, [v]) for v in ("a1", "a2", "a3")] == [0.0, 0.5, 1.0]
    # 78.8 % lies between a2 (70 %, 0.5) and a3 (80 %, 1): 0.5 + 0.88 x 0.5
    assert ensemble_score(ranked, 0, ["a1", "a2", "a3"]) == pytest.approx(0.94)
    assert rank_score(stage, scores, 65.0) == pytest.approx(0.25)
    assert rank_score(stage, scores, 50.0) == 0.0 and rank_score(stage, scores, 95.0) == 1.0


def test_an_ensemble_option_adds_up_its_members():
    p = problem()
    rate = 6.0
    members = [p.make_option(0, "a1", 1.0, 1, 1, rate), p.make_option(0, "a3", 2.0, 1, 2, rate),
               p.make_option(0, "a2", 1.0, 2, 1, rate)]
    ens = ensemble_option(p, members)
    assert isinstance(ens, EnsembleOption)
    assert [m.variant for m in ens.members] == ["a3", "a2", "a1"]  # most accurate first
    assert ens.latency_s == pytest.approx(max(0.1, 0.3, 0.3 + 1 / 6))  # a2's batch of 2 waits 1/rate
    assert ens.latency_s == ens.model_latency_s + ens.queue_s
    assert ens.cores == 1 + 4 + 1
    assert ens.capacity_rps == min(10.0, 8.0, 8.0)
    assert ens.accuracy_pct == pytest.approx(78.8)
    cfg = ens.config()
    assert isinstance(cfg, StageEnsemble) and cfg.variant == "a3"
    assert [m.variant for m in stage_members(cfg)] == ["a3", "a2", "a1"]
    assert [m["replicas"] for m in cfg.as_dict()["members"]] == [2, 1, 1]
    with pytest.raises(ValueError):
        ensemble_option(p, [])
