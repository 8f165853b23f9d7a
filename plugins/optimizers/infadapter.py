"""The ``infadapter`` policy: a set of variants with the load split among them (InfAdapter).

InfAdapter (Salmani et al., 2023) serves one model task with several variants
at once and splits the load among them, filling the most accurate variant
first, to maximise ``alpha x request-weighted accuracy - beta x cores`` under
a latency SLO. It applies to single-stage pipelines only; on a pipeline with
more stages this policy returns no candidates and says so (the adapter then
keeps the running configuration).

The search: every set of at most ``max_variants`` variants (default 2), every
(cpu, batch) choice of each under the allocation mode, and replica counts for
all but the least accurate variant of the set, which takes the remaining load.
The load goes to the most accurate variant first, up to its capacity. Each
part must meet the SLA with IPA's queueing term at its own share of the rate.
The objective is the problem's: accuracy weighted by the shares; cores, batch,
power (at each part's share of the rate) and carbon summed over the parts.
InfAdapter's servers do not batch, so ``batch`` is 1 unless ``allow_batching``.
"""

from __future__ import annotations

import itertools
from typing import Any

from ipa_ext import hookimpl
from ipa_ext.config.numeric import option
from ipa_ext.model import Configuration
from ipa_ext.optimizers import Optimizer
from ipa_ext.problem.mix import StageMix
from ipa_ext.problem import Evaluation, Option, Problem, replicas_needed, within


class InfAdapterPolicy(Optimizer):
    name = "infadapter"
    deterministic = True
    uses_current = False

    def __init__(self, max_variants: int = 2, allow_batching: bool = False) -> None:
        if not isinstance(allow_batching, bool):
            raise ValueError(f"allow_batching must be true or false, got {allow_batching!r}")
        self.max_variants = option("max_variants", max_variants, integer=True, minimum=1)
        self.allow_batching = allow_batching

    def solve(
        self, problem: Problem, rate_rps: float, current: Configuration | None, k: int
    ) -> tuple[list[Evaluation], dict[str, Any]]:
        n_stages = len(problem.pipeline.stages)
        if n_stages != 1:
            return [], {
                "reason": f"infadapter applies to single-stage pipelines only; "
                f"this pipeline has {n_stages} stages"
            }
        acc = problem.stage_accuracies[0]
        choices: dict[str, list[tuple[float, int]]] = {}
        for v, c, b in problem.stage_choices(0, current[0] if current else None):
            if b != 1 and not self.allow_batching:
                continue
            choices.setdefault(v, []).append((c, b))
        variants = sorted(choices, key=lambda v: (-acc[v], v))  # most accurate first
        objectives = problem.active_objectives
        scored: list[tuple[float, int, Evaluation]] = []
        counter = 0
        for size in range(1, self.max_variants + 1):
            for subset in itertools.combinations(variants, size):
                for picks in itertools.product(*(choices[v] for v in subset)):
                    for plan in self._plans(problem, subset, picks, rate_rps):
                        ev = self._evaluate(problem, plan, rate_rps, objectives)
                        if ev is None:
                            continue
                        counter += 1
                        scored.append((ev.objective, -counter, ev))
        scored.sort(key=lambda x: (x[0], x[1]), reverse=True)
        return [e for _, _, e in scored[:k]], {"plans": counter}

    def _plans(self, problem: Problem, subset, picks, rate: float):
        """Replica counts per part: all but the last sized by enumeration, the last takes the rest."""
        stage = problem.pipeline.stages[0]
        cap = problem.settings.scaling_cap
        thr = [stage.profile(v, c, b).throughput_rps for v, (c, b) in zip(subset, picks)]  # type: ignore[union-attr]
        head = len(subset) - 1
        ranges = [range(1, min(cap, replicas_needed(rate, thr[i])) + 1) for i in range(head)]
        for counts in itertools.product(*ranges):
            remaining = rate
            parts = []
            ok = True
            for i, n in enumerate(counts):
                load = min(n * thr[i], remaining)
                if load <= 0:
                    ok = False  # an earlier part already takes everything
                    break
                remaining -= load
                parts.append((subset[i], picks[i], n, load))
            if not ok:
                continue
            if head > 0 and remaining <= 0:
                continue
            n_last = replicas_needed(remaining, thr[head])
            if n_last > cap:
                continue
            parts.append((subset[head], picks[head], n_last, remaining))
            yield parts

    def _evaluate(self, problem: Problem, plan, rate: float, objectives) -> Evaluation | None:
        options: list[tuple[Option, float]] = []
        violations: list[str] = []
        for v, (c, b), n, load in plan:
            opt = problem.make_option(0, v, c, b, n, load)
            if not within(opt.latency_s, problem.sla_s):
                return None
            options.append((opt, load))
        s = problem.settings
        if s.power_cap_w is not None and problem.pipeline.has_power:
            p = sum(o.profile.power_at(load, o.replicas) for o, load in options)
            if not within(p, s.power_cap_w):
                return None
        share = [(load / rate if rate > 0 else 1.0 / len(options)) for _, load in options]
        terms: dict[str, float] = {}
        weighted: dict[str, float] = {}
        total = 0.0
        for obj in problem.reported_objectives():
            if obj.name == "accuracy":
                value = sum(w * o.accuracy for (o, _), w in zip(options, share))
            else:
                value = sum(obj.stage_value(problem, o, load) for o, load in options)
            terms[obj.name] = value
            w = s.weight(obj.weight)
            weighted[obj.name] = w * value
            total += obj.sense * w * value
        mix = StageMix.of([(o.config(), w) for (o, _), w in zip(options, share)])
        main = max(options, key=lambda ol: ol[1])[0]
        return Evaluation(
            config=(mix,),
            rate_rps=rate,
            options=(main,),
            sla_s=problem.sla_s,
            terms=problem.term_map(terms),
            weighted=problem.term_map(weighted),
            objective=total,
            violations=tuple(violations),
        )


@hookimpl
def register_optimizers(register) -> None:
    register("infadapter", InfAdapterPolicy)
