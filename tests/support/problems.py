"""Builders for small synthetic pipelines and problems (and the hand-computed one-stage example)."""

from __future__ import annotations

import importlib
import itertools
import math
from typing import Any, Mapping

from hypothesis import strategies as st

from ipa_ext.host import load_plugins
from ipa_ext.model import Pipeline, Profile, Stage, StageConfig, Variant
from ipa_ext.problem import Problem, Settings

_HOST = None


def objectives():
    global _HOST
    if _HOST is None:
        # only the built-in objectives, registered as any plugin would be
        _HOST = load_plugins(entry_points=False)
        _HOST.add_plugin(importlib.import_module("ipa_ext_plugins.objectives.builtin"), "objectives")
    return [_HOST.registry.create("objective", n) for n in _HOST.registry.names("objective")]


def make_pipeline(spec: Mapping[str, Any], name: str = "synthetic") -> Pipeline:
    """``{stage: {"variants": {v: acc}, "rows": [(v, cpu, batch, latency, thr, idle, epr)]}}``."""
    stages = []
    for sname, s in spec.items():
        variants = tuple(Variant(v, a) for v, a in s["variants"].items())
        profiles = {}
        for row in s["rows"]:
            v, c, b, lat, thr = row[:5]
            idle = row[5] if len(row) > 5 else None
            epr = row[6] if len(row) > 6 else None
            profiles[(v, float(c), int(b))] = Profile(sname, v, float(c), int(b), lat, thr, None, idle, epr)
        stages.append(Stage(sname, variants, profiles))
    return Pipeline(name, tuple(stages))


def make_problem(pipeline: Pipeline, **settings: Any) -> Problem:
    return Problem(pipeline, Settings(**settings), objectives())


def initial_of(pipeline: Pipeline, replicas: int = 1) -> tuple[StageConfig, ...]:
    """The first variant at its smallest cpu and batch, per stage."""
    out = []
    for s in pipeline.stages:
        v = s.variants[0].name
        c = s.cpus(v)[0]
        out.append(StageConfig(v, c, s.batches(v, c)[0], replicas))
    return tuple(out)


@st.composite
def pipelines(draw, max_stages: int = 3, max_variants: int = 4, max_cpus: int = 3, max_batches: int = 4,
              power: bool = True) -> Pipeline:
    """Random small pipelines: 1-3 stages, 1-4 variants, 1-3 cpu options, 1-4 batches."""
    n_stages = draw(st.integers(1, max_stages))
    cpu_pool = [1.0, 2.0, 4.0, 8.0]
    batch_pool = [1, 2, 4, 8]
    spec: dict[str, Any] = {}
    for si in range(n_stages):
        nv = draw(st.integers(1, max_variants))
        cpus = sorted(draw(st.lists(st.sampled_from(cpu_pool), min_size=1, max_size=max_cpus, unique=True)))
        batches = sorted(draw(st.lists(st.sampled_from(batch_pool), min_size=1, max_size=max_batches, unique=True)))
        accs = draw(st.lists(st.floats(10, 95, allow_nan=False), min_size=nv, max_size=nv))
        variants = {f"v{si}_{j}": round(a, 3) for j, a in enumerate(accs)}
        rows = []
        for v in variants:
            base = draw(st.floats(0.005, 0.5))
            for c in cpus:
                for b in batches:
                    lat = base * b ** draw(st.floats(0.5, 1.0)) / c ** draw(st.floats(0.3, 1.0))
                    thr = b / lat * draw(st.floats(0.6, 1.0))
                    row = [v, c, b, round(lat, 6), round(thr, 4)]
                    if power:
                        row += [round(c * draw(st.floats(1.0, 5.0)), 3), round(draw(st.floats(0.1, 5.0)), 4)]
                    rows.append(tuple(row))
        spec[f"s{si}"] = {"variants": variants, "rows": rows}
    return make_pipeline(spec)


# One stage, two variants, cpu {1, 2} x batch {1, 2}:
#            (variant, cpu, batch, latency_s, throughput_rps, idle_w, energy_j_per_request)
ROWS_A = [
    ("a1", 1, 1, 0.10, 10.0, 1.0, 0.5),
    ("a1", 1, 2, 0.15, 13.0, 1.0, 0.4),
    ("a1", 2, 1, 0.06, 16.0, 2.0, 0.5),
    ("a1", 2, 2, 0.09, 22.0, 2.0, 0.4),
    ("a2", 1, 1, 0.30, 3.0, 1.0, 1.5),
    ("a2", 1, 2, 0.50, 4.0, 1.0, 1.2),
    ("a2", 2, 1, 0.20, 5.0, 2.0, 1.5),
    ("a2", 2, 2, 0.30, 6.5, 2.0, 1.2),
]
ONE_STAGE = {"A": {"variants": {"a1": 50.0, "a2": 70.0}, "rows": ROWS_A}}


def vote_by_outcomes(ps: list[float]) -> float:
    """Independent reference for an ensemble's majority-vote accuracy: every right/wrong outcome
    of the members, weighed by its probability; a tie goes to the most accurate member."""
    n = len(ps)
    best = max(range(n), key=lambda i: (ps[i], -i))
    total = 0.0
    for outcome in itertools.product((0, 1), repeat=n):
        prob = math.prod(p if right else 1 - p for p, right in zip(ps, outcome))
        right = sum(outcome)
        if 2 * right > n or (2 * right == n and outcome[best]):
            total += prob
    return total
