"""Talk to the API server: find each stage's workload, read the running configuration, apply
a new one with patches, retry what is worth retrying, and report per stage.

Faults are sorted into what a user must fix (:class:`~ipa_ext.errors.ConfigError`: a stage
that matches no workload, a missing env var, a Role without a verb, rejected credentials)
and what may clear by itself (:class:`~ipa_ext.errors.TransientError`: an unreachable server,
timeouts, 429 and 5xx, conflicts that kept recurring). 409, 429 and 5xx are retried with
bounded exponential backoff; nothing is retried forever.
"""

from __future__ import annotations

import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import ConfigError, TransientError
from ..model import Configuration, StageConfig
from .deployments import RESOURCES, Resource, build_patch, describe, pod_selector, read_stage
from .settings import ClusterSettings, StageMapping
from .values import Selector

log = logging.getLogger("ipa_ext.k8s")

SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
RBAC_HINT = "grant it in the adapter's Role (see deploy/rbac.yaml)"


class KubePermissionError(ConfigError):
    """The API server answered 403: the adapter's Role lacks a verb."""


class KubeCredentialsError(ConfigError):
    """The API server answered 401: the credentials expired or are invalid."""


class KubeUnavailable(TransientError):
    """The API server could not be reached or kept failing (timeouts, 429, 5xx, 409)."""

    component = "kubernetes"


@dataclass(frozen=True)
class StageResult:
    """What applying one stage did."""

    stage: str
    ok: bool
    changed: bool
    attempts: int = 0
    target: str = ""
    error: str | None = None
    fatal: bool = False
    """True when retrying cannot help (403, 401, a missing workload or env var)."""
    patch: Mapping[str, Any] | None = None
    patch_type: str | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "stage": self.stage, "ok": self.ok, "changed": self.changed, "attempts": self.attempts,
            "target": self.target, "error": self.error, "fatal": self.fatal,
            "patch_type": self.patch_type, "patch": self.patch, "dry_run": self.dry_run,
        }


@dataclass(frozen=True)
class ApplyReport:
    """Per-stage results of one apply, in stage order."""

    results: tuple[StageResult, ...] = field(default=())

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    @property
    def failed(self) -> list[StageResult]:
        return [r for r in self.results if not r.ok]

    @property
    def fatal(self) -> StageResult | None:
        """The first failure that retrying cannot fix, if any."""
        return next((r for r in self.results if r.fatal), None)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "stages": [r.as_dict() for r in self.results]}


# --------------------------------------------------------------------------- connecting


def _kube_modules():
    from kubernetes import client, config  # imported lazily: a heavy import

    return client, config


def connect(settings: ClusterSettings) -> tuple[Any, str]:
    """An ``ApiClient`` and the namespace, from in-cluster credentials or a kubeconfig."""
    client, kconfig = _kube_modules()
    cfg = client.Configuration()
    in_pod = "KUBERNETES_SERVICE_HOST" in os.environ
    namespace = settings.namespace
    where = None if settings.config_path is None else "kubernetes"
    if settings.in_cluster == "true" or (settings.in_cluster == "auto" and in_pod and settings.kubeconfig is None):
        try:
            kconfig.load_incluster_config(client_configuration=cfg)
        except kconfig.ConfigException as exc:
            raise ConfigError(f"in-cluster credentials: {exc}", path=settings.config_path,
                              where="kubernetes.in_cluster") from None
        if namespace is None:
            try:
                namespace = SERVICE_ACCOUNT_NAMESPACE.read_text().strip() or None
            except OSError:
                namespace = None
    else:
        path = settings.kubeconfig
        if path is None:
            env = os.environ.get("KUBECONFIG", "")
            path = Path(env.split(os.pathsep)[0]).expanduser() if env else Path("~/.kube/config").expanduser()
        if not path.is_file():
            raise ConfigError(
                f"kubeconfig {path} not found and not running in a pod; set kubernetes.kubeconfig "
                "or $KUBECONFIG", path=settings.config_path, where=where and "kubernetes.kubeconfig")
        try:
            kconfig.load_kube_config(config_file=str(path), context=settings.context,
                                     client_configuration=cfg)
            if namespace is None:
                contexts, active = kconfig.list_kube_config_contexts(config_file=str(path))
                ctx = active
                if settings.context is not None:
                    ctx = next((c for c in contexts if c.get("name") == settings.context), active)
                namespace = ((ctx or {}).get("context") or {}).get("namespace")
        except (kconfig.ConfigException, ValueError, TypeError, KeyError, OSError) as exc:
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"kubeconfig {path}: {msg}", path=settings.config_path,
                              where=where and "kubernetes.kubeconfig") from None
        except Exception as exc:  # yaml errors and the like from the kubeconfig loader
            raise ConfigError(f"kubeconfig {path}: {type(exc).__name__}: {exc}".splitlines()[0],
                              path=settings.config_path, where=where and "kubernetes.kubeconfig") from None
    cfg.retries = 0  # retries are ours, with backoff and a bound
    return client.ApiClient(cfg), namespace or "default"


# --------------------------------------------------------------------------- the cluster


def _retry_after(exc: Any) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    try:
        value = headers.get("Retry-After")
    except AttributeError:  # pragma: no cover - header containers differ across clients
        value = None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _status_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if body:
        try:
            data = json.loads(body)
            if isinstance(data, dict) and data.get("message"):
                return str(data["message"])
        except (ValueError, TypeError):
            pass
    return f"{getattr(exc, 'status', '?')} {getattr(exc, 'reason', '')}".strip()


class _Retryable(Exception):
    def __init__(self, message: str, retry_after_s: float | None = None, conflict: bool = False) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s
        self.conflict = conflict


class PipelineCluster:
    """The pipeline's workloads on one cluster.

    ``api_client`` is a ``kubernetes.client.ApiClient``; :meth:`from_settings` builds one
    from a kubeconfig or the pod's service account. ``sleep`` is the backoff's clock.
    """

    def __init__(
        self,
        settings: ClusterSettings,
        api_client: Any,
        namespace: str,
        *,
        sleep: Callable[[float], None] = time.sleep,
        credentials: str = "kubeconfig",
    ) -> None:
        client, _ = _kube_modules()
        self.settings = settings
        self.namespace = namespace
        self.api_client = api_client
        self._apps = client.AppsV1Api(api_client)
        self._custom = client.CustomObjectsApi(api_client)
        self._core = client.CoreV1Api(api_client)
        self._sleep = sleep
        self._credentials = credentials

    @classmethod
    def from_settings(cls, settings: ClusterSettings, **kwargs: Any) -> "PipelineCluster":
        api_client, namespace = connect(settings)
        return cls(settings, api_client, namespace, **kwargs)

    def close(self) -> None:
        try:
            self.api_client.close()
        except Exception:  # pragma: no cover - closing must never fail a run
            pass

    # ---------------------------------------------------------------- raw calls

    def _call(self, verb: str, resource: Resource | str, target: str, fn: Callable[..., Any],
              *args: Any, **kwargs: Any) -> Any:
        """Call ``fn`` raw and return the JSON; map errors to ipa-ext types.

        Raises :class:`_Retryable` for 409/429/5xx/connection faults, ConfigError subclasses
        for 401/403, and lets 404 through as ``LookupError``.
        """
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError as Urllib3Error

        kwargs.setdefault("_request_timeout", self.settings.request_timeout_s)
        res_name = resource.qualified if isinstance(resource, Resource) else resource
        try:
            resp = fn(*args, _preload_content=False, **kwargs)
            data = resp.data if hasattr(resp, "data") else resp
            return json.loads(data) if isinstance(data, (bytes, str)) else data
        except ApiException as exc:
            status = exc.status or 0
            msg = _status_message(exc)
            if status == 401:
                raise KubeCredentialsError(
                    f"kubernetes: the API server rejected the credentials (401 Unauthorized) while "
                    f"trying to {verb} {res_name}: the token or certificate from the {self._credentials} "
                    "has expired or is invalid; renew it") from None
            if status == 403:
                raise KubePermissionError(
                    f"kubernetes: forbidden to {verb} {res_name} in namespace {self.namespace}; "
                    f"the RBAC verb {verb!r} on {res_name} is missing, {RBAC_HINT} (server said: {msg})"
                ) from None
            if status == 404:
                raise LookupError(msg) from None
            if status == 409:
                raise _Retryable(f"409 conflict on {target}: {msg}", conflict=True) from None
            if status == 429 or status >= 500:
                raise _Retryable(f"{status} from the API server on {target}: {msg}",
                                 retry_after_s=_retry_after(exc)) from None
            raise _Rejected(f"{status} {exc.reason or ''} on {target}: {msg}".replace("  ", " ")) from None
        except Urllib3Error as exc:
            host = getattr(self.api_client.configuration, "host", "?")
            reason = getattr(exc, "reason", None) or exc
            raise _Retryable(f"API server {host} unreachable: {type(reason).__name__}: {reason}"
                             .splitlines()[0]) from None
        except OSError as exc:  # sockets, TLS
            host = getattr(self.api_client.configuration, "host", "?")
            raise _Retryable(f"API server {host} unreachable: {exc}".splitlines()[0]) from None

    def _with_retries(self, what: str, fn: Callable[[], Any]) -> tuple[Any, int]:
        """Run ``fn`` with the retry policy; returns (result, attempts) or raises KubeUnavailable."""
        policy = self.settings.retry
        last = ""
        for attempt in range(policy.attempts):
            try:
                return fn(), attempt + 1
            except _Retryable as exc:
                last = str(exc)
                if attempt + 1 < policy.attempts:
                    delay = policy.delay_s(attempt, exc.retry_after_s)
                    log.info("kubernetes: %s: %s; retry %d/%d in %.2fs", what, last, attempt + 1,
                             policy.attempts - 1, delay)
                    self._sleep(delay)
        raise KubeUnavailable(f"kubernetes: {what}: {last} (gave up after {policy.attempts} attempts)")

    # ---------------------------------------------------------------- objects

    def _get(self, mapping: StageMapping, name: str) -> dict[str, Any]:
        r = RESOURCES[mapping.kind]
        target = f"{mapping.kind} {self.namespace}/{name}"
        if mapping.kind == "Deployment":
            return self._call("get", r, target, self._apps.read_namespaced_deployment, name, self.namespace)
        return self._call("get", r, target, self._custom.get_namespaced_custom_object,
                          r.group, r.version, self.namespace, r.plural, name)

    def _list(self, mapping: StageMapping, selector: Selector) -> list[dict[str, Any]]:
        r = RESOURCES[mapping.kind]
        target = f"{r.qualified} in {self.namespace} selected by {selector.render()!r}"
        if mapping.kind == "Deployment":
            data = self._call("list", r, target, self._apps.list_namespaced_deployment, self.namespace,
                              label_selector=selector.render())
        else:
            data = self._call("list", r, target, self._custom.list_namespaced_custom_object,
                              r.group, r.version, self.namespace, r.plural,
                              label_selector=selector.render())
        return list(data.get("items") or [])

    def _fetch_once(self, mapping: StageMapping) -> dict[str, Any]:
        cfg_path = self.settings.config_path
        where = mapping.where or None
        scope = self.settings.selector
        if mapping.name is not None:
            try:
                obj = self._get(mapping, mapping.name)
            except LookupError:
                raise ConfigError(
                    f"stage {mapping.stage!r} matches no workload: {mapping.kind} "
                    f"{self.namespace}/{mapping.name} not found", path=cfg_path, where=where) from None
            labels = (obj.get("metadata") or {}).get("labels") or {}
            if scope and not scope.matches(labels):
                raise ConfigError(
                    f"stage {mapping.stage!r}: {describe(obj, mapping.kind)} does not match "
                    f"kubernetes.selector {scope.render()!r}", path=cfg_path, where=where)
            return obj
        assert mapping.selector is not None
        sel = scope & mapping.selector
        try:
            items = self._list(mapping, sel)
        except LookupError as exc:  # the resource type itself is unknown (CRD not installed)
            raise ConfigError(f"stage {mapping.stage!r}: cannot list {mapping.kind}: {exc}",
                              path=cfg_path, where=where) from None
        # The server filters; check again so that a server ignoring the selector cannot
        # make us patch the wrong object.
        items = [o for o in items if sel.matches((o.get("metadata") or {}).get("labels"))]
        if len(items) != 1:
            found = ", ".join(sorted(str((o.get("metadata") or {}).get("name")) for o in items))
            what = "matches no workload" if not items else f"matches {len(items)} workloads ({found})"
            raise ConfigError(
                f"stage {mapping.stage!r} {what}: {mapping.kind} in namespace {self.namespace} "
                f"selected by {sel.render()!r}; it must match exactly one", path=cfg_path, where=where)
        return items[0]

    def fetch(self, mapping: StageMapping) -> dict[str, Any]:
        """The stage's workload object (retrying transient faults)."""
        obj, _ = self._with_retries(f"read stage {mapping.stage!r}", lambda: self._fetch_once(mapping))
        return obj

    def read_configuration(self) -> Configuration:
        """The running configuration, one :class:`StageConfig` per stage in pipeline order."""
        return tuple(
            read_stage(m, self.fetch(m), config_path=self.settings.config_path) for m in self.settings.stages
        )

    def pod_selectors(self) -> dict[str, Selector]:
        """Each stage's pod label selector (for energy attribution)."""
        return {m.stage: pod_selector(m, self.fetch(m)) for m in self.settings.stages}

    def list_pods(self, selector: Selector) -> list[dict[str, Any]]:
        """Pods in the namespace matching ``selector`` (raw JSON)."""
        target = f"pods in {self.namespace} selected by {selector.render()!r}"

        def once() -> list[dict[str, Any]]:
            data = self._call("list", "pods", target, self._core.list_namespaced_pod, self.namespace,
                              label_selector=selector.render())
            return [p for p in data.get("items") or []
                    if selector.matches((p.get("metadata") or {}).get("labels"))]

        pods, _ = self._with_retries("list pods", once)
        return pods

    # ---------------------------------------------------------------- apply

    def _patch(self, mapping: StageMapping, name: str, patch: Mapping[str, Any], content_type: str) -> Any:
        r = RESOURCES[mapping.kind]
        target = f"{mapping.kind} {self.namespace}/{name}"
        kw = {"_content_type": content_type, "field_manager": self.settings.field_manager}
        if mapping.kind == "Deployment":
            return self._call("patch", r, target, self._apps.patch_namespaced_deployment,
                              name, self.namespace, patch, **kw)
        return self._call("patch", r, target, self._custom.patch_namespaced_custom_object,
                          r.group, r.version, self.namespace, r.plural, name, patch, **kw)

    def apply_stage(self, mapping: StageMapping, desired: StageConfig, *, dry_run: bool = False) -> StageResult:
        """Read, patch, and on 409/429/5xx re-read and retry with backoff, at most
        ``retry.attempts`` times. Never raises for a stage's failure: it is in the result."""
        policy = self.settings.retry
        attempts = 0
        target = mapping.describe
        last = ""
        patch: dict[str, Any] | None = None
        ctype: str | None = None
        while attempts < policy.attempts:
            attempts += 1
            try:
                obj = self._fetch_once(mapping)
                target = describe(obj, mapping.kind)
                try:
                    patch, ctype = build_patch(mapping, obj, desired, config_path=self.settings.config_path)
                except ValueError as exc:
                    return StageResult(mapping.stage, False, False, attempts, target,
                                       f"cannot write {desired.as_dict()}: {exc}", fatal=False)
                if patch is None:
                    return StageResult(mapping.stage, True, False, attempts, target, dry_run=dry_run)
                if dry_run:
                    return StageResult(mapping.stage, True, True, attempts, target, patch=patch,
                                       patch_type=ctype, dry_run=True)
                name = (obj.get("metadata") or {}).get("name")
                self._patch(mapping, name, patch, ctype)
                return StageResult(mapping.stage, True, True, attempts, target, patch=patch, patch_type=ctype)
            except _Retryable as exc:
                last = str(exc)
                if attempts < policy.attempts:
                    delay = policy.delay_s(attempts - 1, exc.retry_after_s)
                    log.info("kubernetes: stage %r: %s; retry %d/%d in %.2fs", mapping.stage, last,
                             attempts, policy.attempts - 1, delay)
                    self._sleep(delay)
            except _Rejected as exc:
                return StageResult(mapping.stage, False, False, attempts, target, str(exc),
                                   patch=patch, patch_type=ctype)
            except ConfigError as exc:
                return StageResult(mapping.stage, False, False, attempts, target, str(exc), fatal=True,
                                   patch=patch, patch_type=ctype)
        return StageResult(mapping.stage, False, False, attempts, target,
                           f"{last} (gave up after {attempts} attempts)", patch=patch, patch_type=ctype)

    def apply(self, config: Configuration, *, dry_run: bool = False) -> ApplyReport:
        """Apply ``config`` to every stage concurrently (as IPA does) and report per stage."""
        stages = self.settings.stages
        if len(config) != len(stages):
            raise ValueError(f"configuration has {len(config)} stages, the pipeline {len(stages)}")
        with ThreadPoolExecutor(max_workers=max(1, len(stages)), thread_name_prefix="ipa-ext-k8s") as ex:
            futures = [ex.submit(self.apply_stage, m, c, dry_run=dry_run) for m, c in zip(stages, config)]
            results = tuple(f.result() for f in futures)
        for r in results:
            if not r.ok:
                log.warning("kubernetes: stage %r not applied: %s", r.stage, r.error)
        return ApplyReport(results)


class _Rejected(Exception):
    """A 4xx other than 401/403/404/409/429: the server refused this patch; do not retry it."""
