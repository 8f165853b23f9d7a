"""The ``infadapter`` policy: a set of variants with the load split among them (InfAdapter).

InfAdapter (Salmani et al., 2023) serves one model task with several variants
at once and splits the load among them to maximise ``alpha x request-weighted
accuracy - beta x cores`` under a latency SLO. Here every stage of a pipeline of
any length does so: at most ``max_variants`` variants per stage (default 2), each
with a (cpu, batch) choice under the allocation mode, its own replicas and its
share of the load. Each part must meet the SLA with IPA's queueing term at its own
load, and a stage's latency is its slowest part's. The objective is the
problem's: accuracy weighted by the shares (combined over stages by
``accuracy_method``); cores, batch, power (at each part's load) and carbon summed
over the parts. InfAdapter's servers do not batch, so ``batch`` is 1 unless
``allow_batching``. ``max_cores`` bounds the cores of all parts of all stages
together (InfAdapter's ``MAX_CPU`` budget; none by default). The search is exact:
the core mixing model (:mod:`ipa_ext.optimize.mixing`; docs/optimizers.md,
"Variant mixing").
"""

from __future__ import annotations

from typing import Any

from ipa_ext import hookimpl
from ipa_ext.model import Configuration
from ipa_ext.optimize.mixing import MixSpec, solve_mix
from ipa_ext.optimizers import Optimizer
from ipa_ext.problem import Evaluation, Problem


class InfAdapterPolicy(Optimizer):
    name = "infadapter"
    deterministic = True
    uses_current = False

    def __init__(
        self,
        max_variants: int = 2,
        max_cores: float | None = None,
        allow_batching: bool = False,
        solver: str = "auto",
        time_limit_s: float = 30.0,
    ) -> None:
        self.spec = MixSpec.from_options(max_variants, allow_batching, max_cores, solver, time_limit_s)

    def solve(
        self, problem: Problem, rate_rps: float, current: Configuration | None, k: int
    ) -> tuple[list[Evaluation], dict[str, Any]]:
        return solve_mix(problem, rate_rps, self.spec, k, current)


@hookimpl
def register_optimizers(register) -> None:
    register("infadapter", InfAdapterPolicy)
