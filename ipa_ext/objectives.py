"""The objective interface.

An objective scores a pipeline configuration. The total objective that every
optimizer maximises is::

    sum over objectives of  weight * sense * objective.combine(stage values)

where ``sense`` is +1 for a quantity to maximise (accuracy) and -1 for one to
minimise (cores, batch, watts, grams of CO2 per second). IPA's objective
``alpha*accuracy - beta*cores - gamma*batch`` is the special case of the
built-in ``accuracy``, ``cost`` and ``batch`` objectives.

Objectives are plugins (hook ``register_objectives``); the built-ins live in
``ipa_ext_plugins.objectives.builtin``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # pragma: no cover
    from .problem.problem import Option, Problem


class Objective(ABC):
    """One term of the objective.

    Subclasses set ``name`` (the term's name in output), ``weight`` (the config
    weight that scales it, e.g. ``"alpha"``), ``sense`` (+1 maximise, -1
    minimise), ``unit`` and, for a renamed term, ``aliases``.
    """

    name: str = ""
    weight: str = ""
    sense: int = -1
    unit: str = ""
    aliases: tuple[str, ...] = ()
    """Former names of the term: looking a term up by one of them (``evaluation.terms[alias]``)
    finds it; output names it ``name`` only."""

    @abstractmethod
    def stage_value(self, problem: Problem, option: Option, rate_rps: float) -> float:
        """The term's value for one stage's chosen option at the given rate."""

    def combine(self, problem: Problem, values: Sequence[float]) -> float:
        """Combine stage values into the pipeline value (default: the sum)."""
        return float(sum(values))

    def is_additive(self, problem: Problem) -> bool:
        """True when ``combine(values) == sum(coefficient(...))`` for every configuration.

        Additive objectives give an ILP its linear coefficients directly.
        """
        return True

    def is_product(self, problem: Problem) -> bool:
        """True when ``combine(values) == math.prod(values)`` for every configuration.

        The exact MILP optimizers model one such term exactly (a McCormick chain over the
        stages' ``stage_value`` factors), e.g. accuracy with ``accuracy_method: multiply``.
        A term neither additive nor a product can only be scored by enumeration (brute-force,
        q-learning). Default: False.
        """
        return False

    def coefficient(self, problem: Problem, option: Option, rate_rps: float) -> float:
        """Linear coefficient of choosing ``option`` (only meaningful when additive)."""
        return self.stage_value(problem, option, rate_rps)

    def unavailable_reason(self, problem: Problem) -> str | None:
        """Why the term cannot be evaluated for this problem (None when it can).

        For example the power objective needs power fields in the profiles.
        """
        return None
