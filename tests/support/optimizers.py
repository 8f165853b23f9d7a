"""Optimizers under test and what their tests share: the solvers to run, the optimizers built directly,
how two decisions compare, hypothesis strategies for weights and selection models."""

from __future__ import annotations

import os

from hypothesis import strategies as st

from ipa_ext.errors import ConfigError
from ipa_ext.optimize.selection import Selection
from ipa_ext.optimize.solvers import available_solvers

from .problems import make_problem


def solvers_under_test() -> list[str]:
    env = os.environ.get("IPA_EXT_SOLVER", "").strip()
    return [env] if env else list(available_solvers())


SOLVERS = solvers_under_test()
assert SOLVERS, "no MILP solver available: PuLP's CBC should always be there"


def brute(problem, rate, k=1, current=None):
    from ipa_ext_plugins.optimizers.brute_force import BruteForceOptimizer

    return BruteForceOptimizer().optimize(problem, rate, current, k)


def ilp(solver, **options):
    from ipa_ext_plugins.optimizers.ilp import IlpOptimizer

    return IlpOptimizer(solver=solver, **options)


def energy_ilp(solver, **options):
    from ipa_ext_plugins.optimizers.energy_ilp import EnergyIlpOptimizer

    return EnergyIlpOptimizer(solver=solver, **options)


def assert_same_values(got, ref):
    """Same feasibility, same reason, and the same objective values to 1e-9 relative."""
    assert got.reason == ref.reason
    g = [c.objective for c in got.candidates]
    r = [c.objective for c in ref.candidates]
    assert len(g) == len(r), (g, r)
    for a, b in zip(g, r):
        assert abs(a - b) <= 1e-9 * max(1.0, abs(b)), (g, r)
    assert g == sorted(g, reverse=True)
    for c in got.candidates:
        assert c.feasible, c.violations
    assert len({c.config for c in got.candidates}) == len(g)  # distinct configurations


WEIGHTS = st.fixed_dictionaries({
    "alpha": st.one_of(st.floats(0, 10), st.sampled_from([-1.0, 0.0])),
    "beta": st.floats(0, 2),
    "gamma": st.sampled_from([0.0, 1e-6, 0.01, 1.0]),  # 1e-6 is IPA's: ties broken by batch
})


def problem_or_none(pipe, **settings_):
    try:
        p = make_problem(pipe, **settings_)
        if p.settings.allocation_mode == "base":
            p.base_allocations()
    except ConfigError:
        return None  # an unreachable base-allocation threshold: IPA refuses it too
    return p


@st.composite
def selections(draw, product: bool = True):
    stages = draw(st.integers(1, 4))
    sizes = [draw(st.integers(1, 6)) for _ in range(stages)]
    # coarse grids make ties and near-ties likely, the hard case for tolerances
    coef = [[draw(st.integers(-20, 20)) * draw(st.sampled_from([1.0, 0.25, 1e-6])) for _ in range(n)] for n in sizes]
    lat = [[draw(st.integers(1, 10)) / 10 for _ in range(n)] for n in sizes]
    bound = draw(st.floats(0.1, 0.8)) * 10 * stages / 2
    powers = power_bound = None
    if draw(st.booleans()):
        powers = [[draw(st.integers(1, 50)) for _ in range(n)] for n in sizes]
        power_bound = draw(st.floats(5, 40)) * stages
    factors, weight = None, 0.0
    if product and draw(st.booleans()):
        factors = [[draw(st.sampled_from([0.0, 0.1, 0.125, 0.25, 0.457, 0.5, 0.9, 1.0, -0.3, 2.0])) for _ in range(n)] for n in sizes]
        weight = draw(st.sampled_from([-3.0, 0.5, 5.0]))
    return Selection(coef, lat, bound, powers, power_bound, factors, weight)
