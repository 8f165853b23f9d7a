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

import functools
from typing import Any, Iterable, Mapping, Sequence

from .host import PluginHost, load_plugins
from .model import Configuration, Pipeline, Profile, Stage, StageConfig, Variant
from .optimizers import Decision
from .problem import Evaluation, Problem, Settings

IPA_METHODS = ("gurobi", "brute-force")
"""Methods upstream IPA handles itself; every other name may be dispatched here."""


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
    out = []
    for task in ipa_pipeline.inference_graph:
        cpu = float(task.active_allocation.cpu)
        out.append(StageConfig(str(task.active_variant), cpu, int(task.batch), int(task.replicas)))
    return tuple(out)


def initial_from_ipa(ipa_pipeline: Any) -> Configuration:
    """IPA's initial configuration (its ``fix`` mode pins cpu to ``initial_allocation``)."""
    out = []
    for task in ipa_pipeline.inference_graph:
        cpu = float(task.initial_allocation.cpu)
        out.append(StageConfig(str(task.active_variant), cpu, int(task.batch), int(task.replicas)))
    return tuple(out)


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
    w = {"alpha": float(alpha), "beta": float(beta), "gamma": float(gamma), "delta": 0.0, "epsilon": 0.0}
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
    return Problem(pipeline_from_ipa(ipa_pipeline), s, objectives)


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
