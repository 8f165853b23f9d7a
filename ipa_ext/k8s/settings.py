"""The ``kubernetes:`` config section: where the cluster is and which workload each stage is.

Every key is checked; a wrong one is a :class:`~ipa_ext.errors.ConfigError` naming the
config file and the field (``kubernetes.stages.crop.kind``). Defaults follow IPA's layout:
the variant in env ``MODEL_VARIANT``, the batch size in env ``MLSERVER_MODEL_MAX_BATCH_SIZE``,
CPU requests and limits both set to the chosen cores.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config.numeric import NumberError, as_number
from ..errors import ConfigError
from .values import Selector, parse_selector

KINDS = ("Deployment", "SeldonDeployment")

STAGE_KEYS = {
    "kind": "Deployment (apps/v1, default) or SeldonDeployment (machinelearning.seldon.io/v1)",
    "name": "the workload's name (default: the stage name)",
    "selector": "a label selector matching exactly one workload (instead of name)",
    "container": "the model server's container name (default: the first container)",
    "variant_env": "env var naming the model variant (default MODEL_VARIANT)",
    "batch_env": "env var holding the batch size (default MLSERVER_MODEL_MAX_BATCH_SIZE)",
    "set_limits": "also set the container's cpu limit, not only its request (default true)",
    "predictor": "SeldonDeployment only: index or name of spec.predictors (default 0)",
    "component": "SeldonDeployment only: index of the predictor's componentSpecs (default 0)",
    "pod_selector": "label selector of the stage's pods (default: derived from the workload)",
}

TOP_KEYS = {
    "namespace": "namespace of the pipeline's workloads (default: the context's, else default)",
    "kubeconfig": "kubeconfig file (default: $KUBECONFIG, then ~/.kube/config)",
    "context": "kubeconfig context (default: the current one)",
    "in_cluster": "auto | true | false: use the pod's service account (auto: when in a pod)",
    "selector": "label selector every stage's workload must also match",
    "request_timeout_s": "timeout of one API request (default 10)",
    "retry": "{attempts, backoff_s, max_backoff_s} for 409 conflicts, 429 and 5xx",
    "field_manager": "field manager recorded on patches (default ipa-ext)",
    "max_failed_intervals": "intervals in a row a mid-run 401, 403 or missing workload may last "
                            "before the run ends (default 3)",
    "defaults": "stage settings shared by every stage (any key of a stage)",
    "stages": "per-stage workload mapping: {stage: {kind, name | selector, ...}}",
}


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries with exponential backoff: attempt ``i`` (0-based) waits
    ``min(max_backoff_s, backoff_s * 2**i)`` before the next one (or the server's
    ``Retry-After`` when that is shorter than ``max_backoff_s``)."""

    attempts: int = 4
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def delay_s(self, attempt: int, retry_after_s: float | None = None) -> float:
        if retry_after_s is not None and retry_after_s >= 0:
            return min(self.max_backoff_s, retry_after_s)
        return min(self.max_backoff_s, self.backoff_s * (2**attempt))


@dataclass(frozen=True)
class StageMapping:
    """How one pipeline stage maps to a workload and its fields."""

    stage: str
    kind: str = "Deployment"
    name: str | None = None
    selector: Selector | None = None
    container: str | None = None
    variant_env: str = "MODEL_VARIANT"
    batch_env: str = "MLSERVER_MODEL_MAX_BATCH_SIZE"
    set_limits: bool = True
    predictor: int | str = 0
    component: int = 0
    pod_selector: Selector | None = None
    where: str = ""
    """The config field this mapping came from, for error messages."""

    @property
    def describe(self) -> str:
        """``Deployment crop`` or ``Deployment selected by app=crop``."""
        if self.name is not None:
            return f"{self.kind} {self.name}"
        assert self.selector is not None
        return f"{self.kind} selected by {self.selector.render()!r}"


@dataclass(frozen=True)
class ClusterSettings:
    """The validated ``kubernetes:`` section."""

    stages: tuple[StageMapping, ...]
    namespace: str | None = None
    kubeconfig: Path | None = None
    context: str | None = None
    in_cluster: str = "auto"  # auto | true | false
    selector: Selector = field(default_factory=Selector)
    request_timeout_s: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    field_manager: str = "ipa-ext"
    max_failed_intervals: int = 3
    config_path: Path | None = None

    def stage(self, name: str) -> StageMapping:
        for s in self.stages:
            if s.stage == name:
                return s
        raise KeyError(name)


class _R:
    def __init__(self, path: Path | None) -> None:
        self.path = path

    def err(self, where: str, msg: str) -> ConfigError:
        return ConfigError(msg, path=self.path, where=where)

    def mapping(self, v: Any, where: str) -> Mapping[str, Any]:
        if v is None:
            return {}
        if not isinstance(v, Mapping):
            raise self.err(where, f"must be a mapping, got {v!r}")
        return v

    def string(self, v: Any, where: str) -> str:
        if not isinstance(v, str) or not v.strip():
            raise self.err(where, f"must be a non-empty string, got {v!r}")
        return v

    def number(self, v: Any, where: str, *, integer: bool = False, minimum: float = 0.0) -> Any:
        try:
            return as_number(v, integer=integer, minimum=minimum)
        except NumberError as exc:
            raise self.err(where, str(exc)) from None

    def selector(self, v: Any, where: str) -> Selector:
        try:
            return parse_selector(self.string(v, where))
        except ValueError as exc:
            raise self.err(where, str(exc)) from None

    def unknown(self, m: Mapping[str, Any], known: Mapping[str, str], where: str) -> None:
        for k in m:
            if k not in known:
                raise self.err(
                    f"{where}.{k}", f"unknown key (known: {', '.join(sorted(known))})"
                )


def parse_settings(
    section: Mapping[str, Any] | None,
    stage_names: Sequence[str],
    *,
    path: Path | None = None,
    base_dir: Path | None = None,
) -> ClusterSettings:
    """Validate the ``kubernetes:`` section for a pipeline with ``stage_names``."""
    r = _R(path)
    sec = r.mapping(section, "kubernetes")
    r.unknown(sec, TOP_KEYS, "kubernetes")
    base = base_dir if base_dir is not None else (path.parent if path is not None else Path.cwd())
    connection = _connection(r, sec, base)
    retry = _retry(r, sec)
    field_manager = r.string(sec.get("field_manager", "ipa-ext"), "kubernetes.field_manager")
    max_failed = r.number(sec.get("max_failed_intervals", 3), "kubernetes.max_failed_intervals",
                          integer=True, minimum=1)
    defaults = r.mapping(sec.get("defaults"), "kubernetes.defaults")
    r.unknown(defaults, STAGE_KEYS, "kubernetes.defaults")
    for k in ("name", "selector", "pod_selector"):
        if k in defaults:
            raise r.err(f"kubernetes.defaults.{k}", "is per stage; set it under kubernetes.stages")
    stages_raw = r.mapping(sec.get("stages"), "kubernetes.stages")
    for k in stages_raw:
        if k not in stage_names:
            raise r.err(
                f"kubernetes.stages.{k}",
                f"not a stage of the pipeline (stages: {', '.join(stage_names)})",
            )
    stages = tuple(_stage(r, stage, stages_raw.get(stage), defaults) for stage in stage_names)
    return ClusterSettings(
        stages=stages,
        retry=retry,
        field_manager=field_manager,
        max_failed_intervals=max_failed,
        config_path=path,
        **connection,
    )


def _connection(r: _R, sec: Mapping[str, Any], base: Path) -> dict[str, Any]:
    """Where the cluster is and how to reach it: namespace, kubeconfig, context, in_cluster,
    the default label selector and the request timeout."""
    out: dict[str, Any] = {"namespace": None, "kubeconfig": None, "context": None}
    if sec.get("namespace") is not None:
        out["namespace"] = r.string(sec["namespace"], "kubernetes.namespace")
    if sec.get("kubeconfig") is not None:
        kubeconfig = Path(r.string(sec["kubeconfig"], "kubernetes.kubeconfig")).expanduser()
        out["kubeconfig"] = kubeconfig if kubeconfig.is_absolute() else base / kubeconfig
    if sec.get("context") is not None:
        out["context"] = r.string(sec["context"], "kubernetes.context")
    in_cluster = sec.get("in_cluster", "auto")
    if in_cluster is True:
        in_cluster = "true"
    elif in_cluster is False:
        in_cluster = "false"
    if in_cluster not in ("auto", "true", "false"):
        raise r.err("kubernetes.in_cluster", f"must be auto, true or false, got {in_cluster!r}")
    out["in_cluster"] = in_cluster
    out["selector"] = Selector()
    if sec.get("selector") is not None:
        out["selector"] = r.selector(sec["selector"], "kubernetes.selector")
    out["request_timeout_s"] = 10.0
    if sec.get("request_timeout_s") is not None:
        out["request_timeout_s"] = r.number(sec["request_timeout_s"], "kubernetes.request_timeout_s",
                                            minimum=0.001)
    return out


def _retry(r: _R, sec: Mapping[str, Any]) -> RetryPolicy:
    """``kubernetes.retry``: attempts and exponential backoff for failed API calls."""
    retry_raw = r.mapping(sec.get("retry"), "kubernetes.retry")
    r.unknown(retry_raw, {"attempts": "", "backoff_s": "", "max_backoff_s": ""}, "kubernetes.retry")
    return RetryPolicy(
        attempts=r.number(retry_raw.get("attempts", 4), "kubernetes.retry.attempts", integer=True, minimum=1),
        backoff_s=r.number(retry_raw.get("backoff_s", 0.5), "kubernetes.retry.backoff_s"),
        max_backoff_s=r.number(retry_raw.get("max_backoff_s", 8.0), "kubernetes.retry.max_backoff_s"),
    )


def _stage(r: _R, stage: str, raw: Any, defaults: Mapping[str, Any]) -> StageMapping:
    """One stage's mapping: its own keys over ``kubernetes.defaults``; errors name whichever
    of the two the bad value came from."""
    where = f"kubernetes.stages.{stage}"
    own = r.mapping(raw, where)
    r.unknown(own, STAGE_KEYS, where)
    merged = {**defaults, **own}

    def w(key: str) -> str:
        return f"{where}.{key}" if key in own else f"kubernetes.defaults.{key}"

    kind = merged.get("kind", "Deployment")
    if kind not in KINDS:
        raise r.err(w("kind"), f"must be one of {', '.join(KINDS)}, got {kind!r}")
    if "name" in own and "selector" in own:
        raise r.err(where, "give either name or selector, not both")
    name = None
    sel = None
    if "selector" in own:
        sel = r.selector(own["selector"], f"{where}.selector")
        if not sel:
            raise r.err(f"{where}.selector", "must not be empty")
    else:
        name = r.string(own.get("name", stage), f"{where}.name")
    container = None
    if merged.get("container") is not None:
        container = r.string(merged["container"], w("container"))
    variant_env = r.string(merged.get("variant_env", "MODEL_VARIANT"), w("variant_env"))
    batch_env = r.string(merged.get("batch_env", "MLSERVER_MODEL_MAX_BATCH_SIZE"), w("batch_env"))
    if variant_env == batch_env:
        raise r.err(w("batch_env"), f"must differ from variant_env ({variant_env})")
    set_limits = merged.get("set_limits", True)
    if not isinstance(set_limits, bool):
        raise r.err(w("set_limits"), f"expected true or false, got {set_limits!r}")
    predictor, component = _seldon(r, kind, own, merged, where, w)
    pod_selector = None
    if "pod_selector" in own:
        pod_selector = r.selector(own["pod_selector"], f"{where}.pod_selector")
    return StageMapping(
        stage=stage, kind=kind, name=name, selector=sel, container=container, variant_env=variant_env,
        batch_env=batch_env, set_limits=set_limits, predictor=predictor, component=component,
        pod_selector=pod_selector, where=where,
    )


def _seldon(r: _R, kind: str, own: Mapping[str, Any], merged: Mapping[str, Any], where: str,
            w: Callable[[str], str]) -> tuple[int | str, int]:
    """A SeldonDeployment's predictor (index or name) and component index."""
    predictor = merged.get("predictor", 0)
    component = merged.get("component", 0)
    if kind != "SeldonDeployment":
        for k in ("predictor", "component"):
            if k in own:
                raise r.err(f"{where}.{k}", "applies to kind SeldonDeployment only")
    if isinstance(predictor, bool) or not isinstance(predictor, (int, str)) or (
        isinstance(predictor, int) and predictor < 0
    ):
        raise r.err(w("predictor"), f"must be an index >= 0 or a predictor name, got {predictor!r}")
    return predictor, r.number(component, w("component"), integer=True)
