"""An independent, IPA-style exhaustive search used as ground truth in tests.

It follows upstream ``Optimizer.all_states`` + ``brute_force``: every variant,
every replica count from 1 to ``scaling_cap``, every batch (up to
``batching_cap``), every cpu the allocation mode allows; keep the states that
meet the SLA and sustain the load; rank by IPA's objective (plus power and
carbon terms). It deliberately shares no code with ipa_ext's optimizers; only
the SLA and base allocations come from the Problem (they are hand-checked in
test_problem.py).
"""

from __future__ import annotations

import itertools
import math

from ipa_ext.problem import Problem


def ipa_states(problem: Problem, rate: float, current=None, max_replicas=None):
    s = problem.settings
    pipe = problem.pipeline
    current = current if current is not None else s.initial
    base = problem.base_allocations() if s.allocation_mode == "base" else None
    per_stage = []
    for i, stage in enumerate(pipe.stages):
        choices = []
        variants = stage.variant_names if s.baseline_mode != "scale" else (current[i].variant,)
        for v in variants:
            if s.allocation_mode == "variable":
                cpus = stage.cpus(v)
            elif s.allocation_mode == "base":
                cpus = (base[i][v],)
            else:
                cpus = (s.initial[i].cpu,)
            for c in cpus:
                for b in stage.batches(v, c):
                    if s.batching_cap is not None and b > s.batching_cap:
                        continue
                    top = s.scaling_cap if max_replicas is None else min(s.scaling_cap, max_replicas)
                    reps = [current[i].replicas] if s.baseline_mode == "switch" else range(1, top + 1)
                    for n in reps:
                        choices.append((v, c, b, n))
        per_stage.append(choices)
    out = []
    for combo in itertools.product(*per_stage):
        lat = 0.0
        ok = True
        accs, cores, batch, power = [], 0.0, 0, 0.0
        for i, (v, c, b, n) in enumerate(combo):
            prof = pipe.stages[i].profile(v, c, b)
            if n * prof.throughput_rps < rate:
                ok = False
                break
            lat += prof.latency_s + ((b - 1) / rate if rate > 0 else 0.0)
            if s.normalize_accuracy:
                ranked = sorted(pipe.stages[i].variants, key=lambda x: (x.accuracy, x.name))
                k = [x.name for x in ranked].index(v)
                accs.append(1.0 if len(ranked) == 1 else k / (len(ranked) - 1))
            else:
                accs.append(pipe.stages[i].variant(v).accuracy / 100)
            cores += c * n
            batch += b
            if prof.has_power:
                power += n * prof.idle_power_w + rate * prof.dynamic_energy_j
        if not ok or lat > problem.sla_s * (1 + 1e-9):
            continue
        if s.power_cap_w is not None and power > s.power_cap_w * (1 + 1e-9):
            continue
        if s.accuracy_method == "sum":
            acc = sum(accs)
        elif s.accuracy_method == "average":
            acc = sum(accs) / len(accs)
        else:
            acc = math.prod(accs)
        obj = s.weight("alpha") * acc - s.weight("beta") * cores - s.weight("gamma") * batch
        obj -= s.weight("delta") * power
        if s.carbon_intensity_g_per_kwh is not None:
            obj -= s.weight("epsilon") * power * s.carbon_intensity_g_per_kwh / 3.6e6
        out.append((obj, combo))
    out.sort(key=lambda t: -t[0])
    return out
