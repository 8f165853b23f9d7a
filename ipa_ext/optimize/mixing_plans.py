"""Mixing with a product of stage accuracies (``accuracy_method: multiply``, two or more stages),
exactly by enumeration: every stage plan, then every combination of plans (numpy).

A stage plan is a set of at most ``max_variants`` parts (distinct variants), a (cpu, batch)
each, replicas for every part, and loads filled most accurate first (each part up to its
capacity, the least accurate takes the rest). For fixed parts and replicas that fill gives
every stage its highest accuracy, hence the highest product; it is the optimum over all
splits when no part batches and power and carbon carry no weight (then the loads change
nothing else), and otherwise the search is restricted to it (docs/optimizers.md).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import numpy as np

from ..errors import SolverError
from ..problem import Evaluation, Problem, within
from .mixing import Choice, MixPart, MixSpec, evaluate_mix, is_accuracy, part_option, stage_choices

COMBINATION_LIMIT = 20_000_000
"""Most combinations of stage plans the enumeration visits."""
CHUNK = 1 << 18


@dataclass(frozen=True)
class Plan:
    """One stage's parts with the numbers the combination search needs."""

    parts: tuple[MixPart, ...]
    accuracy: float
    value: float
    latency: float
    power: float
    cores: float


def fills(choices: Sequence[Choice], rate: float, cap: int) -> Iterator[tuple[MixPart, ...]]:
    """Replicas for every part (most accurate first) and the loads they take in that order;
    the last part gets the fewest replicas that carry the rest. Every part serves a load."""
    heads = [range(1, ch.max_replicas + 1) for ch in choices[:-1]]
    last = choices[-1]
    for counts in itertools.product(*heads):
        remaining, parts = rate, []
        for ch, n in zip(choices, counts):
            load = min(n * ch.throughput, remaining)
            if load <= 0:
                break
            remaining -= load
            parts.append(MixPart(ch.stage, ch.variant, ch.cpu, ch.batch, n, load))
        else:
            if remaining <= 0 and len(choices) > 1:
                continue
            n = max(1, math.ceil(remaining / last.throughput))
            if n <= cap:
                yield (*parts, MixPart(last.stage, last.variant, last.cpu, last.batch, n, remaining))


def stage_plans(problem: Problem, row: Sequence[Choice], rate: float, spec: MixSpec) -> list[Plan]:
    """Every plan of one stage whose slowest part fits the SLA."""
    by_variant: dict[str, list[Choice]] = {}
    for ch in row:
        by_variant.setdefault(ch.variant, []).append(ch)
    variants = sorted(by_variant, key=lambda v: (-by_variant[v][0].accuracy, v))  # most accurate first
    linear = [(o, o.sense * problem.settings.weight(o.weight)) for o in problem.active_objectives if not is_accuracy(o)]
    has_power = problem.settings.power_cap_w is not None and problem.pipeline.has_power
    out = []
    for size in range(1, spec.max_variants + 1):
        for subset in itertools.combinations(variants, size):
            for picks in itertools.product(*(by_variant[v] for v in subset)):
                for parts in fills(picks, rate, problem.settings.scaling_cap):
                    opts = [part_option(problem, p) for p in parts]
                    latency = max(o.latency_s for o in opts)
                    if not within(latency, problem.sla_s):
                        continue
                    value = sum(w * obj.stage_value(problem, o, p.load) for obj, w in linear for o, p in zip(opts, parts))
                    power = sum(o.profile.power_at(p.load, p.replicas) for o, p in zip(opts, parts)) if has_power else 0.0
                    acc = sum(p.load / rate * o.accuracy for o, p in zip(opts, parts))
                    cores = sum(p.cpu * p.replicas for p in parts)
                    if spec.max_cores is None or within(cores, spec.max_cores):
                        out.append(Plan(parts, acc, value, latency, power, cores))
    return out


def _combinations(plans: list[list[Plan]]) -> Iterator[np.ndarray]:
    """Every combination of plan indices, in chunks of rows."""
    sizes = [len(p) for p in plans]
    total = math.prod(sizes)
    for start in range(0, total, CHUNK):
        flat = np.arange(start, min(total, start + CHUNK), dtype=np.int64)
        yield np.stack(np.unravel_index(flat, sizes), axis=1)


def solve_plans(
    problem: Problem, rate: float, spec: MixSpec, k: int, current: Any = None
) -> tuple[list[Evaluation], dict[str, Any]]:
    """The k best combinations of stage plans (distinct), best first."""
    rate = max(rate, 1e-6)
    plans = [stage_plans(problem, row, rate, spec) for row in stage_choices(problem, rate, spec, current)]
    combos = math.prod(len(p) for p in plans)
    info: dict[str, Any] = {"method": "plan enumeration", "plans": [len(p) for p in plans], "combinations": combos}
    if combos == 0:
        return [], info
    if combos > COMBINATION_LIMIT:
        raise SolverError(f"mixing with accuracy_method multiply would enumerate {combos} combinations of "
                          f"stage plans, more than {COMBINATION_LIMIT}; lower max_variants or scaling_cap")
    weight = sum(o.sense * problem.settings.weight(o.weight) for o in problem.active_objectives if is_accuracy(o))
    fields = ("accuracy", "value", "latency", "power", "cores")
    arr = [{f: np.array([getattr(p, f) for p in row]) for f in fields} for row in plans]
    best_rows: list[np.ndarray] = []
    best_vals: list[np.ndarray] = []
    for rows in _combinations(plans):
        cols = [[a[f][rows[:, s]] for s, a in enumerate(arr)] for f in fields]
        acc = np.prod(cols[0], axis=0)
        value, lat, watts, cores = (np.sum(c, axis=0) for c in cols[1:])
        ok = lat <= problem.sla_s * (1 + 1e-9) + 1e-12
        if problem.settings.power_cap_w is not None and problem.pipeline.has_power:
            ok &= watts <= problem.settings.power_cap_w * (1 + 1e-9)
        if spec.max_cores is not None:
            ok &= cores <= spec.max_cores * (1 + 1e-9)
        if spec.accuracy_floor is not None:
            ok &= acc >= spec.accuracy_floor - 1e-9 * max(1.0, abs(spec.accuracy_floor))
        score = value + weight * acc
        idx = np.flatnonzero(ok)
        if len(idx) > k:
            idx = idx[np.argpartition(-score[idx], k - 1)[:k]]
        best_rows.append(rows[idx])
        best_vals.append(score[idx])
    rows = np.concatenate(best_rows)
    vals = np.concatenate(best_vals)
    info["feasible_kept"] = int(len(rows))
    found = []
    for i in np.argsort(-vals, kind="stable"):
        ev = evaluate_mix(problem, [plans[s][int(j)].parts for s, j in enumerate(rows[i])], rate)
        if ev.feasible:
            found.append(ev)
        if len(found) == k:
            break
    return found, info
