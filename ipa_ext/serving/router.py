"""The pipeline router: an asyncio HTTP front door that sends each request through the stages in order,
to the replica with the fewest outstanding requests, and drops a request once its age reaches the drop
limit (IPA's ``drop_limit``). It records every request's end-to-end latency and the arrivals per second.

A stage served by several replica groups has a :class:`~ipa_ext.serving.routes.Route`: a mix sends each
request to one group by the shares (weighted round-robin, then the fewest outstanding requests within the
group); an ensemble sends it to every group and answers when all answered, with their majority vote. The
router counts the requests each variant served per stage.

``GET /metrics`` exports ``input_requests`` (a summary observed once per arrival, so
``input_requests_count`` is the arrivals counter IPA's router exports and the kubernetes backend's default
Prometheus query reads), ``pipeline_requests_total{status}`` and ``pipeline_request_duration_seconds``.

Each stage gets a fixed input of its model's shape (binary tensor data, built once from the model's V2
metadata): the stages are chained in time, not in data.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from prometheus_client import CollectorRegistry, Counter, Histogram, Summary, generate_latest

from .http import Pool, Request, Response, json_response, serve_connection
from .routes import ENSEMBLE, RoundRobin, Route, Vote, majority
from .v2 import DATATYPES, ProtocolError, decode_outputs, encode, split_body

FRONT_PATH = "/v2/models/pipeline/infer"
DEADLINE = "ipa-ext-deadline"
"""Header the replica servers read: wall-clock seconds after which a request is dropped, not run."""
GRACE_S = 1.0
"""How long past the deadline the router waits for a server's answer (its 503, or a batch that started in time)."""


@dataclass
class Endpoint:
    """One replica (or external V2 server) of a stage."""

    key: str
    host: str
    port: int
    model: str
    pool: Pool
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    outstanding: int = 0
    group: str = ""
    """The replica group (a mix's part or an ensemble's member) it belongs to; routes name groups."""
    variant: str = ""
    """The variant it serves now, under which its answers are counted."""


@dataclass
class Done:
    """One finished request: arrival (seconds since the router started), latency, and how it ended."""

    arrival_s: float
    latency_s: float
    status: str  # served | dropped | failed
    stage: str | None = None
    finished_s: float = 0.0
    votes: dict[str, Vote] = field(default_factory=dict)
    """The ensemble stages' majority votes."""


def payload(meta: dict[str, Any], input_size: int | None) -> tuple[bytes, dict[str, str]]:
    """A one-row binary infer request for a model, from its V2 metadata (free image dims: ``input_size``)."""
    rng = np.random.default_rng(0)
    tensors = []
    for spec in meta.get("inputs", []):
        dims = [d for d in spec["shape"]]
        shape = [1] + [d if d > 0 else (input_size or 1) for d in dims[1:]]
        dtype = DATATYPES.get(spec["datatype"], np.float32)
        array = rng.standard_normal(shape).astype(dtype) if np.issubdtype(dtype, np.floating) else \
            rng.integers(0, 10, shape).astype(dtype)
        tensors.append((spec["name"], array))
    return encode({"parameters": {"binary_data_output": True}}, tensors, "inputs", binary=True)


class RouterMetrics:
    """The router's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.arrivals = Summary("input_requests", "Requests that reached the pipeline's front door (observed "
                                "on arrival: items in the request)", registry=self.registry)
        self.finished = Counter("pipeline_requests", "Pipeline requests finished, by how they ended",
                                ["status"], registry=self.registry)
        self.duration = Histogram("pipeline_request_duration_seconds", "End-to-end latency of served requests",
                                  registry=self.registry,
                                  buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))

    def text(self) -> bytes:
        return generate_latest(self.registry)


class Router:
    """Routes pipeline requests; thread-safe readers of its records (the loop runs in another thread)."""

    def __init__(self, stages: Sequence[str], drop_limit_s: float, stage_timeout_s: float = 600.0) -> None:
        self.stages = list(stages)
        self.drop_limit_s = drop_limit_s
        self.stage_timeout_s = stage_timeout_s
        self.endpoints: dict[str, list[Endpoint]] = {s: [] for s in stages}
        self.routes: dict[str, Route | None] = {s: None for s in stages}
        """None: every endpoint of the stage, least outstanding first (one group, or an external server)."""
        self._turns: dict[str, RoundRobin] = {s: RoundRobin() for s in stages}
        self._served: dict[str, dict[str, int]] = {s: {} for s in stages}
        self._votes: dict[str, dict[str, int]] = {s: {} for s in stages}
        self.t0 = time.monotonic()
        self._lock = threading.Lock()
        self._arrivals: list[int] = []
        self._arrival_times: list[float] = []
        self._done: list[Done] = []
        self.outstanding = 0
        self.server: asyncio.AbstractServer | None = None
        self.port = 0
        self.metrics = RouterMetrics()
        self._connections: dict[Any, asyncio.StreamWriter] = {}

    # -------------------------------------------------------------- endpoints (on the loop)

    async def add_endpoint(self, stage: str, key: str, port: int, model: str, input_size: int | None,
                           host: str = "127.0.0.1", group: str = "", variant: str = "") -> Endpoint:
        """Fetch the model's metadata, build its payload, then let it take traffic (a grouped stage's endpoint
        once its route names its group)."""
        ep = Endpoint(key, host, port, model, Pool(host, port), group=group, variant=variant)
        resp = await ep.pool.request("GET", f"/v2/models/{model}")
        if resp.status != 200:
            raise ConnectionError(f"{host}:{port} has no model {model!r} (status {resp.status})")
        ep.body, ep.headers = payload(resp.json(), input_size)
        self.endpoints[stage] = [*self.endpoints[stage], ep]
        return ep

    async def remove_endpoint(self, stage: str, key: str, drain_timeout_s: float = 60.0) -> None:
        """Stop sending to it, then wait until its outstanding requests are answered."""
        gone = [e for e in self.endpoints[stage] if e.key == key]
        self.endpoints[stage] = [e for e in self.endpoints[stage] if e.key != key]
        deadline = time.monotonic() + drain_timeout_s
        while any(e.outstanding for e in gone) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for e in gone:
            e.pool.close()

    async def set_route(self, stage: str, route: Route | None) -> None:
        """From the next request on, spread the stage's requests by ``route``."""
        self.routes[stage] = route
        self._turns[stage] = RoundRobin()

    async def relabel(self, stage: str, group: str, variant: str) -> None:
        """The group's replicas serve ``variant`` now (after an in-place switch)."""
        for e in self.endpoints[stage]:
            if e.group == group:
                e.variant = variant

    # -------------------------------------------------------------- serving

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._connections[task] = writer
        try:
            await serve_connection(reader, writer, self.handle)
        finally:
            self._connections.pop(task, None)

    async def start(self, port: int = 0) -> int:
        self.server = await asyncio.start_server(self._connection, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def handle(self, req: Request) -> Response:
        if req.path == "/metrics" and req.method == "GET":
            return Response(200, self.metrics.text(), {"content-type": "text/plain; version=0.0.4"})
        if req.path != FRONT_PATH or req.method != "POST":
            return json_response(404, {"error": f"send pipeline requests to POST {FRONT_PATH}"})
        done = await self.route()
        if done.status == "served":
            params: dict[str, Any] = {"latency_s": done.latency_s}
            if done.votes:
                params["ensemble"] = {s: v.as_dict() for s, v in done.votes.items()}
            return json_response(200, {"model_name": "pipeline", "outputs": [], "parameters": params})
        return json_response(503, {"error": f"{'drop-limit' if done.status == 'dropped' else 'failed'} "
                                            f"at stage {done.stage}"})

    def _now(self) -> float:
        return time.monotonic() - self.t0

    def _arrive(self, t: float) -> None:
        second = int(t)
        with self._lock:
            while len(self._arrivals) <= second:
                self._arrivals.append(0)
            self._arrivals[second] += 1
            self._arrival_times.append(t)
        self.metrics.arrivals.observe(1)

    async def route(self) -> Done:
        """One request through every stage."""
        arrival = self._now()
        self._arrive(arrival)
        self.outstanding += 1
        status, where, votes = "served", None, {}
        try:
            for stage in self.stages:
                remaining = self.drop_limit_s - (self._now() - arrival)
                if remaining <= 0:
                    status, where = "dropped", stage
                    break
                status, vote = await self._call(stage, remaining)
                if vote is not None:
                    votes[stage] = vote
                if status != "served":
                    where = stage
                    break
        finally:
            self.outstanding -= 1
        now = self._now()
        done = Done(arrival, now - arrival, status, where, now, votes)
        self.metrics.finished.labels(status).inc()
        if status == "served":
            self.metrics.duration.observe(done.latency_s)
        with self._lock:
            self._done.append(done)
        return done

    def _least(self, stage: str, group: str | None) -> Endpoint | None:
        eps = [e for e in self.endpoints[stage] if group is None or e.group == group]
        return min(eps, key=lambda e: e.outstanding) if eps else None

    async def _call(self, stage: str, remaining_s: float) -> tuple[str, Vote | None]:
        """One stage of one request: its status, and an ensemble stage's vote."""
        route = self.routes[stage]
        if route is not None and route.kind == ENSEMBLE:
            return await self._ensemble(stage, route, remaining_s)
        group = None
        if route is not None:
            group = self._turns[stage].pick(route, {e.group for e in self.endpoints[stage]})
            if group is None:
                return "failed", None
        ep = self._least(stage, group)
        if ep is None:
            return "failed", None
        return (await self._send(stage, ep, remaining_s, False))[0], None

    async def _ensemble(self, stage: str, route: Route, remaining_s: float) -> tuple[str, Vote | None]:
        """Every member group answers (at once); the slowest sets the stage's latency; then the vote."""
        eps = [ep for ep in (self._least(stage, g) for g in route.groups) if ep is not None]
        if not eps:
            return "failed", None
        answers = await asyncio.gather(*(self._send(stage, ep, remaining_s, True) for ep in eps))
        statuses = {status for status, _ in answers}
        if statuses != {"served"}:
            return ("failed" if "failed" in statuses else "dropped"), None
        vote = majority([outputs or {} for _, outputs in answers])
        key = "first_member" if vote.rule == "first-member" else "outvoted" if vote.outvoted else "voted"
        with self._lock:
            self._votes[stage][key] = self._votes[stage].get(key, 0) + 1
        return "served", vote

    async def _send(self, stage: str, ep: Endpoint, remaining_s: float,
                    outputs: bool) -> tuple[str, dict[str, np.ndarray] | None]:
        """One infer request to one replica: how it ended, and its output tensors when asked for."""
        ep.outstanding += 1
        try:
            headers = {**ep.headers, DEADLINE: repr(time.time() + remaining_s)}
            resp = await asyncio.wait_for(ep.pool.request("POST", f"/v2/models/{ep.model}/infer", ep.body,
                                                          headers), min(remaining_s + GRACE_S, self.stage_timeout_s))
        except asyncio.TimeoutError:
            return "dropped", None
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            return "failed", None
        finally:
            ep.outstanding -= 1
        if resp.status == 503:
            return "dropped", None
        if resp.status != 200:
            return "failed", None
        label = ep.variant or ep.group or ep.model
        with self._lock:
            self._served[stage][label] = self._served[stage].get(label, 0) + 1
        if not outputs:
            return "served", None
        try:
            return "served", decode_outputs(*split_body(resp.body, resp.headers))
        except (ProtocolError, ValueError):
            return "served", {}

    # -------------------------------------------------------------- records (any thread)

    def arrivals_per_second(self, seconds: float) -> list[float]:
        """Arrivals in each of the last ``seconds`` whole seconds, oldest first."""
        now = int(self._now())
        with self._lock:
            counts = list(self._arrivals[:now]) + [0] * max(0, now - len(self._arrivals))
        n = max(0, int(math.ceil(seconds)))
        return [float(c) for c in counts[max(0, now - n):now]]

    def arrival_counts(self) -> list[int]:
        """Arrivals in every whole second since the router's clock started."""
        with self._lock:
            return list(self._arrivals)

    def take(self) -> list[Done]:
        """The requests finished since the last call."""
        with self._lock:
            done, self._done = self._done, []
        return done

    def take_counts(self) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
        """Per stage, the requests each variant served, and the ensemble stages' votes (``voted``: the first
        member's class won; ``outvoted``: another class won; ``first_member``: outputs not comparable),
        since the last call."""
        with self._lock:
            served = {s: dict(c) for s, c in self._served.items() if c}
            votes = {s: dict(c) for s, c in self._votes.items() if c}
            for c in (*self._served.values(), *self._votes.values()):
                c.clear()
        return served, votes

    def arrivals_between(self, a_s: float, b_s: float) -> int:
        """Requests that arrived in ``[a_s, b_s)`` (seconds since the router started)."""
        with self._lock:
            times = self._arrival_times
            return bisect.bisect_left(times, b_s) - bisect.bisect_left(times, a_s)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        open_ = dict(self._connections)  # idle keep-alive clients (a Prometheus scraping /metrics)
        for writer in open_.values():
            writer.close()  # the handler reads end-of-file and returns
        if open_:
            await asyncio.wait(list(open_), timeout=2.0)
        for eps in self.endpoints.values():
            for e in eps:
                e.pool.close()
