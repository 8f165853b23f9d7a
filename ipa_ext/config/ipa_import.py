"""Read an upstream IPA experiment or simulation config into ipa-ext config keys.

IPA configs (``experiments/runner/*.yaml``, e.g. ``video-1.yaml``) carry the
optimizer settings, the initial configuration, predictor and workload settings
but not the profiles or accuracies. :func:`read_ipa_config` maps what is
mappable to ipa-ext's own keys and names everything it ignores, so a config can
say ``from_ipa: video-1.yaml`` and add only ``pipeline:`` and ``profiles:``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError
from .numeric import number
from .show import shown
from .yamlsafe import read_file

OPTIMIZATION_METHODS = {"gurobi": "ilp", "brute-force": "brute-force", "both": "ilp"}
"""IPA's ``optimization_method`` -> the ipa-ext optimizer that does the same (a translation
of IPA's config, not a choice of plugin)."""
GUROBI_METHODS = ("gurobi", "both")
"""IPA methods that solve with Gurobi, whose solution pool keeps only ties (PoolGap 0)."""

DIRECT_KEYS = (
    "scaling_cap",
    "batching_cap",
    "num_state_limit",
    "threshold",
    "allocation_mode",
    "sla_factor",
    "normalize_accuracy",
    "baseline_mode",
    "accuracy_method",
)

IGNORED_KEYS: dict[str, str] = {
    "pipeline_folder_name": "deployment folder of IPA's Kubernetes manifests",
    "timeout": "router timeout of IPA's deployment",
    "mode": "IPA's load-tester arrival mode",
    "nodes": "IPA's per-node deployment settings (ipa-ext takes the initial configuration from initial_*)",
    "benchmark_duration": "IPA's load-test duration",
    "metaseries": "IPA's result bookkeeping",
    "series": "IPA's result bookkeeping",
    "series_meta": "IPA's result bookkeeping",
    "metadata": "IPA's result bookkeeping",
    "profiling_series": "ipa-ext reads profiles from the 'profiles' file instead",
    "model_name": "deployment names of IPA's model servers",
    "only_measured_profiles": "ipa-ext uses the profile rows as given (measured-profile mode)",
    "profiling_load": "ipa-ext reads profiles from the 'profiles' file instead",
    "reference_latency": "choose the latency column when building the profile file",
    "reference_throughput": "choose the throughput column when building the profile file",
    "latency_margin": "apply margins when building the profile file",
    "throughput_margin": "apply margins when building the profile file",
    "central_queue": "IPA's deployment queueing option",
    "distrpution_time": "IPA's real-cluster disruption wait",
    "debug_mode": "IPA's container logging",
    "simulation_mode": "ipa-ext chooses the backend with 'backend'",
    "warm_up": "IPA's real-cluster warm-up",
    "teleport_mode": "IPA's real-cluster replay option",
    "teleport_interval": "IPA's real-cluster replay option",
    "logs_enabled": "IPA's container logging",
    "from_storage": "IPA's model loading option",
    "complete_profile": "IPA's logging option; ipa-ext always reports objective terms",
    "random_sample": "IPA's state sampling for brute force; ipa-ext's brute force is exhaustive",
    "generate": "IPA's simulation output selection",
    "number_tasks": "checked against task_name",
    "pipeline_name": "used as a label only",
    "workload_type": "mapped into 'workload'",
    "workload_config": "mapped into 'workload'",
}


@dataclass
class IpaConfig:
    """The ipa-ext keys an IPA config maps to, and what was left out."""

    path: Path
    values: dict[str, Any]
    ignored: dict[str, str] = field(default_factory=dict)
    unknown: list[str] = field(default_factory=list)


def looks_like_ipa_config(data: Any) -> bool:
    return isinstance(data, Mapping) and "pipeline" not in data and (
        "task_name" in data or "initial_active_model" in data
    )


def read_ipa_config(path: str | Path) -> IpaConfig:
    p = Path(path)
    data = read_file(p, ConfigError, unique_keys=False)  # as IPA reads them
    if not isinstance(data, Mapping):
        raise ConfigError("expected a mapping", path=p)
    return map_ipa_config(data, p)


NUMERIC_KEYS = ("scaling_cap", "batching_cap", "num_state_limit", "threshold", "sla_factor", "alpha",
                "beta", "gamma", "arrival_rate", "predictor_margin", "adaptation_interval", "drop_limit")
"""Keys whose value, when set, must be a number; checked here so the error names the IPA file
(the ranges are checked by the config reader, against the key the value maps to)."""


def _minutes_to_s(v: Any, p: Path, key: str) -> float:
    return number(v, key, path=p, minimum=0.0) * 60.0


def _check_numbers(data: Mapping[str, Any], p: Path) -> None:
    for key in NUMERIC_KEYS:
        if data.get(key) is not None:
            number(data[key], key, path=p)


def map_ipa_config(data: Mapping[str, Any], p: Path) -> IpaConfig:
    """IPA's experiment config as ipa-ext keys, with what is ignored and what is unknown."""
    _check_numbers(data, p)
    out: dict[str, Any] = {key: data[key] for key in DIRECT_KEYS if key in data}
    weights = {k: data[k] for k in ("alpha", "beta", "gamma") if k in data}
    if weights:
        out["weights"] = weights
    if "optimization_method" in data:
        out["optimizer"] = _optimizer(data["optimization_method"], p)
    if "arrival_rate" in data:
        out["rate_rps"] = data["arrival_rate"]
    initial = _initial(data, p)
    if initial is not None:
        out["initial"] = initial
    predictor = _predictor(data, p)
    if predictor:
        out["predictor"] = predictor
    if "adaptation_interval" in data:
        out["adaptation"] = {"interval_s": data["adaptation_interval"]}
    workload = _workload(data, p)
    if workload is not None:
        out["workload"] = workload
    if "drop_limit" in data:
        out.setdefault("simulation", {})["drop_limit"] = data["drop_limit"]
    ignored = {str(k): IGNORED_KEYS[str(k)] for k in data if k not in HANDLED_KEYS and k in IGNORED_KEYS}
    unknown = [str(k) for k in data if k not in HANDLED_KEYS and k not in IGNORED_KEYS]
    return IpaConfig(p, out, ignored, unknown)


HANDLED_KEYS = frozenset(DIRECT_KEYS) | {
    "alpha", "beta", "gamma", "optimization_method", "arrival_rate", "task_name",
    "initial_active_model", "initial_cpu_allocation", "initial_replica", "initial_batch",
    "predictor_type", "monitoring_duration", "backup_predictor_type",
    "backup_predictor_duration", "predictor_margin", "adaptation_interval", "drop_limit",
}
"""IPA keys :func:`map_ipa_config` maps (``number_tasks`` and ``workload_*`` are only read)."""

INITIAL_COLUMNS = {
    "variant": "initial_active_model",
    "cpu": "initial_cpu_allocation",
    "replicas": "initial_replica",
    "batch": "initial_batch",
}
"""ipa-ext's ``initial`` fields and IPA's per-task lists they come from."""


def _optimizer(m: Any, p: Path) -> dict[str, Any]:
    """``optimization_method`` as an ipa-ext ``optimizer`` entry."""
    if not isinstance(m, str) or m not in OPTIMIZATION_METHODS:
        raise ConfigError(
            f"unknown IPA optimization_method {shown(m)} (expected gurobi or brute-force)",
            path=p,
            where="optimization_method",
        )
    out: dict[str, Any] = {"name": OPTIMIZATION_METHODS[m]}
    if m in GUROBI_METHODS:
        out["options"] = {"pool_gap": 0}
    return out


def _initial(data: Mapping[str, Any], p: Path) -> dict[str, Any] | None:
    """The initial configuration from IPA's per-task lists (None unless all four are given)."""
    tasks = data.get("task_name")
    if tasks is None:
        return None
    if not isinstance(tasks, list):
        raise ConfigError("must be a list", path=p, where="task_name")
    if "number_tasks" in data and data["number_tasks"] != len(tasks):
        raise ConfigError(
            f"number_tasks {shown(data['number_tasks'])} but task_name lists {len(tasks)}",
            path=p,
            where="number_tasks",
        )
    if not all(c in data for c in INITIAL_COLUMNS.values()):
        return None
    initial = {}
    for i, t in enumerate(tasks):
        entry = {}
        for field_name, key in INITIAL_COLUMNS.items():
            seq = data[key]
            if not isinstance(seq, list) or len(seq) != len(tasks):
                raise ConfigError(f"must list one value per task ({len(tasks)})", path=p, where=key)
            entry[field_name] = seq[i]
        initial[str(t)] = entry
    return initial


def _predictor(data: Mapping[str, Any], p: Path) -> dict[str, Any]:
    """IPA's predictor keys (durations in minutes) as an ipa-ext ``predictor`` section."""
    for key in ("predictor_type", "backup_predictor_type", "workload_type"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ConfigError(f"expected a name, got {shown(data[key])}", path=p, where=key)
    predictor: dict[str, Any] = {}
    if "predictor_type" in data:
        predictor["name"] = data["predictor_type"]
    if "monitoring_duration" in data:
        predictor["monitoring_duration_s"] = _minutes_to_s(data["monitoring_duration"], p, "monitoring_duration")
    if "backup_predictor_type" in data:
        predictor["backup"] = data["backup_predictor_type"]
    if "backup_predictor_duration" in data:
        predictor["backup_duration_s"] = _minutes_to_s(
            data["backup_predictor_duration"], p, "backup_predictor_duration"
        )
    if "predictor_margin" in data:
        predictor["margin_pct"] = data["predictor_margin"]
    return predictor


def _workload(data: Mapping[str, Any], p: Path) -> dict[str, Any] | None:
    """IPA's twitter or static workload as an ipa-ext ``workload`` section."""
    wc = data.get("workload_config")
    if data.get("workload_type") == "twitter":
        first = wc[0] if isinstance(wc, list) and wc else wc
        if not isinstance(first, Mapping):
            return None
        w: dict[str, Any] = {"type": "twitter"}
        for k in ("start", "end"):
            if k in first:
                w[k] = number(first[k], f"workload_config.{k}", path=p, integer=True, minimum=0, text=True)
        if first.get("damping_factor") is not None:
            w["damping_factor"] = first["damping_factor"]
        return w
    if data.get("workload_type") == "static" and isinstance(wc, Mapping):
        return {"type": "static", **{str(k): v for k, v in wc.items()}}
    return None
