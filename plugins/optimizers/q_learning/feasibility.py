"""The exact feasibility search q-learning runs before training: a feasible anchor configuration,
or proof that none exists."""

from __future__ import annotations

import math

from ipa_ext.model import Configuration
from ipa_ext.problem import Option, Problem, within


def feasibility_anchor(problem: Problem, rate_rps: float, current: Configuration | None) -> list[Option] | None:
    """A feasible configuration, or None when provably none exists.

    Every constraint but the SLA and the power cap is per stage and met by
    ``Problem.stage_options``; the SLA and the cap are sums over stages. A Pareto search
    over (latency, power) partial sums, pruned by dominance and by the bounds, is exact.
    Without a power cap it keeps the fastest partial configuration only. Among the
    feasible points found, the one with the best objective is returned.
    """
    per_stage = problem.options(rate_rps, current)
    if any(not o for o in per_stage):
        return None
    cap = problem.settings.power_cap_w
    use_power = cap is not None and problem.pipeline.has_power
    sla = problem.sla_s

    def power(o: Option) -> float:
        return o.profile.power_at(rate_rps, o.replicas) if use_power else 0.0

    n = len(per_stage)
    rest_lat = [0.0] * (n + 1)
    rest_pow = [0.0] * (n + 1)
    for i in range(n - 1, -1, -1):
        rest_lat[i] = rest_lat[i + 1] + min(o.latency_s for o in per_stage[i])
        rest_pow[i] = rest_pow[i + 1] + min(power(o) for o in per_stage[i])
    frontier: list[tuple[float, float, tuple[Option, ...]]] = [(0.0, 0.0, ())]
    for i, opts in enumerate(per_stage):
        grown = []
        for lat, pw, path in frontier:
            for o in opts:
                l2, p2 = lat + o.latency_s, pw + power(o)
                if i + 1 < n and (not within(l2 + rest_lat[i + 1], sla)
                                  or (use_power and not within(p2 + rest_pow[i + 1], cap))):  # type: ignore[arg-type]
                    continue
                grown.append((l2, p2, path + (o,)))
        grown.sort(key=lambda t: (t[0], t[1]))
        frontier = []
        best_pow = math.inf
        for t in grown:
            if t[1] < best_pow:
                frontier.append(t)
                best_pow = t[1]
        if not frontier:
            return None
    best: tuple[float, list[Option]] | None = None
    for _lat, _pw, path in frontier:
        opts = list(path)
        if problem.violations(opts, rate_rps):
            continue
        obj = problem.objective_value(opts, rate_rps)
        if best is None or obj > best[0]:
            best = (obj, opts)
    return best[1] if best else None
