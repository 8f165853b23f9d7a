"""The optimizer interface and the result type every optimizer returns.

An optimizer takes a :class:`~ipa_ext.problem.Problem`, the predicted arrival
rate and the current configuration, and returns a :class:`Decision`: up to
``k`` feasible candidates, best first, with their objective terms and the time
it took to decide. A large list may be a :class:`~ipa_ext.optimize.pool.CandidatePool`,
evaluated as it is read. When nothing is feasible the decision carries no candidates
and a one-line ``reason``; optimizers never raise for an infeasible problem.

Optimizers are plugins (hook ``register_optimizers``). A factory receives the
optimizer's config options as keyword arguments.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from .model import Configuration
from .optimize.pool import CandidatePool
from .problem.problem import Evaluation, Problem


@dataclass(frozen=True)
class Decision:
    """What an optimizer returns for one decision."""

    optimizer: str
    rate_rps: float
    candidates: Sequence[Evaluation]
    """A tuple, or a :class:`~ipa_ext.optimize.pool.CandidatePool` for large k."""
    decision_time_s: float
    reason: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)

    @property
    def feasible(self) -> bool:
        return bool(self.candidates)

    @property
    def best(self) -> Evaluation | None:
        return self.candidates[0] if self.candidates else None


class Optimizer(ABC):
    """Base class for optimizers. Subclasses implement :meth:`solve`."""

    name: str = ""
    deterministic: bool = False
    """True when :meth:`solve` depends only on its arguments (no learning, no
    randomness, no history), so the adapter may memoise its decisions."""
    ignored_weights: tuple[str, ...] = ()
    """Objective weights the optimizer leaves out of what it maximises (``ilp``: the energy
    weights ``delta`` and ``epsilon``); ``ipa-ext pareto`` refuses to sweep a weight listed here."""
    k_best_engine: bool = False
    """True when the optimizer lists its k best with the shared exact engine
    (:func:`ipa_ext.optimize.selection.k_best`); ``ipa-ext validate`` then says whether a
    decision enumerates the combinations or solves MILPs."""

    def optimize(
        self,
        problem: Problem,
        rate_rps: float,
        current: Configuration | None = None,
        k: int | None = None,
    ) -> Decision:
        """Decide, timing the call; ``k`` defaults to ``num_state_limit``."""
        k = problem.settings.num_state_limit if k is None else k
        start = time.perf_counter()
        candidates, info = self.solve(problem, rate_rps, current, k)
        reason = None
        if not candidates:
            # an optimizer may say why itself (e.g. a policy that does not apply)
            reason = info.get("reason") or (
                "no feasible configuration: " + problem.explain_infeasible(rate_rps, current)
            )
        elapsed = time.perf_counter() - start
        return Decision(
            optimizer=self.name,
            rate_rps=rate_rps,
            candidates=candidates if isinstance(candidates, CandidatePool) else tuple(candidates),
            decision_time_s=elapsed,
            reason=reason,
            info=info,
        )

    @abstractmethod
    def solve(
        self,
        problem: Problem,
        rate_rps: float,
        current: Configuration | None,
        k: int,
    ) -> tuple[Sequence[Evaluation], dict[str, Any]]:
        """Return up to ``k`` feasible evaluations, best first (a list or a
        :class:`~ipa_ext.optimize.pool.CandidatePool`), and free-form info."""
