"""Read a stage's configuration out of a workload object and build the patch that changes it.

Objects are the API server's JSON as dicts. A Deployment (apps/v1) is changed with a
strategic-merge patch (containers and env vars merge by name, so only the touched fields
travel); a SeldonDeployment (machinelearning.seldon.io/v1, IPA's layout) with a JSON
merge patch, which replaces lists whole, so the patch carries the full ``predictors`` list
as read. Both patches carry the ``resourceVersion`` they were computed from: a concurrent
writer makes the server answer 409, and the caller re-reads and recomputes.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping

from ..errors import ConfigError
from ..model import StageConfig
from .settings import StageMapping
from .values import Selector, format_cpu, parse_cpu, parse_selector, selector_from_label_selector

STRATEGIC_MERGE = "application/strategic-merge-patch+json"
JSON_MERGE = "application/merge-patch+json"


@dataclass(frozen=True)
class Resource:
    """API coordinates of a workload kind."""

    kind: str
    group: str
    version: str
    plural: str

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def qualified(self) -> str:
        """``deployments.apps``, as RBAC messages spell it."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


RESOURCES: dict[str, Resource] = {
    "Deployment": Resource("Deployment", "apps", "v1", "deployments"),
    "SeldonDeployment": Resource("SeldonDeployment", "machinelearning.seldon.io", "v1", "seldondeployments"),
}

SELDON_POD_LABEL = "seldon-deployment-id"
"""The label Seldon Core puts on every pod of a SeldonDeployment."""


@dataclass(frozen=True)
class _Located:
    """Where a stage's fields sit inside one workload object."""

    replicas: int
    container: Mapping[str, Any]
    container_index: int
    predictor_index: int | None = None
    component_index: int | None = None


def describe(obj: Mapping[str, Any], kind: str) -> str:
    meta = obj.get("metadata") or {}
    return f"{kind} {meta.get('namespace', '?')}/{meta.get('name', '?')}"


def _err(mapping: StageMapping, obj: Mapping[str, Any], msg: str, config_path: Any) -> ConfigError:
    return ConfigError(
        f"stage {mapping.stage!r}: {describe(obj, mapping.kind)}: {msg}",
        path=config_path,
        where=mapping.where or None,
    )


def _int(value: Any, default: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"replicas {value!r} is not an integer")
    return value


def _pick_container(
    pod_spec: Mapping[str, Any], mapping: StageMapping, obj: Mapping[str, Any], config_path: Any
) -> tuple[int, Mapping[str, Any]]:
    containers = pod_spec.get("containers") or []
    if not containers:
        raise _err(mapping, obj, "the pod template has no containers", config_path)
    if mapping.container is None:
        return 0, containers[0]
    for i, c in enumerate(containers):
        if c.get("name") == mapping.container:
            return i, c
    names = ", ".join(str(c.get("name")) for c in containers)
    raise _err(mapping, obj, f"no container named {mapping.container!r} (containers: {names})", config_path)


def _locate(mapping: StageMapping, obj: Mapping[str, Any], config_path: Any) -> _Located:
    spec = obj.get("spec") or {}
    try:
        if mapping.kind == "Deployment":
            pod_spec = ((spec.get("template") or {}).get("spec")) or {}
            ci, container = _pick_container(pod_spec, mapping, obj, config_path)
            return _Located(_int(spec.get("replicas"), 1), container, ci)
        predictors = spec.get("predictors") or []
        if isinstance(mapping.predictor, str):
            pis = [i for i, p in enumerate(predictors) if p.get("name") == mapping.predictor]
            if not pis:
                names = ", ".join(str(p.get("name")) for p in predictors)
                raise _err(mapping, obj, f"no predictor named {mapping.predictor!r} (predictors: {names})",
                           config_path)
            pi = pis[0]
        else:
            pi = mapping.predictor
            if pi >= len(predictors):
                raise _err(mapping, obj, f"has {len(predictors)} predictor(s), no index {pi}", config_path)
        predictor = predictors[pi]
        components = predictor.get("componentSpecs") or []
        if mapping.component >= len(components):
            raise _err(mapping, obj, f"predictor {pi} has {len(components)} componentSpecs, no index "
                       f"{mapping.component}", config_path)
        comp = components[mapping.component]
        ci, container = _pick_container(comp.get("spec") or {}, mapping, obj, config_path)
        # componentSpecs[].replicas overrides the predictor's replicas (Seldon Core v1).
        replicas = _int(comp.get("replicas"), _int(predictor.get("replicas"), 1))
        return _Located(replicas, container, ci, pi, mapping.component)
    except ValueError as exc:
        raise _err(mapping, obj, str(exc), config_path) from None


def _env_value(container: Mapping[str, Any], name: str, mapping: StageMapping,
               obj: Mapping[str, Any], config_path: Any) -> str:
    cname = container.get("name")
    for e in container.get("env") or []:
        if e.get("name") == name:
            if "valueFrom" in e:
                raise _err(mapping, obj, f"container {cname!r}: env {name} is set through valueFrom; "
                           "ipa-ext needs a literal value it can change", config_path)
            return str(e.get("value", ""))
    raise _err(mapping, obj, f"container {cname!r}: env var {name} missing from the container spec "
               "(ipa-ext changes existing env vars only; add it to the manifest)", config_path)


def _cpu(container: Mapping[str, Any], mapping: StageMapping, obj: Mapping[str, Any],
         config_path: Any) -> float:
    res = container.get("resources") or {}
    raw = (res.get("requests") or {}).get("cpu")
    if raw is None:  # the API server defaults a missing request to the limit
        raw = (res.get("limits") or {}).get("cpu")
    if raw is None:
        raise _err(mapping, obj, f"container {container.get('name')!r} has no cpu request or limit",
                   config_path)
    try:
        return parse_cpu(raw)
    except ValueError as exc:
        raise _err(mapping, obj, str(exc), config_path) from None


def read_stage(mapping: StageMapping, obj: Mapping[str, Any], *, config_path: Any = None) -> StageConfig:
    """The stage's running configuration: variant, cpu per replica, batch and replicas."""
    loc = _locate(mapping, obj, config_path)
    variant = _env_value(loc.container, mapping.variant_env, mapping, obj, config_path)
    batch_raw = _env_value(loc.container, mapping.batch_env, mapping, obj, config_path)
    try:
        batch = int(batch_raw)
        if batch < 1:
            raise ValueError
    except ValueError:
        raise _err(mapping, obj, f"env {mapping.batch_env}={batch_raw!r} is not a batch size >= 1",
                   config_path) from None
    return StageConfig(variant=variant, cpu=_cpu(loc.container, mapping, obj, config_path),
                       batch=batch, replicas=loc.replicas)


def _container_changes(container: Mapping[str, Any], mapping: StageMapping, desired: StageConfig,
                       current: StageConfig) -> tuple[dict[str, Any], dict[str, str]]:
    """Changed resources and env values of one container."""
    res: dict[str, Any] = {}
    cpu = format_cpu(desired.cpu)
    resources = container.get("resources") or {}
    req = (resources.get("requests") or {}).get("cpu")
    lim = (resources.get("limits") or {}).get("cpu")
    if req is None or parse_cpu(req) != desired.cpu:
        res.setdefault("requests", {})["cpu"] = cpu
    if mapping.set_limits and (lim is None or parse_cpu(lim) != desired.cpu):
        res.setdefault("limits", {})["cpu"] = cpu
    env: dict[str, str] = {}
    if desired.variant != current.variant:
        env[mapping.variant_env] = desired.variant
    if desired.batch != current.batch:
        env[mapping.batch_env] = str(desired.batch)
    return res, env


def build_patch(
    mapping: StageMapping, obj: Mapping[str, Any], desired: StageConfig, *, config_path: Any = None
) -> tuple[dict[str, Any] | None, str]:
    """The patch taking ``obj`` to ``desired`` and its content type; ``None`` when nothing changes.

    ValueError when ``desired`` cannot be written (a CPU finer than 1m, replicas < 0).
    """
    if desired.replicas < 0:
        raise ValueError(f"replicas must be >= 0, got {desired.replicas}")
    if desired.batch < 1:
        raise ValueError(f"batch must be >= 1, got {desired.batch}")
    format_cpu(desired.cpu)  # raises for values the API cannot hold
    current = read_stage(mapping, obj, config_path=config_path)
    loc = _locate(mapping, obj, config_path)
    res, env = _container_changes(loc.container, mapping, desired, current)
    replicas_changed = desired.replicas != current.replicas
    if not res and not env and not replicas_changed:
        return None, STRATEGIC_MERGE if mapping.kind == "Deployment" else JSON_MERGE
    meta: dict[str, Any] = {}
    rv = (obj.get("metadata") or {}).get("resourceVersion")
    if rv is not None:
        meta["resourceVersion"] = rv

    if mapping.kind == "Deployment":
        c: dict[str, Any] = {"name": loc.container.get("name")}
        if res:
            c["resources"] = res
        if env:
            c["env"] = [{"name": k, "value": v} for k, v in env.items()]
        spec: dict[str, Any] = {}
        if replicas_changed:
            spec["replicas"] = desired.replicas
        if res or env:
            spec["template"] = {"spec": {"containers": [c]}}
        patch: dict[str, Any] = {"spec": spec}
        if meta:
            patch["metadata"] = meta
        return patch, STRATEGIC_MERGE

    # SeldonDeployment: JSON merge patch replaces lists, so send the whole predictors list.
    predictors = copy.deepcopy((obj.get("spec") or {}).get("predictors") or [])
    assert loc.predictor_index is not None and loc.component_index is not None
    comp = predictors[loc.predictor_index]["componentSpecs"][loc.component_index]
    if replicas_changed:
        comp["replicas"] = desired.replicas
    container = comp["spec"]["containers"][loc.container_index]
    for section, values in res.items():
        container.setdefault("resources", {}).setdefault(section, {}).update(values)
    for e in container.get("env") or []:
        if e.get("name") in env:
            e["value"] = env[e["name"]]
    patch = {"spec": {"predictors": predictors}}
    if meta:
        patch["metadata"] = meta
    return patch, JSON_MERGE


def pod_selector(mapping: StageMapping, obj: Mapping[str, Any]) -> Selector:
    """The label selector of the stage's pods: the mapping's ``pod_selector`` if set, else the
    Deployment's ``spec.selector``, else Seldon's ``seldon-deployment-id=<name>`` label."""
    if mapping.pod_selector is not None:
        return mapping.pod_selector
    if mapping.kind == "Deployment":
        return selector_from_label_selector((obj.get("spec") or {}).get("selector"))
    name = (obj.get("metadata") or {}).get("name", "")
    return parse_selector(f"{SELDON_POD_LABEL}={name}")
