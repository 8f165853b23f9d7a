"""The pipeline router: an asyncio HTTP front door that sends each request through the stages in order,
to the replica with the fewest outstanding requests, and drops a request once its age reaches the drop
limit (IPA's ``drop_limit``). It records every request's end-to-end latency and the arrivals per second.

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
from .v2 import DATATYPES, encode

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


@dataclass
class Done:
    """One finished request: arrival (seconds since the router started), latency, and how it ended."""

    arrival_s: float
    latency_s: float
    status: str  # served | dropped | failed
    stage: str | None = None
    finished_s: float = 0.0


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
                           host: str = "127.0.0.1") -> Endpoint:
        """Fetch the model's metadata, build its payload, then let it take traffic."""
        ep = Endpoint(key, host, port, model, Pool(host, port))
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
            return json_response(200, {"model_name": "pipeline", "outputs": [],
                                       "parameters": {"latency_s": done.latency_s}})
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
        status, where = "served", None
        try:
            for stage in self.stages:
                remaining = self.drop_limit_s - (self._now() - arrival)
                if remaining <= 0:
                    status, where = "dropped", stage
                    break
                status = await self._call(stage, remaining)
                if status != "served":
                    where = stage
                    break
        finally:
            self.outstanding -= 1
        now = self._now()
        done = Done(arrival, now - arrival, status, where, now)
        self.metrics.finished.labels(status).inc()
        if status == "served":
            self.metrics.duration.observe(done.latency_s)
        with self._lock:
            self._done.append(done)
        return done

    async def _call(self, stage: str, remaining_s: float) -> str:
        eps = self.endpoints[stage]
        if not eps:
            return "failed"
        ep = min(eps, key=lambda e: e.outstanding)
        ep.outstanding += 1
        try:
            headers = {**ep.headers, DEADLINE: repr(time.time() + remaining_s)}
            resp = await asyncio.wait_for(ep.pool.request("POST", f"/v2/models/{ep.model}/infer", ep.body,
                                                          headers), min(remaining_s + GRACE_S, self.stage_timeout_s))
        except asyncio.TimeoutError:
            return "dropped"
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            return "failed"
        finally:
            ep.outstanding -= 1
        if resp.status == 503:
            return "dropped"
        return "served" if resp.status == 200 else "failed"

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
