"""The code a patched upstream IPA calls (see ``upstream_patches/``).

IPA keeps its own objects (``optimizer.models.Pipeline``/``Task``/``Model``/
``Profile``) and result format (a pandas DataFrame with ``task_{i}_variant``,
``task_{i}_cpu``, ``task_{i}_gpu``, ``task_{i}_batch``, ``task_{i}_replicas``
and the objective columns). This module converts IPA's objects into ipa-ext's
model, runs any optimizer ipa-ext has registered, and converts the result
back, so IPA's ``Adapter`` and ``SimAdapter`` work unchanged. It only reads
attributes, so it also works on hand-built objects with the same attributes.

Nothing here imports IPA; pandas is imported only when a DataFrame is built.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .adapt.measured import MeasuredIntervals
from .config.config import _Reader
from .energy.meter import Snapshot
from .errors import ConfigError
from .host import PluginHost, load_plugins
from .model import Configuration, Pipeline, Profile, Stage, StageConfig, Variant
from .optimizers import Decision
from .problem.problem import Evaluation, Problem, Settings

IPA_METHODS = ("gurobi", "brute-force")
"""Methods upstream IPA handles itself; every other name may be dispatched here."""

CONFIG_ENV = "IPA_EXT_CONFIG"
"""An optional ipa-ext config for IPA runs: energy/carbon weights, power cap, optimizer
options, and a profile table with power fields (IPA's own profiles have none)."""


@functools.lru_cache(maxsize=1)
def _host() -> PluginHost:
    return load_plugins()


def available_methods() -> list[str]:
    """Optimizer names ipa-ext can run for IPA."""
    return _host().registry.names("optimizer")


def handles(method: str) -> bool:
    """True when ``method`` is not IPA's own and ipa-ext registered it."""
    return method not in IPA_METHODS and method in available_methods()


# --------------------------------------------------------------------------- conversion


@functools.lru_cache(maxsize=4)
def _extra_config(path: str) -> Any:
    from .config.config import load_config

    return load_config(Path(path))


def extra_config() -> Any:
    """The ipa-ext config named by ``$IPA_EXT_CONFIG``, or None."""
    path = os.environ.get(CONFIG_ENV)
    return _extra_config(path) if path else None


def with_power(pipeline: Pipeline, power_from: Pipeline) -> Pipeline:
    """Copy power fields onto ``pipeline`` from rows of ``power_from`` with the same key."""
    stages = []
    for st in pipeline.stages:
        try:
            src = power_from.stage(st.name)
        except KeyError:
            stages.append(st)
            continue
        profs = {}
        for key, p in st.profiles.items():
            q = src.profiles.get(key)
            if q is not None:
                p = dataclasses.replace(p, power_w=q.power_w, idle_w=q.idle_w,
                                        energy_j_per_request=q.energy_j_per_request)
            profs[key] = p
        stages.append(dataclasses.replace(st, profiles=profs))
    return dataclasses.replace(pipeline, stages=tuple(stages))


def _profile_rows(stage: str, model: Any) -> Iterable[Profile]:
    cpu = float(model.resource_allocation.cpu)
    for prof in model.profiles:
        yield Profile(
            stage=stage,
            variant=str(model.name),
            cpu=cpu,
            batch=int(prof.batch),
            latency_s=float(prof.latency),
            throughput_rps=float(prof.throughput),
        )


def pipeline_from_ipa(ipa_pipeline: Any, name: str = "ipa") -> Pipeline:
    """Convert IPA's ``Pipeline`` (its ``inference_graph`` of ``Task`` objects).

    Each IPA ``Model`` is one (variant, cpu allocation) with profiles per batch;
    its ``accuracy`` is already divided by 100, so it is multiplied back to
    ipa-ext's percent convention.
    """
    stages = []
    for task in ipa_pipeline.inference_graph:
        variants: dict[str, Variant] = {}
        profiles: dict[tuple[str, float, int], Profile] = {}
        for model in task.available_model_profiles:
            variants.setdefault(str(model.name), Variant(str(model.name), float(model.accuracy) * 100.0))
            for p in _profile_rows(str(task.name), model):
                profiles[(p.variant, p.cpu, p.batch)] = p
        ordered = tuple(sorted(variants.values(), key=lambda v: (v.accuracy, v.name)))
        stages.append(Stage(str(task.name), ordered, profiles))
    return Pipeline(name, tuple(stages))


def current_from_ipa(ipa_pipeline: Any) -> Configuration:
    """The running configuration of IPA's tasks (variant, cpu, batch, replicas)."""
    return _tasks_config(ipa_pipeline, "active_allocation")


def initial_from_ipa(ipa_pipeline: Any) -> Configuration:
    """IPA's initial configuration (its ``fix`` mode pins cpu to ``initial_allocation``)."""
    return _tasks_config(ipa_pipeline, "initial_allocation")


def _tasks_config(ipa_pipeline: Any, allocation: str) -> Configuration:
    return tuple(
        StageConfig(str(task.active_variant), float(getattr(task, allocation).cpu), int(task.batch),
                    int(task.replicas))
        for task in ipa_pipeline.inference_graph
    )


def problem_from_ipa(
    ipa_optimizer: Any,
    *,
    scaling_cap: int,
    alpha: float,
    beta: float,
    gamma: float,
    num_state_limit: int | None = None,
    batching_cap: int | None = None,
    weights: Mapping[str, float] | None = None,
    **settings: Any,
) -> Problem:
    """Build ipa-ext's :class:`Problem` from IPA's ``Optimizer`` and ``optimize()`` arguments.

    The SLA is taken from IPA's own ``pipeline.sla`` so both sides use the very
    same number. Extra ipa-ext weights (``delta``, ``epsilon``) and settings
    (``power_cap_w``, ...) may be passed through.
    """
    ipa_pipeline = ipa_optimizer.pipeline
    first = ipa_pipeline.inference_graph[0]
    extra = extra_config()
    w = {"alpha": float(alpha), "beta": float(beta), "gamma": float(gamma), "delta": 0.0, "epsilon": 0.0}
    if extra is not None:
        w.update({k: v for k, v in extra.settings.weights.items() if k not in ("alpha", "beta", "gamma")})
        settings.setdefault("power_cap_w", extra.settings.power_cap_w)
        settings.setdefault("carbon_intensity_g_per_kwh", extra.settings.carbon_intensity_g_per_kwh)
    w.update(weights or {})
    s = Settings(
        accuracy_method=str(ipa_pipeline.accuracy_method),
        normalize_accuracy=bool(ipa_pipeline.normalize_accuracy),
        sla_s=float(ipa_pipeline.sla),
        sla_factor=float(ipa_pipeline.sla_factor),
        allocation_mode=str(ipa_optimizer.allocation_mode),
        threshold=float(first.threshold),
        scaling_cap=int(scaling_cap),
        batching_cap=int(batching_cap) if batching_cap is not None else None,
        baseline_mode=ipa_optimizer.baseline_mode or None,
        num_state_limit=int(num_state_limit or 1),
        weights=w,
        initial=initial_from_ipa(ipa_pipeline),
        **settings,
    )
    host = _host()
    objectives = [host.registry.create("objective", n) for n in host.registry.names("objective")]
    pipeline = pipeline_from_ipa(ipa_pipeline)
    if extra is not None:
        pipeline = with_power(pipeline, extra.pipeline)
    return Problem(pipeline, s, objectives)


def result_frame(problem: Problem, decision: Decision) -> Any:
    """IPA's result DataFrame: one row per candidate, best first (empty when infeasible)."""
    import pandas as pd

    return pd.DataFrame([result_row(problem, ev) for ev in decision.candidates])


def result_row(problem: Problem, ev: Evaluation) -> dict[str, Any]:
    """One candidate in IPA's column layout, plus ipa-ext's energy columns."""
    row: dict[str, Any] = {}
    for i, sc in enumerate(ev.config):
        row[f"task_{i}_variant"] = sc.variant
        row[f"task_{i}_cpu"] = sc.cpu
        row[f"task_{i}_gpu"] = 0
        row[f"task_{i}_batch"] = sc.batch
        row[f"task_{i}_replicas"] = sc.replicas
    names = {"accuracy": "accuracy_objective", "cost": "resource_objective", "batch": "batch_objective",
             "energy": "power_objective", "carbon": "carbon_objective"}
    for term, value in ev.weighted.items():
        row[names.get(term, f"{term}_objective")] = value
    for key in ("accuracy_objective", "resource_objective", "batch_objective"):
        row.setdefault(key, 0.0)
    if "energy" in ev.terms:
        row["power_w"] = ev.terms["energy"]
        row["power_quality"] = "estimated"
    row["objective"] = ev.objective
    return row


def optimize(
    ipa_optimizer: Any,
    optimization_method: str,
    scaling_cap: int,
    alpha: float,
    beta: float,
    gamma: float,
    arrival_rate: float,
    num_state_limit: int | None = None,
    batching_cap: int | None = None,
    dir_path: str | None = None,
    options: Mapping[str, Any] | None = None,
    **extra: Any,
) -> Any:
    """Run ipa-ext optimizer ``optimization_method`` for IPA; returns IPA's DataFrame.

    The signature mirrors ``optimizer.Optimizer.optimize``. ``dir_path`` is
    accepted and ignored (upstream writes its Gurobi model there).
    """
    problem = problem_from_ipa(
        ipa_optimizer,
        scaling_cap=scaling_cap,
        alpha=alpha,
        beta=beta,
        gamma=gamma,
        num_state_limit=num_state_limit,
        batching_cap=batching_cap,
        **extra,
    )
    extra = extra_config()
    if options is None and extra is not None and extra.optimizer.name == optimization_method:
        options = extra.optimizer.options
    optimizer = _host().registry.create("optimizer", optimization_method, dict(options or {}),
                                        where="optimization_method")
    decision = optimizer.optimize(problem, float(arrival_rate), current_from_ipa(ipa_optimizer.pipeline),
                                  problem.settings.num_state_limit)
    return result_frame(problem, decision)


def configs_of(frame: Any, stage_names: Sequence[str]) -> list[dict[str, dict[str, Any]]]:
    """Parse IPA's result frame like IPA's ``Adapter.output_parser`` (for checks and tests)."""
    out = []
    for _, row in frame.iterrows():
        out.append({
            name: {
                "cpu": row[f"task_{i}_cpu"],
                "replicas": int(row[f"task_{i}_replicas"]),
                "batch": int(row[f"task_{i}_batch"]),
                "variant": row[f"task_{i}_variant"],
            }
            for i, name in enumerate(stage_names)
        })
    return out


# --------------------------------------------------------------------------- energy


class IntervalEnergyRecorder:
    """Records per-interval energy for IPA's adaptation log, from ipa-ext's meter.

    Not to be confused with :class:`ipa_ext.adapt.interval_energy.IntervalEnergy`, the
    value ipa-ext's own loop logs: this is a stateful recorder IPA's patched adapter
    calls once per interval.

    ``energy_sources`` is the IPA config's list: source names, or
    ``{name, options}`` mappings, as in ipa-ext's ``energy.sources``. An empty
    list is not accepted (IPA's patch only builds this when the list is set).
    Each :meth:`record` returns the energy since the previous call (the first
    since construction) as a JSON-ready dict with the quality label.
    """

    def __init__(self, energy_sources: Sequence[Any]) -> None:
        if not isinstance(energy_sources, (list, tuple)) or not energy_sources:
            raise ConfigError("must be a non-empty list of source names or {name, options}",
                              where="energy_sources")
        r = _Reader(None, {})
        specs = [r.component_value(s, f"energy_sources[{i}]") for i, s in enumerate(energy_sources)]
        # the same source choice as the adapter loop's measured intervals
        self.meter = MeasuredIntervals.from_specs(_host(), specs).meter
        self._last: Snapshot = self.meter.snapshot()

    def record(self) -> dict[str, Any]:
        """Energy since the last call: duration, total joules, per-domain joules and quality."""
        now = self.meter.snapshot()
        m = self.meter.between("interval", self._last, now)
        self._last = now
        return m.as_dict()

    def close(self) -> None:
        self.meter.close()


IntervalEnergy = IntervalEnergyRecorder
"""The name patches applied before the rename call (``upstream_patches/0002`` now uses
:class:`IntervalEnergyRecorder`); kept so IPA checkouts patched earlier keep working."""
