"""Hook specifications of the ``ipa_ext`` pluggy project.

Every hook receives one argument, ``register``, a callable
``register(name, factory)``. The host owns the registry: it rejects duplicate
names (naming both plugins) and checks that ``factory`` is callable. Hooks
return nothing. A factory is called with the component's config options as
keyword arguments and returns the component.

Added in 0.1.0: all five hooks.
"""

from __future__ import annotations

from typing import Callable

import pluggy

PROJECT_NAME = "ipa_ext"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)

Register = Callable[[str, Callable[..., object]], None]


@hookspec
def register_energy_sources(register: Register) -> None:
    """Register energy sources: ``register(name, factory)``; ``factory(**options)`` returns an
    :class:`ipa_ext.energy.EnergySource`."""


@hookspec
def register_optimizers(register: Register) -> None:
    """Register optimizers: ``factory(**options)`` returns an :class:`ipa_ext.optimizers.Optimizer`."""


@hookspec
def register_objectives(register: Register) -> None:
    """Register objective terms: ``factory(**options)`` returns an :class:`ipa_ext.objectives.Objective`."""


@hookspec
def register_predictors(register: Register) -> None:
    """Register load predictors: ``factory(**options)`` returns an :class:`ipa_ext.predictors.Predictor`."""


@hookspec
def register_backends(register: Register) -> None:
    """Register backends: ``factory(**options)`` returns an :class:`ipa_ext.backends.Backend`."""


HOOKS: dict[str, str] = {
    "register_energy_sources": "energy source",
    "register_optimizers": "optimizer",
    "register_objectives": "objective",
    "register_predictors": "predictor",
    "register_backends": "backend",
}
"""Hook name -> the kind of component it registers."""
