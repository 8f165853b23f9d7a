"""The ``cocktail`` policy: per stage, an ensemble of variants that all answer every request (Cocktail).

Cocktail (Gunasekaran et al., NSDI'22) serves each request with an ensemble of models and
a majority vote, choosing the ensemble that reaches a target accuracy at the least cost.
Here, for every stage, the candidates are the sets of 1..``max_members`` variants, each
member with a (cpu, batch) choice and the fewest replicas that serve the whole rate within
the SLA (IPA's queueing term included). An ensemble's latency is its slowest member's;
its cores, power, batch and carbon are the members' sums (every member computes every
request); its accuracy is modelled (:mod:`ipa_ext.problem.ensemble`: independent errors,
majority vote).

The choice is exact and lexicographic: first the stage accuracies capped at their targets,
combined by ``accuracy_method`` (so every stage at its target whenever that is feasible),
then the least cost (the problem's weighted minimised terms: ``beta`` x cores + ``gamma``
x batch + ``delta`` x watts + ``epsilon`` x carbon), then the fewest cores, then the
highest accuracy; subject to the end-to-end SLA and ``power_cap_w``. Stages are joined one
at a time, keeping every partial configuration that could still be among the k best
(:mod:`ipa_ext.optimize.dominance`). ``target_accuracy`` (percent, one number for every stage or ``{stage:
percent}``) defaults to each stage's most accurate usable variant: Cocktail targets the
best single model's accuracy.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ipa_ext import hookimpl
from ipa_ext.config.numeric import option
from ipa_ext.config.show import shown
from ipa_ext.errors import ConfigError, SolverError
from ipa_ext.model import Configuration, Stage, StageConfig
from ipa_ext.objectives import Objective
from ipa_ext.optimizers import Optimizer
from ipa_ext.optimize import dominance
from ipa_ext.optimize.enumeration import REL_TOL
from ipa_ext.problem import Evaluation, Option, Problem
from ipa_ext.problem.ensemble import ACCURACY_MODEL, EnsembleOption, ensemble_accuracy_pct, ensemble_option

MAX_MEMBERS = 9
"""The largest ``max_members``: ensembles of more variants multiply the search for little."""
TARGET_WHERE = "optimizer.options.target_accuracy"
PRUNE_SLACK = 1e-6
"""Relative slack of the early latency and power pruning (the final check is exact)."""
LAT, POW, COST, CORES, CAPPED, ACC = range(6)
"""The columns of a candidate table: latency, power (under a power cap, else 0), cost, cores,
accuracy capped at the target and accuracy (fractions; across stages, combined)."""
KEYS = [CAPPED, COST, CORES, ACC]
"""The ranking, in order: capped accuracy (larger first), cost, cores, accuracy (larger first)."""
KEY_SIGN = np.array([-1.0, 1.0, 1.0, -1.0])
"""Turns the ranking columns into keys where smaller is better."""
MARGIN = 1e-9
"""A key's strict win when joining stages: relative to the largest total the column can reach
(or to the product, under ``accuracy_method: multiply``), far above any rounding."""
SMALL_TABLE = 64
"""Tables of a few rows are pruned once, with the others of their stage, not on their own."""
RANK_DIGITS = 12
"""The final ranking compares keys to this many significant digits: sums that differ only by
their rounding tie (a strict win of :data:`MARGIN` survives the rounding)."""
LIST_LIMIT = 1000
"""The most candidates a decision lists (a larger ``num_state_limit`` lists this many)."""
JOIN_LIMIT = 4_000_000
"""The most partial configurations one join of a stage may produce."""

CostTerms = Sequence[tuple[Objective, float]]


def undominated(rows: np.ndarray, k: int, margin: np.ndarray | None = None,
                relative: np.ndarray | None = None) -> np.ndarray:
    """:func:`ipa_ext.optimize.dominance.undominated` on a candidate table: latency and power
    are the bounds, the ranking the keys."""
    return dominance.undominated(rows[:, [LAT, POW]], rows[:, KEYS] * KEY_SIGN, k, margin, relative)


@dataclass
class _Table:
    """Candidates: one row of the columns above per item (a stage's ensemble, or a tuple of
    per-stage candidate indices for a prefix of the stages)."""

    items: list[Any]
    rows: np.ndarray

    def keep(self, k: int, above: int = 0) -> _Table:
        """The rows that could be among the k best; a table of at most ``above`` rows as it is
        (pruning a small table costs more than it saves when a larger one is pruned next)."""
        if len(self.rows) <= above:
            return self
        idx = undominated(self.rows, k)
        return _Table([self.items[i] for i in idx], self.rows[idx])


class CocktailPolicy(Optimizer):
    name = "cocktail"
    deterministic = True

    def __init__(self, max_members: int = 3, target_accuracy: Any = None) -> None:
        self.max_members = option("max_members", max_members, integer=True, minimum=1, maximum=MAX_MEMBERS)
        self.target_accuracy = _read_targets(target_accuracy)

    def solve(
        self, problem: Problem, rate_rps: float, current: Configuration | None, k: int
    ) -> tuple[list[Evaluation], dict[str, Any]]:
        current = problem.resolve_current(current)
        k = min(k, LIST_LIMIT)
        cost_terms = _cost_terms(problem)
        targets = self._targets(problem, current)
        tables = []
        for i in range(len(problem.pipeline.stages)):
            table = self._stage_table(problem, i, rate_rps, current[i] if current else None,
                                      targets[i] / 100.0, cost_terms, k)
            if not table.items:
                return [], {"accuracy_model": ACCURACY_MODEL}
            tables.append(table)
        combos = _combine(problem, tables, k)
        if not combos:
            return [], {"accuracy_model": ACCURACY_MODEL}
        evals = [self._evaluation(problem, c, rate_rps) for c in combos]
        return evals, self._info(problem, evals[0], targets, tables)

    def _targets(self, problem: Problem, current: Configuration | None) -> list[float]:
        """Per stage, the target accuracy in percent: the option's, else the most accurate usable variant's."""
        stages = problem.pipeline.stages
        names = [s.name for s in stages]
        given = self.target_accuracy
        if isinstance(given, dict):
            unknown = [s for s in given if s not in names]
            if unknown:
                raise ConfigError(f"no stage {shown(unknown[0])} in pipeline {problem.pipeline.name!r} "
                                  f"(stages: {', '.join(names)})", where=TARGET_WHERE)
        out = []
        for i, stage in enumerate(stages):
            if isinstance(given, dict) and stage.name in given:
                out.append(given[stage.name])
            elif isinstance(given, float):
                out.append(given)
            else:
                usable = {v for v, _, _ in problem.stage_choices(i, current[i] if current else None)}
                out.append(max(stage.variant(v).accuracy for v in usable) if usable else 100.0)
        return out

    def _stage_table(self, problem: Problem, index: int, rate: float, current: StageConfig | None,
                     target: float, cost_terms: CostTerms, k: int) -> _Table:
        """A stage's ensembles (tuples of member options) that could be among the k best."""
        stage = problem.pipeline.stages[index]
        members = _member_tables(problem, index, rate, current, cost_terms, k)
        if self.max_members > 1 and len(members) > 1:
            _check_accuracies(stage, members)
        order = sorted(members, key=lambda v: (-stage.variant(v).accuracy, v))
        items: list[tuple[tuple[str, ...], tuple[int, ...]]] = []  # (variants, option index of each)
        parts: list[np.ndarray] = []
        for size in range(1, min(self.max_members, len(order)) + 1):
            for subset in itertools.combinations(order, size):
                acc = ensemble_accuracy_pct(stage, subset) / 100.0
                picks = list(itertools.product(*(range(len(members[v].items)) for v in subset)))
                grid = np.array(picks, dtype=np.intp)
                cols = [members[v].rows[grid[:, j]] for j, v in enumerate(subset)]
                rows = np.empty((len(picks), 6))
                rows[:, LAT] = np.max([c[:, LAT] for c in cols], axis=0)
                for col in (POW, COST, CORES):
                    rows[:, col] = np.sum([c[:, col] for c in cols], axis=0)
                rows[:, CAPPED], rows[:, ACC] = min(acc, target), acc
                sized = _Table([(subset, p) for p in picks], rows).keep(k, SMALL_TABLE)
                items += sized.items
                parts.append(sized.rows)
        kept = _Table(items, np.concatenate(parts) if parts else np.empty((0, 6))).keep(k)
        ensembles = [tuple(members[v].items[j] for v, j in zip(subset, p)) for subset, p in kept.items]
        return _Table(ensembles, kept.rows)

    def _evaluation(self, problem: Problem, parts: Sequence[tuple[Option, ...]], rate: float) -> Evaluation:
        """Score the chosen ensembles: accuracy modelled per stage, every other term summed over members."""
        options: tuple[EnsembleOption, ...] = tuple(ensemble_option(problem, m) for m in parts)
        terms: dict[str, float] = {}
        weighted: dict[str, float] = {}
        total = 0.0
        for obj in problem.reported_objectives():
            if obj.name == "accuracy":
                values = [o.accuracy for o in options]
            else:
                values = [math.fsum(obj.stage_value(problem, m, rate) for m in o.members) for o in options]
            value = obj.combine(problem, values)
            w = problem.settings.weight(obj.weight)
            terms[obj.name] = value
            weighted[obj.name] = w * value
            total += obj.sense * w * value
        return Evaluation(
            config=tuple(o.config() for o in options), rate_rps=rate, options=options,
            sla_s=problem.sla_s, terms=problem.term_map(terms), weighted=problem.term_map(weighted),
            objective=total, violations=(),
        )

    def _info(self, problem: Problem, best: Evaluation, targets: Sequence[float],
              tables: Sequence[_Table]) -> dict[str, Any]:
        stages = problem.pipeline.stages
        reached = [o.accuracy_pct for o in best.options]  # type: ignore[attr-defined]
        info: dict[str, Any] = {
            "accuracy_model": ACCURACY_MODEL,
            "target_accuracy_pct": {s.name: t for s, t in zip(stages, targets)},
            "target_source": "option target_accuracy" if self.target_accuracy is not None
            else "each stage's most accurate usable variant",
            "stage_accuracy_pct": {s.name: a for s, a in zip(stages, reached)},
            "target_met": all(a >= t for a, t in zip(reached, targets)),
            "max_members": self.max_members,
            "stage_candidates": [len(t.items) for t in tables],
        }
        short = [f"{s.name} {a:.4g} % < {t:.4g} %" for s, a, t in zip(stages, reached, targets) if a < t]
        if short:
            info["notes"] = [
                "no feasible ensembles reach every stage's target accuracy at this rate; the chosen ones "
                f"come closest (stage accuracies capped at their targets, combined by accuracy_method "
                f"{problem.settings.accuracy_method}): " + ", ".join(short)]
        return info


def _read_targets(value: Any) -> float | dict[str, float] | None:
    """``target_accuracy``: none, a percentage for every stage, or ``{stage: percentage}``."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        if not value:
            raise ValueError("target_accuracy: expected a percentage or {stage: percentage}, got an empty mapping")
        return {str(s): option(f"target_accuracy.{s}", v, positive=True, maximum=100) for s, v in value.items()}
    return option("target_accuracy", value, positive=True, maximum=100)


def _cost_terms(problem: Problem) -> list[tuple[Objective, float]]:
    """The weighted minimised objectives, whose sum over members and stages is the cost."""
    out = []
    for obj in problem.active_objectives:
        if obj.sense >= 0:
            continue
        if not obj.is_additive(problem):
            raise ConfigError(f"cocktail sums its cost over members and stages, and the {obj.name} "
                              "objective is not a sum", where=f"weights.{obj.weight}")
        out.append((obj, problem.settings.weight(obj.weight)))
    return out


def _member_tables(problem: Problem, index: int, rate: float, current: StageConfig | None,
                   cost_terms: CostTerms, k: int) -> dict[str, _Table]:
    """Per variant, its sized options (IPA's: the fewest replicas for the whole rate, within the
    SLA and the caps) that could be in the k best, as rows (accuracy columns 0)."""
    cap = problem.settings.power_cap_w is not None and problem.pipeline.has_power
    opts: dict[str, list[Option]] = {}
    for opt in problem.stage_options(index, rate, current):
        opts.setdefault(opt.variant, []).append(opt)
    out = {}
    for v, items in opts.items():
        rows = np.zeros((len(items), 6))
        for r, o in enumerate(items):
            rows[r, LAT] = o.latency_s
            rows[r, POW] = o.profile.power_at(rate, o.replicas) if cap else 0.0
            rows[r, COST] = math.fsum(w * obj.stage_value(problem, o, rate) for obj, w in cost_terms)
            rows[r, CORES] = o.cores
        out[v] = _Table(items, rows).keep(k, SMALL_TABLE // 8)
    return out


def _check_accuracies(stage: Stage, members: Mapping[str, Any]) -> None:
    for v in members:
        acc = stage.variant(v).accuracy
        if not 0.0 <= acc <= 100.0:
            raise ConfigError(
                f"cocktail models a variant's accuracy as its chance (percent) of a correct answer, "
                f"but stage {stage.name!r} variant {v!r} has accuracy {acc:g}; use accuracies in 0..100 "
                "or max_members 1", where="optimizer.options.max_members")


def _combine(problem: Problem, tables: Sequence[_Table], k: int) -> list[tuple[tuple[Option, ...], ...]]:
    """The k best feasible configurations (members per stage), best first."""
    product = problem.settings.accuracy_method == "multiply"
    cap = problem.settings.power_cap_w if problem.pipeline.has_power else None
    rest = np.zeros((len(tables) + 1, 6))
    for s in range(len(tables) - 1, -1, -1):
        rest[s] = rest[s + 1] + tables[s].rows.min(axis=0)
    rows = np.array([[0.0, 0.0, 0.0, 0.0, 1.0, 1.0]]) if product else np.zeros((1, 6))
    picks = np.zeros((1, 0), dtype=np.intp)
    for s, table in enumerate(tables):
        n, m = len(rows), len(table.items)
        if n * m > JOIN_LIMIT:
            raise SolverError(f"cocktail: {n * m} ensemble combinations up to stage "
                              f"{problem.pipeline.stages[s].name!r} exceed {JOIN_LIMIT}; lower max_members "
                              "or num_state_limit")
        a, b = rows[:, None, :], table.rows[None, :, :]
        grown = a + b
        if product:
            grown[..., CAPPED:] = a[..., CAPPED:] * b[..., CAPPED:]
        grown = grown.reshape(-1, 6)
        last = s + 1 == len(tables)
        ok = _fits(grown[:, LAT] + rest[s + 1, LAT], problem.sla_s, not last)
        if cap is not None:
            ok &= _fits(grown[:, POW] + rest[s + 1, POW], cap, not last)
        idx = np.flatnonzero(ok)
        rows = grown[idx]
        picks = np.column_stack([picks[idx // m], idx % m])
        if not last:
            keep = undominated(rows, k, *_margins(tables, s + 1, product))
            rows, picks = rows[keep], picks[keep]
    keys = significant(rows[:, KEYS] * KEY_SIGN)
    order = np.lexsort(keys.T[::-1])
    return [tuple(tables[s].items[j] for s, j in enumerate(picks[i])) for i in order[:k]]


def significant(x: np.ndarray, digits: int = RANK_DIGITS) -> np.ndarray:
    """``x`` rounded to ``digits`` significant digits (monotone), so that sums equal but for their
    rounding rank as ties and the next key decides."""
    mag = np.floor(np.log10(np.abs(x), out=np.zeros_like(x), where=x != 0))
    scale = 10.0 ** (digits - 1 - mag)
    return np.where(x == 0, 0.0, np.round(x * scale) / scale)


def _margins(tables: Sequence[_Table], later: int, product: bool) -> tuple[np.ndarray, np.ndarray]:
    """The margins of a strict win in each key when stages ``later``... are still to come: absolute
    for sums (above the rounding of the largest total), relative for products of accuracies, none
    (infinite) where a later factor may be 0 (a product then collapses every difference)."""
    top = np.sum([np.abs(t.rows).max(axis=0) for t in tables], axis=0)[KEYS]
    margin = MARGIN * np.maximum(1.0, top)
    relative = np.zeros(len(KEYS))
    if product:
        for j, col in ((0, CAPPED), (3, ACC)):
            positive = all(t.rows[:, col].min() > 0 for t in tables[later:])
            margin[j], relative[j] = (0.0, MARGIN) if positive else (np.inf, 0.0)
    return margin, relative


def _fits(values: np.ndarray, bound: float, partial: bool) -> np.ndarray:
    """``values <= bound``: with :func:`ipa_ext.problem.within`'s tolerance for a whole configuration
    (its sums are the evaluation's, added in the same order), with a looser slack for a prefix."""
    if partial:
        return values <= bound * (1 + PRUNE_SLACK) + PRUNE_SLACK
    return values <= bound + REL_TOL * max(1.0, abs(bound))


@hookimpl
def register_optimizers(register) -> None:
    register("cocktail", CocktailPolicy)
