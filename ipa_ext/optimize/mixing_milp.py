"""The mixing MILP: per stage, parts with binary use, integer replicas and continuous load;
the stage's latency is its slowest used part's (docs/optimizers.md, "Variant mixing").

Exact for linear objectives. A batching part's queueing term ``(batch-1)/load`` is convex in
its load: it enters as tangent cuts, added at the solution until every part meets it exactly
(outer approximation); a solution the exact rule rejects for any other reason (solver
tolerances) is cut off and not returned.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Sequence

import pulp

from ..errors import ConfigError, SolverError
from ..problem import Evaluation, Problem
from .mixing import (
    Choice, MixPart, MixSpec, evaluate_mix, is_accuracy, meets_floor, mix_cores, mix_of, part_option,
    stage_choices, within_budget,
)
from .selection import _affine, _new_var
from .solvers import OPTIMAL, choose_solver, make_solver

MAX_ROUNDS = 200
"""Most solves for one decision (tangent-cut rounds and rejected solutions together)."""
MIN_SHARE = 1e-6
"""A used part serves at least this share of its stage's load (so every used part is a part of
the mix, and two solutions differ in their mixes exactly when they differ in the parts used)."""
INITIAL_TANGENTS = 6
"""Tangent cuts per batching part before the first solve (at full loads of 1..N replicas)."""


def affine_terms(problem: Problem, ch: Choice, rate: float) -> tuple[float, float, float]:
    """The weighted objective of a part as ``a*used + b*replicas + c*load`` (maximised).

    Accuracy is ``load/rate x accuracy`` per stage (divided by the stage count for
    ``average``); every other active term is read from the objective at three points and
    checked at a fourth, so a third-party term that is not affine is refused.
    """
    a = b = c = 0.0
    stages = len(problem.pipeline.stages)
    for obj in problem.active_objectives:
        scale = obj.sense * problem.settings.weight(obj.weight)
        if is_accuracy(obj):
            per = ch.accuracy / rate / (stages if problem.settings.accuracy_method == "average" else 1)
            c += scale * per
            continue

        def f(n: int, x: float) -> float:
            part = MixPart(ch.stage, ch.variant, ch.cpu, ch.batch, n, x)
            return obj.stage_value(problem, part_option(problem, part), x)

        f1 = f(1, rate)
        bn = f(2, rate) - f1
        cx = (f1 - f(1, rate / 2)) / (rate / 2)
        an = f1 - bn - cx * rate
        probe = f(3, rate / 4)
        if not math.isclose(probe, an + 3 * bn + cx * rate / 4, rel_tol=1e-9, abs_tol=1e-9 * max(1.0, abs(f1))):
            raise ConfigError(
                f"objective {obj.name!r} is not affine in a part's replicas and load, so the mixing "
                "MILP cannot model it; set its weight to 0", where=f"weights.{obj.weight}")
        a, b, c = a + scale * an, b + scale * bn, c + scale * cx
    return a, b, c


class MixModel:
    """The PuLP model of one decision; :meth:`solve` returns verified mixes. With
    ``fewest_cores`` the objective is the fewest cores instead of the problem's."""

    def __init__(self, problem: Problem, rate: float, spec: MixSpec, choices: list[list[Choice]],
                 fewest_cores: bool = False) -> None:
        self.problem, self.rate, self.spec, self.choices = problem, rate, spec, choices
        self.lp = pulp.LpProblem("mix", pulp.LpMaximize)
        self.y, self.n, self.x, self.latency = {}, {}, {}, []
        self.order: list[pulp.LpVariable] = []
        self.rows = 0
        for s, row in enumerate(choices):
            for j, ch in enumerate(row):
                key = (s, j)
                self.y[key] = self._var(f"y_{s}_{j}", 0, 1, pulp.LpBinary)
                self.n[key] = self._var(f"n_{s}_{j}", 0, ch.max_replicas, pulp.LpInteger)
                self.x[key] = self._var(f"x_{s}_{j}", 0, rate, pulp.LpContinuous)
            self.latency.append(self._var(f"L_{s}", 0, problem.sla_s, pulp.LpContinuous))
        self._constraints()
        if fewest_cores:
            self.lp += _affine([(self.n[s, j], -ch.cpu) for s, row in enumerate(choices) for j, ch in enumerate(row)])
        else:
            self._objective()

    def _next(self) -> int:
        self.rows += 1
        return self.rows

    def _var(self, name: str, low: float, up: float, cat: str) -> pulp.LpVariable:
        v = _new_var(self.lp, name, low, up, cat)
        self.order.append(v)
        return v

    def _constraints(self) -> None:
        lp, spec, p = self.lp, self.spec, self.problem
        power = []
        for s, row in enumerate(self.choices):
            lp += _affine([(self.x[s, j], 1.0) for j in range(len(row))]) == self.rate, f"rate_{s}"
            lp += _affine([(self.y[s, j], 1.0) for j in range(len(row))]) <= spec.max_variants, f"parts_{s}"
            by_variant: dict[str, list[int]] = {}
            for j, ch in enumerate(row):
                y, n, x = self.y[s, j], self.n[s, j], self.x[s, j]
                by_variant.setdefault(ch.variant, []).append(j)
                lp += _affine([(x, 1.0), (n, -ch.throughput)]) <= 0, f"cap_{s}_{j}"
                lp += _affine([(n, 1.0), (y, -ch.max_replicas)]) <= 0, f"use_{s}_{j}"
                lp += _affine([(n, 1.0), (y, -1.0)]) >= 0, f"one_{s}_{j}"
                lp += _affine([(self.latency[s], 1.0), (y, -ch.latency)]) >= 0, f"lat_{s}_{j}"
                lp += _affine([(x, 1.0), (y, -MIN_SHARE * self.rate)]) >= 0, f"min_{s}_{j}"
                if ch.batch > 1:
                    slack = p.sla_s - ch.latency
                    if slack > 0:  # the queueing term alone must fit the SLA
                        lp += _affine([(x, 1.0), (y, -(ch.batch - 1) / slack)]) >= 0, f"qmin_{s}_{j}"
                    for r in range(1, min(ch.max_replicas, INITIAL_TANGENTS) + 1):
                        self.tangent(s, j, min(r * ch.throughput, self.rate))
                prof = p.pipeline.stages[s].profile(ch.variant, ch.cpu, ch.batch)
                if p.settings.power_cap_w is not None and p.pipeline.has_power:
                    power += [(n, prof.idle_power_w), (x, prof.dynamic_energy_j or 0.0)]
            for v, js in by_variant.items():
                if len(js) > 1:
                    lp += _affine([(self.y[s, j], 1.0) for j in js]) <= 1, f"variant_{s}_{js[0]}"
        lp += _affine([(L, 1.0) for L in self.latency]) <= p.sla_s, "sla"
        if power:
            lp += _affine(power) <= p.settings.power_cap_w, "power_cap"
        if spec.max_cores is not None:
            lp += _affine([(self.n[s, j], ch.cpu) for s, row in enumerate(self.choices)
                           for j, ch in enumerate(row)]) <= spec.max_cores, "max_cores"
        if spec.accuracy_floor is not None:
            lp += self._accuracy() >= spec.accuracy_floor, "accuracy_floor"

    def _accuracy(self) -> pulp.LpAffineExpression:
        stages = len(self.choices)
        div = stages if self.problem.settings.accuracy_method == "average" else 1
        return _affine([(self.x[s, j], ch.accuracy / self.rate / div)
                        for s, row in enumerate(self.choices) for j, ch in enumerate(row)])

    def _objective(self) -> None:
        terms = []  # (variable, coefficient, the term's largest magnitude)
        for s, row in enumerate(self.choices):
            for j, ch in enumerate(row):
                a, b, c = affine_terms(self.problem, ch, self.rate)
                terms += [(self.y[s, j], a, abs(a)), (self.n[s, j], b, abs(b)),
                          (self.x[s, j], c, abs(c) * self.rate)]
        # as the selection MILP does: the largest term becomes 1e6, so solvers' absolute
        # tolerances cannot hide differences such as IPA's gamma = 1e-6 per batch unit
        biggest = max((m for *_, m in terms), default=0.0)
        scale = 1e6 / biggest if 1e-12 <= biggest < math.inf else 1.0
        self.lp += _affine([(v, t * scale) for v, t, _ in terms])

    def tangent(self, s: int, j: int, x0: float) -> None:
        """``L_s >= latency + (b-1)/x`` of a used part, cut at load ``x0`` (exact there)."""
        ch = self.choices[s][j]
        q = ch.batch - 1
        self.lp += _affine([(self.latency[s], 1.0), (self.y[s, j], -(ch.latency + 2 * q / x0)),
                            (self.x[s, j], q / x0 ** 2)]) >= 0, f"tan_{self._next()}"

    def nogood(self, used: Sequence[tuple[int, int]]) -> None:
        """Exclude exactly this set of used parts (other replicas or loads of it included)."""
        on = set(used)
        terms = [(self.y[key], 1.0 if key in on else -1.0) for key in self.y]
        self.lp += _affine(terms) <= len(on) - 1, f"nogood_{self._next()}"

    def decode(self, values: Sequence[float]) -> tuple[list[list[MixPart]], list[tuple[int, int]]]:
        """The mix of a solution: used parts, their loads clipped to capacity and summing to the
        rate, replicas the fewest that carry the load (never more than the solver's)."""
        val = dict(zip((v.name for v in self.order), values))
        stages, used = [], []
        for s, row in enumerate(self.choices):
            picked = []
            for j, ch in enumerate(row):
                x = max(0.0, val[f"x_{s}_{j}"])
                n = round(val[f"n_{s}_{j}"])
                if val[f"y_{s}_{j}"] > 0.5:
                    picked.append((j, ch, n, min(x, n * ch.throughput)))
            loads = balance([x for *_, x in picked], [n * ch.throughput for _, ch, n, _ in picked], self.rate)
            parts = []
            for (j, ch, n, _), load in zip(picked, loads):
                need = max(1, math.ceil(load / ch.throughput - 1e-9))
                parts.append(MixPart(s, ch.variant, ch.cpu, ch.batch, min(n, need) if n >= 1 else need, load))
                used.append((s, j))
            stages.append(parts)
        return stages, used

    def solve(self, k: int) -> tuple[list[Evaluation], dict[str, Any]]:
        solver = make_solver(choose_solver(self.spec.solver), self.spec.time_limit_s)
        found: list[Evaluation] = []
        info = {"solves": 0, "tangent_cuts": 0, "rejected": 0}
        first = True
        while len(found) < k:
            if info["solves"] >= MAX_ROUNDS:
                raise SolverError(f"the mixing MILP did not settle within {MAX_ROUNDS} solves")
            result = solver.solve(self.lp, self.order) if first else solver.resolve(self.lp, self.order)
            first = False
            info["solves"] += 1
            if result.status != OPTIMAL:
                break
            stages, used = self.decode(result.values)
            if any(not parts for parts in stages):
                info["rejected"] += 1
                self.nogood(used)
                continue
            ev = evaluate_mix(self.problem, stages, self.rate)
            if (ev.feasible and meets_floor(self.problem, stages, self.rate, self.spec.accuracy_floor)
                    and within_budget(stages, self.spec.max_cores)):
                found.append(ev)
                self.nogood(used)
            elif not self._cut_queueing(stages, used, result.values):
                info["rejected"] += 1
                self.nogood(used)
            else:
                info["tangent_cuts"] += 1
        return found, info

    def _cut_queueing(self, stages: list[list[MixPart]], used: list[tuple[int, int]], values: Sequence[float]) -> bool:
        """Add tangent cuts where a batching part's real latency exceeds the model's stage
        latency; False when there is none (the solution failed for another reason)."""
        val = dict(zip((v.name for v in self.order), values))
        added = False
        for (s, j), part in zip(used, (p for parts in stages for p in parts)):
            if part.batch == 1:
                continue
            real = part_option(self.problem, part).latency_s
            if real > val[f"L_{s}"] + 1e-9 * max(1.0, real):
                self.tangent(s, j, part.load)
                added = True
        return added


def balance(loads: list[float], caps: list[float], rate: float) -> list[float]:
    """Loads within their capacities that sum to the rate, moved as little as possible from the
    solver's (whose tolerances leave differences of about 1e-7)."""
    out = [min(x, c) for x, c in zip(loads, caps)]
    gap = rate - sum(out)
    for i in sorted(range(len(out)), key=lambda i: out[i] - caps[i]):  # most spare first
        if gap > 0:
            move = min(gap, caps[i] - out[i])
        else:
            move = max(gap, -out[i])
        out[i] += move
        gap -= move
    return out


def solve_milp(
    problem: Problem, rate: float, spec: MixSpec, k: int, current: Any = None
) -> tuple[list[Evaluation], dict[str, Any]]:
    """The k best mixes by the mixing MILP (see the module docstring)."""
    rate = max(rate, 1e-6)  # an idle pipeline is sized for a trickle
    choices = stage_choices(problem, rate, spec, current)
    info: dict[str, Any] = {"method": "milp", "choices": sum(map(len, choices))}
    if any(not row for row in choices):
        return [], info
    model = MixModel(problem, rate, spec, choices)
    found, stats = model.solve(k)
    info.update(stats)
    found.sort(key=lambda e: -e.objective)
    return found, info


def fewest_cores(problem: Problem, rate: float, spec: MixSpec, current: Any = None) -> float | None:
    """The fewest cores any mix needs at ``rate`` within the SLA and power cap (no budget, no
    floor), by the mixing MILP; None when no mix is feasible at all."""
    rate = max(rate, 1e-6)
    free = dataclasses.replace(spec, max_cores=None, accuracy_floor=None)
    choices = stage_choices(problem, rate, free, current)
    if any(not row for row in choices):
        return None
    found, _ = MixModel(problem, rate, free, choices, fewest_cores=True).solve(1)
    return mix_cores(mix_of(found[0], rate)) if found else None
