"""Waits of random arrivals at a stage's replicas within a second (the M/G/c approximation, spread mode only)."""

from __future__ import annotations

import math

import pytest

from ipa_ext.cli import main
from ipa_ext.model import Pipeline, Profile, Stage, StageConfig, Variant
from ipa_ext.simulate.model import Z99, build_model
from ipa_ext.simulate.simulator import PipelineSimulator
from ipa_ext.simulate.draws import UniformDraws
from ipa_ext.simulate.waits import NO_WAIT, arrival_scv, draw_wait, erlang_c, mgc_wait, others_share
from support.problems import make_problem

# Service times exponential-like: a lognormal with squared coefficient of variation 1 (sigma^2 = ln 2),
# its mean 4 ms = 1 / the 250 rps a replica sustains.
SIGMA = math.sqrt(math.log(2.0))
MEAN_S = 0.004
MEDIAN_S = MEAN_S / math.sqrt(2.0)
CAP = 250.0


def problem(p50: float | None = MEDIAN_S, replicas_cap: float = CAP):
    p99 = MEDIAN_S * math.exp(SIGMA * Z99)
    rows = {("v", 1.0, 1): Profile("s", "v", 1.0, 1, p99, replicas_cap, None, 1.0, 0.001, p50)}
    pipe = Pipeline("p", (Stage("s", (Variant("v", 80.0),), rows),))
    return make_problem(pipe, sla_s=1.0, allocation_mode="variable", threshold=0)


V = (StageConfig("v", 1.0, 1, 1),)


def mean_latency(rate: int, seconds: int = 400, **kw) -> float:
    sim = PipelineSimulator(problem(), V, **kw)
    tot = sim.run([rate] * seconds)
    assert tot.served == pytest.approx(rate * seconds) and tot.dropped == 0.0  # under capacity: no fluid queue
    return tot.lat_sum / tot.served


def test_erlang_c_and_the_allen_cunneen_wait_have_their_textbook_values():
    assert erlang_c(1, 0.6) == pytest.approx(0.6)  # M/M/1: a request waits with probability rho
    assert erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0)  # B(2, 1) = 0.2, C = 0.2 / (1 - 0.5 * 0.8)
    assert erlang_c(3, 0.0) == 0.0 and erlang_c(2, 2.5) == 1.0
    mu, lam = 1.0 / MEAN_S, 0.7 / MEAN_S
    pw, mean, erlang2 = mgc_wait(1, 0.7, MEAN_S, 1.0, 1.0)
    assert pw * mean == pytest.approx(0.7 / (mu - lam))  # M/M/1: Wq = rho / (mu - lambda)
    assert erlang2 == 0.0  # exponential service: the waits are exponential
    pw2, mean2, _ = mgc_wait(2, 0.5, MEAN_S, 1.0, 1.0)
    assert pw2 * mean2 == pytest.approx((1.0 / 3.0) / (2 * mu - 1.0 / MEAN_S))  # M/M/2: C / (c mu - lambda)
    # deterministic service halves the M/M/1 wait (Pollaczek-Khinchine: M/D/1)
    assert math.prod(mgc_wait(1, 0.7, MEAN_S, 1.0, 0.0)[:2]) == pytest.approx(0.5 * 0.7 / (mu - lam))
    assert arrival_scv("poisson", 4) == 0.25 and arrival_scv("uniform", 1) == 0.0


@pytest.mark.parametrize("cs2", [1.0, 0.3, 0.0])
def test_drawn_waits_have_the_probability_mean_and_spread_of_the_model(cs2):
    pw, mean, erlang2 = wait = mgc_wait(1, 0.6, MEAN_S, 1.0, cs2)
    uniform = UniformDraws(7)
    draws = [draw_wait(wait, uniform) for _ in range(40000)]
    waiting = [d for d in draws if d > 0.0]
    assert len(waiting) / len(draws) == pytest.approx(pw, abs=0.01)
    m = sum(waiting) / len(waiting)
    assert m == pytest.approx(mean, rel=0.03)
    scv = sum((d - m) ** 2 for d in waiting) / len(waiting) / m ** 2
    assert scv == pytest.approx((1.0 + cs2) / 2.0, abs=0.05)  # exponential 1, Erlang-2 1/2
    assert draw_wait(NO_WAIT, uniform) == 0.0


def test_the_simulated_mean_wait_is_the_m_m_1_one():
    """200 rps at a replica that sustains 250: each request finds the other 199 of its second, so
    rho = 0.8 x 199/200 and the M/M/1 wait rho / (1 - rho) x E[S] comes on top of E[S]."""
    rho = 200.0 / CAP * others_share(200.0)
    wq = rho / (1.0 - rho) * MEAN_S
    assert mean_latency(200) == pytest.approx(MEAN_S + wq, rel=0.05)
    assert wq > MEAN_S  # the wait is the larger part: without it the test could not pass


def test_no_wait_without_arrivals_or_for_a_lone_one():
    route = build_model(problem(), V, spread=True).routes[0]
    assert route.waits(0.0, "poisson") == ((NO_WAIT,),)
    assert route.waits(1.0, "poisson") == ((NO_WAIT,),)  # alone in its second: finds no one
    assert mgc_wait(1, 0.0, MEAN_S, 1.0, 1.0) == NO_WAIT
    sim = PipelineSimulator(problem(), V)
    tot = sim.run([0] * 20)
    assert tot.served == 0.0 and tot.lat_sum == 0.0
    assert mean_latency(1, 4000) == pytest.approx(MEAN_S, rel=0.05)  # the drawn service times alone


def test_the_wait_grows_with_utilisation():
    means = [mean_latency(r, 200) for r in (25, 100, 150, 200, 230)]
    assert all(a < b for a, b in zip(means, means[1:])), means
    waits = [math.prod(mgc_wait(2, rho, MEAN_S, 1.0, 0.5)[:2]) for rho in (0.1, 0.3, 0.5, 0.7, 0.9)]
    assert all(a < b for a, b in zip(waits, waits[1:])), waits


def test_evenly_spaced_arrivals_wait_less_and_unknown_arrivals_are_refused():
    assert mean_latency(200, 200, arrivals="uniform") < mean_latency(200, 200)
    with pytest.raises(ValueError, match="arrivals must be one of poisson, uniform"):
        PipelineSimulator(problem(), V, arrivals="bursty")


def test_the_waits_are_seeded():
    def run(seed: int) -> PipelineSimulator:
        sim = PipelineSimulator(problem(), V, seed=seed)
        sim.run([180] * 50)
        return sim

    a, b, c = run(5), run(5), run(6)
    assert a.histogram.counts() == b.histogram.counts() and a.totals.lat_sum == b.totals.lat_sum
    assert a.histogram.counts() != c.histogram.counts()


def test_plain_and_profiled_configurations_have_no_wait():
    """Without a p50 (IPA's and derived profiles) or with service_times profiled, every request takes
    the profiled latency, however busy the replica."""
    p99 = MEDIAN_S * math.exp(SIGMA * Z99)
    for prob, kw in ((problem(p50=None), {}), (problem(), {"service_times": "profiled"})):
        sim = PipelineSimulator(prob, V, **kw)
        tot = sim.run([240] * 30)
        assert sim.active.routes == () and tot.lat_sum == pytest.approx(tot.served * p99)
        assert tot.lat_max == pytest.approx(p99)


def test_the_simulation_section_takes_arrivals(tmp_path, capsys):
    import shutil

    import yaml

    from support.paths import ROOT

    src = ROOT / "examples" / "video-measured"
    for name in ("pipeline.yaml", "profiles.csv"):
        shutil.copy(src / name, tmp_path / name)
    base = yaml.safe_load((src / "config.yaml").read_text())
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({**base, "simulation": {"arrivals": "uniform"}}))
    assert main(["validate", str(cfg)]) == 0
    cfg.write_text(yaml.safe_dump({**base, "simulation": {"arrivals": "bursty"}}))
    assert main(["validate", str(cfg)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("ipa-ext: error: ") and "arrivals must be one of poisson, uniform" in err[-1]
