"""Fuzz extreme but valid inputs: pipelines, profiles and settings at the edges of what is
accepted (5e-324 up to 1e15 for latencies, throughputs, powers, weights; caps and rates), through
``optimize`` with each exact optimizer and a short ``simulate``. These must succeed or say
plainly that nothing is feasible; they are never bad input."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ipa_ext.config.numeric import MODEL_LIMIT

from . import fuzzkit, hostile


def edge(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Finite floats in [lo, hi], weighted to the ends and to ordinary values."""
    picks = [x for x in (lo, hi, 5e-324, 1e-300, 1e-9, 0.001, 0.5, 1.0, 3.0, 100.0, 1e9, 1e12, 1e15)
             if lo <= x <= hi]
    return st.one_of(st.sampled_from(picks), st.floats(lo, hi, allow_nan=False, allow_infinity=False))


def mostly(lo: float, hi: float, wide: st.SearchStrategy[float]) -> st.SearchStrategy[float]:
    """Ordinary values in [lo, hi] most of the time, the ``wide`` extremes one time in four."""
    return st.one_of(st.floats(lo, hi), st.floats(lo, hi), st.floats(lo, hi), wide)


positive = edge(5e-324, MODEL_LIMIT)
nonneg = edge(0.0, MODEL_LIMIT)
signed = st.one_of(nonneg, nonneg.map(lambda x: -x))


@st.composite
def pipeline(draw: st.DrawFn) -> tuple[dict, list[dict]]:
    stages, rows = [], []
    powered = draw(st.booleans())
    for s in range(draw(st.integers(1, 3))):
        variants = [{"name": f"v{v}", "accuracy": draw(mostly(0, 100, signed))}
                    for v in range(draw(st.integers(1, 3)))]
        stages.append({"name": f"s{s}", "variants": variants})
        for v in variants:
            keys = draw(st.lists(st.tuples(st.sampled_from([5e-324, 1e-9, 0.5, 1, 2, 64, 1e6]),
                                           st.sampled_from([1, 2, 8, 1000, 100000])),
                                 min_size=1, max_size=3, unique=True))
            for cpu, batch in keys:
                power = draw(mostly(0, 1e4, nonneg)) if powered else None
                idle = None if power is None else draw(st.none() | edge(0.0, power))
                rows.append({"stage": f"s{s}", "variant": v["name"], "cpu": cpu, "batch": batch,
                             "latency_s": draw(mostly(1e-4, 10, positive)),
                             "throughput_rps": draw(mostly(0.1, 1e4, positive)),
                             "power_w": power, "idle_w": idle,
                             "energy_j_per_request": draw(mostly(0, 100, nonneg)) if powered else None})
    return {"name": "extreme", "stages": stages}, rows


@st.composite
def config(draw: st.DrawFn, rows: list[dict], stages: list[dict]) -> dict:
    first = {}
    for st_ in stages:
        r = next(r for r in rows if r["stage"] == st_["name"])
        first[st_["name"]] = {"variant": r["variant"], "cpu": r["cpu"], "batch": r["batch"],
                              "replicas": draw(st.integers(1, 1000))}
    powered = all(r["power_w"] is not None for r in rows)
    weight = mostly(0, 10, signed)
    c = {
        "pipeline": "pipeline.yaml", "profiles": "profiles.yaml", "initial": first,
        "accuracy_method": draw(st.sampled_from(["sum", "average", "multiply"])),
        "normalize_accuracy": draw(st.booleans()),
        "allocation_mode": draw(st.sampled_from(["fix", "base", "variable"])),
        "threshold": draw(mostly(0, 5, nonneg)), "sla_factor": draw(mostly(1, 10, positive)),
        "scaling_cap": draw(st.sampled_from([1, 2, 100, 1_000_000])),
        "num_state_limit": draw(st.integers(1, 5)),
        "weights": {w: draw(weight) if powered or w in ("alpha", "beta", "gamma") else 0
                    for w in ("alpha", "beta", "gamma", "delta", "epsilon")},
        "workload": {"type": "synthetic", "pattern": draw(st.sampled_from(["steady", "bursty", "step"])),
                     "duration_s": 20, "seed": draw(st.integers(0, 2**32)),
                     "base_rps": draw(mostly(0, 100, edge(0.0, 1e9))),
                     "peak_rps": draw(mostly(0, 100, edge(0.0, 1e9)))},
        "adaptation": {"interval_s": 10},
        "carbon": {"intensity_g_per_kwh": draw(mostly(0, 1000, nonneg))},
    }
    for key, strat in (("sla_s", mostly(0.01, 100, positive)), ("batching_cap", st.sampled_from([1, 2, 100000])),
                       ("power_cap_w", mostly(1, 1e5, positive)),
                       ("baseline_mode", st.sampled_from(["scale", "switch"]))):
        if draw(st.booleans()) and (key != "power_cap_w" or powered):
            c[key] = draw(strat)
    return c


RATES = st.one_of(st.sampled_from(["0", "5e-324", "1", "12", "1e9", "1e300"]),
                  st.floats(0, 1e300).map(repr))
COMMANDS = st.sampled_from([
    ["optimize", "{c}", "--rate", "{r}"], ["optimize", "{c}", "--rate", "{r}", "--optimizer", "energy-ilp"],
    ["optimize", "{c}", "--rate", "{r}", "--optimizer", "brute-force"],
    ["optimize", "{c}", "--rate", "{r}", "--optimizer", "q-learning:episodes=5:warm_episodes=2"],
    ["validate", "{c}"], ["simulate", "{c}", "--quiet", "--no-seconds", "--out", "{d}/out"],
])


@fuzzkit.FUZZ
@given(data=st.data(), command=COMMANDS, rate=RATES)
def test_extreme_valid_inputs(data, command, rate):
    pipe, rows = data.draw(pipeline())
    cfg = data.draw(config(rows, pipe["stages"]))
    with tempfile.TemporaryDirectory() as d:
        (Path(d) / "pipeline.yaml").write_text(hostile.dump(pipe))
        (Path(d) / "profiles.yaml").write_text(hostile.dump({"profiles": [
            {k: v for k, v in r.items() if v is not None} for r in rows]}))
        c = Path(d) / "config.yaml"
        text = hostile.dump(cfg)
        c.write_text(text)
        argv = [a.format(c=c, d=d, r=rate) for a in command]
        fuzzkit.check("extreme-valid", argv, show=text + "\n" + (Path(d) / "profiles.yaml").read_text()[:1500])
