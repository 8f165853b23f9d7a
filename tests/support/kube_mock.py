"""A stateful Kubernetes API mock server for tests, built on kmock's emulator.

kmock serves HTTP on 127.0.0.1, parses Kubernetes URLs and keeps objects with their history.
Its emulator merges patches naively, so :class:`StatefulKube` adds what the adapter's
correctness depends on, the way a real API server does it:

* strategic-merge patches for built-in kinds (containers and env merge by ``name``), JSON
  merge patches (RFC 7386) for every kind, 415 for a strategic-merge patch on a custom
  resource;
* ``resourceVersion`` on every write and a 409 when a patch carries a stale one;
* label selectors on list requests;
* bearer-token authentication (401) and RBAC from a Role manifest (403 in the API server's
  words);
* 422 when a patch would make a container's cpu request exceed its limit;
* injected faults: a status for the next N matching requests, or a concurrent writer that
  changes the object just before a patch arrives.

:class:`KubeServer` runs it on its own event loop in a background thread, so the synchronous
``kubernetes`` client (and subprocesses) can talk to it while a test runs.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import aiohttp.web
import attrs
import kmock
import yaml
from kmock._internal.k8s import KubernetesError

RESOURCES = {
    "Deployment": kmock.resource("apps", "v1", "deployments"),
    "SeldonDeployment": kmock.resource("machinelearning.seldon.io", "v1", "seldondeployments"),
    "Pod": kmock.resource("", "v1", "pods"),
}
BUILTIN_GROUPS = {"", "apps"}
MERGE_KEYS = {"containers": "name", "initContainers": "name", "env": "name", "volumes": "name",
              "volumeMounts": "mountPath", "ports": "containerPort"}


@dataclass
class Identity:
    """Who a bearer token belongs to and what its Role allows."""

    user: str
    rules: list[Mapping[str, Any]]

    def allows(self, verb: str, group: str, plural: str) -> bool:
        for rule in self.rules:
            groups = rule.get("apiGroups") or []
            if ("*" in groups or group in groups) and (
                "*" in (rule.get("resources") or []) or plural in (rule.get("resources") or [])
            ) and ("*" in (rule.get("verbs") or []) or verb in (rule.get("verbs") or [])):
                return True
        return False


@dataclass
class Fault:
    """Answer the next ``times`` requests matching (verb, plural[, name]) with ``status``, or,
    with ``mutate``, change the stored object first and then serve the request normally."""

    verb: str
    plural: str
    status: int | None = None
    times: int = 1
    name: str | None = None
    message: str = "injected fault"
    retry_after_s: float | None = None
    mutate: Callable[[dict[str, Any]], None] | None = None
    hits: int = 0


def role_rules(manifest: Path, role_name: str | None = None) -> list[Mapping[str, Any]]:
    """The rules of the (first, or named) Role in a multi-document manifest."""
    for doc in yaml.safe_load_all(manifest.read_text()):
        if doc and doc.get("kind") == "Role" and (role_name is None or doc["metadata"]["name"] == role_name):
            return list(doc.get("rules") or [])
    raise LookupError(f"no Role in {manifest}")


# ----------------------------------------------------------------------------- semantics


def strategic_merge(orig: dict[str, Any], patch: Mapping[str, Any]) -> None:
    for k, v in patch.items():
        if isinstance(k, str) and k.startswith("$"):
            raise KubernetesError(400, "BadRequest", f"directive {k} is not supported by this mock")
        if v is None:
            orig.pop(k, None)
        elif isinstance(v, Mapping) and isinstance(orig.get(k), dict):
            strategic_merge(orig[k], v)
        elif isinstance(v, list) and k in MERGE_KEYS and isinstance(orig.get(k), list):
            key = MERGE_KEYS[k]
            for item in v:
                if not isinstance(item, Mapping) or key not in item:
                    raise KubernetesError(400, "BadRequest", f"{k}: every item needs merge key {key!r}")
                match = next((o for o in orig[k] if o.get(key) == item[key]), None)
                if match is None:
                    orig[k].append(copy.deepcopy(dict(item)))
                else:
                    strategic_merge(match, item)
        else:
            orig[k] = copy.deepcopy(v)


def json_merge(target: Any, patch: Any) -> Any:
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for k, v in patch.items():
        if v is None:
            out.pop(k, None)
        else:
            out[k] = json_merge(out.get(k), v)
    return out


def _millicores(q: Any) -> int:
    s = str(q)
    if re.fullmatch(r"\d+m", s):
        return int(s[:-1])
    if re.fullmatch(r"\d+(\.\d+)?", s):
        return round(float(s) * 1000)
    raise ValueError(s)


def _validate(kind_plural: str, obj: Mapping[str, Any]) -> None:
    if kind_plural != "deployments":
        return
    name = obj["metadata"]["name"]
    spec = obj.get("spec") or {}
    reps = spec.get("replicas", 1)
    if not isinstance(reps, int) or isinstance(reps, bool) or reps < 0:
        raise KubernetesError(422, "Invalid", f'Deployment.apps "{name}" is invalid: spec.replicas: '
                              f"Invalid value: {reps!r}: must be greater than or equal to 0")
    for i, c in enumerate(((spec.get("template") or {}).get("spec") or {}).get("containers") or []):
        res = c.get("resources") or {}
        req = (res.get("requests") or {}).get("cpu")
        lim = (res.get("limits") or {}).get("cpu")
        for what, q in (("requests", req), ("limits", lim)):
            if q is None:
                continue
            if not isinstance(q, str):
                raise KubernetesError(422, "Invalid", f"quantities must be strings, got {q!r}")
            try:
                _millicores(q)
            except ValueError:
                raise KubernetesError(422, "Invalid", f'Deployment.apps "{name}" is invalid: spec.template.spec.'
                                      f"containers[{i}].resources.{what}[cpu]: Invalid value: {q!r}") from None
        if req is not None and lim is not None and _millicores(req) > _millicores(lim):
            raise KubernetesError(
                422, "Invalid", f'Deployment.apps "{name}" is invalid: spec.template.spec.containers[{i}].'
                f'resources.requests: Invalid value: "{req}": must be less than or equal to cpu limit of {lim}')


def selector_matches(selector: str, labels: Mapping[str, str]) -> bool:
    """The label-selector grammar, written independently of the product's parser."""
    if not selector:
        return True
    parts, depth, cur = [], 0, ""
    for ch in selector:
        depth += ch == "("
        depth -= ch == ")"
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    for p in (x.strip() for x in parts):
        if m := re.fullmatch(r"(\S+)\s+(in|notin)\s+\((.*)\)", p):
            vals = {v.strip() for v in m.group(3).split(",")}
            has = m.group(1) in labels and labels[m.group(1)] in vals
            if (m.group(2) == "in") != has:
                return False
        elif m := re.fullmatch(r"([^!=\s]+)\s*(!=|==|=)\s*(\S*)", p):
            eq = labels.get(m.group(1)) == m.group(3)
            if (m.group(2) == "!=") == eq:
                return False
        elif p.startswith("!"):
            if p[1:].strip() in labels:
                return False
        elif p not in labels:
            return False
    return True


# ----------------------------------------------------------------------------- the handler


@attrs.define(kw_only=True)
class StatefulKube(kmock.KubernetesEmulator):
    identities: dict[str, Identity] = attrs.field(factory=dict)
    faults: list[Fault] = attrs.field(factory=list)
    audit: list[tuple[str, str, str | None, str | None, str | None]] = attrs.field(factory=list)
    """(verb, plural, namespace, name, content type) of every Kubernetes request."""
    _rv: int = attrs.field(default=1000)

    def next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    @staticmethod
    def _header(request: Any, name: str) -> str | None:
        for k, v in request.headers.items():
            if k.lower() == name.lower():
                return v
        return None

    @staticmethod
    def _verb(request: Any) -> str:
        m = str(request.method).upper().split(".")[-1]
        if m == "GET":
            if request.params.get("watch") == "true":
                return "watch"
            return "get" if request.name else "list"
        return {"PATCH": "patch", "PUT": "update", "POST": "create", "DELETE": "delete"}.get(m, m.lower())

    def _key(self, request: Any) -> Any:
        return (request.resource, request.namespace, request.name)

    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        res = request.resource
        if res is None or not res.plural:
            return await super()._handle(request)
        verb = self._verb(request)
        ctype = (self._header(request, "Content-Type") or "").split(";")[0].strip() or None
        self.audit.append((verb, res.plural, request.namespace, request.name, ctype if verb == "patch" else None))
        group = res.group or ""
        if self.identities:
            auth = self._header(request, "Authorization") or ""
            ident = self.identities.get(auth.removeprefix("Bearer ").strip())
            if ident is None:
                raise KubernetesError(401, "Unauthorized", "Unauthorized")
            if not ident.allows(verb, group, res.plural):
                qual = f"{res.plural}.{group}" if group else res.plural
                obj = f'{qual} "{request.name}"' if request.name else qual
                raise KubernetesError(
                    403, "Forbidden",
                    f'{obj} is forbidden: User "{ident.user}" cannot {verb} resource "{res.plural}" in API '
                    f'group "{group}" in the namespace "{request.namespace}"')
        for f in self.faults:
            if f.hits < f.times and f.verb == verb and f.plural == res.plural and f.name in (None, request.name):
                f.hits += 1
                if f.mutate is not None:
                    stored = self.objects[self._key(request)]
                    new = copy.deepcopy(stored.raw)
                    f.mutate(new)
                    new["metadata"]["resourceVersion"] = self.next_rv()
                    stored.history.append(new)
                    break
                err = KubernetesError(f.status or 500, "Injected", f.message)
                if f.retry_after_s is not None:
                    return aiohttp.web.json_response(
                        {"kind": "Status", "code": err.status, "message": f.message},
                        status=err.status, headers={"Retry-After": str(int(f.retry_after_s))})
                raise err
        if verb == "get":
            key = self._key(request)
            if key not in self.objects or self.objects[key].deleted:
                qual = f"{res.plural}.{group}" if group else res.plural
                raise KubernetesError(404, "NotFound", f'{qual} "{request.name}" not found')
            return aiohttp.web.json_response(self.objects[key].raw)
        if verb == "list":
            sel = request.params.get("labelSelector", "")
            items = [o.raw for (r, ns, _), o in self.objects.items()
                     if r == res and (request.namespace is None or ns == request.namespace) and not o.deleted
                     and selector_matches(sel, (o.raw.get("metadata") or {}).get("labels") or {})]
            return aiohttp.web.json_response(
                {"apiVersion": res.group and f"{res.group}/{res.version}" or res.version,
                 "kind": "List", "metadata": {"resourceVersion": str(self._rv)}, "items": items})
        if verb == "patch":
            return self._patch(request, group)
        return await super()._handle(request)

    def _patch(self, request: Any, group: str) -> aiohttp.web.StreamResponse:
        res = request.resource
        key = self._key(request)
        qual = f"{res.plural}.{group}" if group else res.plural
        if key not in self.objects or self.objects[key].deleted:
            raise KubernetesError(404, "NotFound", f'{qual} "{request.name}" not found')
        ctype = (self._header(request, "Content-Type") or "").split(";")[0].strip()
        try:
            patch = json.loads(request.body or b"null")
        except ValueError:
            raise KubernetesError(400, "BadRequest", "the patch is not JSON") from None
        if not isinstance(patch, dict):
            raise KubernetesError(400, "BadRequest", "this mock accepts object patches only")
        stored = self.objects[key]
        current = copy.deepcopy(stored.raw)
        want_rv = (patch.get("metadata") or {}).get("resourceVersion")
        if want_rv is not None and want_rv != current["metadata"].get("resourceVersion"):
            raise KubernetesError(
                409, "Conflict", f'Operation cannot be fulfilled on {qual} "{request.name}": the object has been '
                "modified; please apply your changes to the latest version and try again")
        if ctype == "application/strategic-merge-patch+json":
            if group not in BUILTIN_GROUPS:
                raise KubernetesError(
                    415, "UnsupportedMediaType", "the body of the request was in an unknown format - accepted "
                    "media types include: application/json-patch+json, application/merge-patch+json, "
                    "application/apply-patch+yaml")
            strategic_merge(current, patch)
            new = current
        elif ctype == "application/merge-patch+json":
            new = json_merge(current, patch)
        else:
            raise KubernetesError(415, "UnsupportedMediaType", f"this mock does not accept {ctype!r} patches")
        _validate(res.plural, new)
        new.setdefault("metadata", {})["resourceVersion"] = self.next_rv()
        if new.get("spec") != stored.raw.get("spec"):
            new["metadata"]["generation"] = int(stored.raw["metadata"].get("generation", 1)) + 1
        stored.history.append(new)
        return aiohttp.web.json_response(new)


# ----------------------------------------------------------------------------- the server thread


@dataclass
class KubeServer:
    """Run :class:`StatefulKube` on 127.0.0.1 in a background thread (a context manager)."""

    identities: dict[str, Identity] = field(default_factory=dict)
    handler: StatefulKube | None = None
    url: str = ""
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _server: Any = None

    def __enter__(self) -> "KubeServer":
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kube-mock", daemon=True)
        self._thread.start()
        try:
            self._run(self._start())
        except BaseException:
            self._stop_loop()
            raise
        return self

    def __exit__(self, *exc: Any) -> None:
        try:
            self._run(self._stop())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        assert self._loop is not None and self._thread is not None
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self, coro: Any, timeout: float = 30) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self) -> None:
        self.handler = StatefulKube(identities=self.identities)
        await self.handler.__aenter__()
        self._server = kmock.Server(self.handler)
        await self._server.__aenter__()
        self.url = str(self._server.url).rstrip("/")

    async def _stop(self) -> None:
        await self._server.__aexit__(None, None, None)
        await self.handler.__aexit__(None, None, None)

    def call(self, fn: Callable[[], Any]) -> Any:
        """Run ``fn`` on the server's loop (safe against concurrent requests)."""

        async def wrap() -> Any:
            return fn()

        return self._run(wrap())

    # -------------------------------------------------------------- objects

    def put(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Store an object (a manifest dict), stamping resourceVersion, uid and generation."""
        obj = copy.deepcopy(dict(obj))
        meta = obj.setdefault("metadata", {})
        meta.setdefault("namespace", "default")
        meta.setdefault("uid", f"uid-{meta['name']}")
        meta.setdefault("generation", 1)

        def store() -> dict[str, Any]:
            assert self.handler is not None
            meta["resourceVersion"] = self.handler.next_rv()
            self.handler.objects[RESOURCES[obj["kind"]], meta["namespace"], meta["name"]] = obj
            return obj

        return self.call(store)

    def put_all(self, objs: Iterable[Mapping[str, Any]]) -> None:
        for o in objs:
            self.put(o)

    def get(self, kind: str, name: str, namespace: str = "default") -> dict[str, Any]:
        def read() -> dict[str, Any]:
            assert self.handler is not None
            return copy.deepcopy(self.handler.objects[RESOURCES[kind], namespace, name].raw)

        return self.call(read)

    def history(self, kind: str, name: str, namespace: str = "default") -> list[dict[str, Any]]:
        """Every stored version of an object, oldest first."""

        def read() -> list[dict[str, Any]]:
            assert self.handler is not None
            return [copy.deepcopy(v.raw) for v in self.handler.objects[RESOURCES[kind], namespace, name].history
                    if v is not None]

        return self.call(read)

    def versions(self, kind: str, name: str, namespace: str = "default") -> int:
        return len(self.history(kind, name, namespace))

    def add_fault(self, fault: Fault) -> Fault:
        def add() -> Fault:
            assert self.handler is not None
            self.handler.faults.append(fault)
            return fault

        return self.call(add)

    def audit(self) -> list[tuple[str, str, str | None, str | None, str | None]]:
        return self.call(lambda: list(self.handler.audit))

    def kubeconfig(self, path: Path, token: str = "", namespace: str = "default") -> Path:
        """Write a kubeconfig for this server (token auth) and return its path."""
        user: dict[str, Any] = {"token": token} if token else {}
        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "mock",
            "clusters": [{"name": "mock", "cluster": {"server": self.url}}],
            "users": [{"name": "adapter", "user": user}],
            "contexts": [{"name": "mock", "context": {"cluster": "mock", "user": "adapter",
                                                      "namespace": namespace}}],
        }))
        return path
