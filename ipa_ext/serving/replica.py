"""One replica server (``python -m ipa_ext.serving.replica``): a pinned onnxruntime model behind the V2 REST
protocol on 127.0.0.1, with adaptive batching, Prometheus metrics and a control endpoint for run-time changes.

It prints one JSON line on stdout: ``{"event": "ready", "port": ...}`` once the model has run a warm-up
inference, or ``{"event": "error", "stage": ..., "message": ...}``. SIGTERM drains it: queued and running
requests finish, then it exits.
"""

from __future__ import annotations

import argparse
import asyncio
import ctypes
import json
import os
import re
import signal
import sys
import time
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from .batching import AdaptiveBatcher, BatchStats, Expired
from .http import Request, Response, json_response, serve_connection
from .model import OrtRunner, pin_all_threads
from .v2 import ProtocolError, decode_inputs, encode, split_body, wants_binary_output

MODEL_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/[^/]+)?(/ready|/infer)?$")
CONTROL_PATH = "/ipa-ext/reconfigure"
DEADLINE = "ipa-ext-deadline"
"""Request header: wall-clock seconds after which the request is dropped instead of run (the router's drop limit)."""
LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)


class Metrics:
    """The server's Prometheus metrics (MLServer's names where it has one)."""

    def __init__(self, name: str, batcher: AdaptiveBatcher) -> None:
        self.registry = r = CollectorRegistry()
        self.duration = Histogram("model_infer_request_duration_seconds", "Time in the server per infer request",
                                  ["model"], registry=r, buckets=LATENCY_BUCKETS).labels(name)
        self.success = Counter("model_infer_request_success", "Successful infer requests", ["model"],
                               registry=r).labels(name)
        self.failure = Counter("model_infer_request_failure", "Failed infer requests", ["model"],
                               registry=r).labels(name)
        self.dropped = Counter("dropped_requests", "Requests dropped: their deadline passed in the queue",
                               ["model"], registry=r).labels(name)
        self.batch_size = Histogram("batch_size", "Rows per executed batch", ["model"], registry=r,
                                    buckets=(1, 2, 4, 8, 16, 32, 64, 128)).labels(name)
        queue = Gauge("batch_request_queue", "Requests waiting for a batch", ["model"], registry=r).labels(name)
        queue.set_function(lambda: batcher.queue_length)

    def on_batch(self, stats: BatchStats) -> None:
        self.batch_size.observe(stats.rows)


class Replica:
    """The server's state: the batcher over the current model, readiness and the request handler."""

    def __init__(self, name: str, runner: OrtRunner, cores: list[int], max_batch_size: int,
                 max_batch_time_s: float) -> None:
        self.name, self.runner, self.cores = name, runner, cores
        self.batcher = AdaptiveBatcher(runner, max_batch_size, max_batch_time_s)
        self.metrics = Metrics(name, self.batcher)
        self.batcher.on_batch = self.metrics.on_batch
        self.ready = True
        self.active = 0

    async def handle(self, req: Request) -> Response:
        if req.path in ("/v2/health/live", "/v2/health/ready"):
            key = req.path.rsplit("/", 1)[1]
            ok = True if key == "live" else self.ready
            return json_response(200 if ok else 400, {key: ok})
        if req.path == "/v2":
            return json_response(200, {"name": "ipa-ext", "version": "1", "extensions": ["binary_tensor_data"]})
        if req.path == "/metrics":
            return Response(200, generate_latest(self.metrics.registry), {"content-type": "text/plain"})
        if req.path == CONTROL_PATH and req.method == "POST":
            return await self.reconfigure(req)
        m = MODEL_PATH.match(req.path)
        if m is None or m.group(1) != self.name:
            return json_response(404, {"error": f"unknown model or path {req.path!r} (model: {self.name!r})"})
        if m.group(2) == "/ready":
            return json_response(200 if self.ready else 400, {"name": self.name, "ready": self.ready})
        if m.group(2) is None:
            return json_response(200, self.runner.metadata(self.name))
        if req.method != "POST":
            return json_response(405, {"error": "infer needs POST"})
        return await self.infer(req)

    async def infer(self, req: Request) -> Response:
        start = time.perf_counter()
        self.active += 1
        try:
            head, binary = split_body(req.body, req.headers)
            feed = decode_inputs(head, binary)
            self.runner.check(feed)
            deadline = float(req.headers[DEADLINE]) if DEADLINE in req.headers else None
            outputs = await self.batcher.submit(feed, deadline)
        except Expired as exc:
            self.metrics.dropped.inc()
            return json_response(503, {"error": str(exc)})
        except ProtocolError as exc:
            self.metrics.failure.inc()
            return json_response(400, {"error": str(exc)})
        except Exception as exc:  # onnxruntime's own exception types
            self.metrics.failure.inc()
            return json_response(500, {"error": str(exc).strip().splitlines()[0] if str(exc).strip() else
                                        type(exc).__name__})
        finally:
            self.active -= 1
        wanted = {o.get("name") for o in head.get("outputs") or [] if isinstance(o, dict)}
        outputs = [(n, a) for n, a in outputs if not wanted or n in wanted]
        reply: dict[str, Any] = {"model_name": self.name, "id": str(head.get("id", ""))}
        body, headers = encode(reply, outputs, "outputs", binary=wants_binary_output(head))
        self.metrics.success.inc()
        self.metrics.duration.observe(time.perf_counter() - start)
        return Response(200, body, headers)

    async def reconfigure(self, req: Request) -> Response:
        """Change batch limits in place; re-pin; load a new model (or thread count) first, then swap."""
        try:
            spec = json.loads(req.body or b"{}")
        except ValueError as exc:
            return json_response(400, {"error": f"bad JSON: {exc}"})
        timings: dict[str, float] = {}
        t0 = time.perf_counter()
        if "cores" in spec:
            self.cores = pin_all_threads(spec["cores"])
            timings["pin_s"] = time.perf_counter() - t0
        model = spec.get("model", self.runner.path)
        threads = int(spec.get("threads", self.runner.threads))
        if model != self.runner.path or threads != self.runner.threads:
            t1 = time.perf_counter()
            try:
                new = await asyncio.get_running_loop().run_in_executor(
                    None, OrtRunner, model, threads, spec.get("input_size", self.runner.input_size))
            except Exception as exc:
                return json_response(500, {"error": f"cannot load {model}: {str(exc).strip()[:300]}"})
            self.runner = new
            self.batcher.swap(new)
            timings["load_s"] = time.perf_counter() - t1
        if "max_batch_size" in spec or "max_batch_time_s" in spec:
            self.batcher.set_limits(int(spec.get("max_batch_size", self.batcher.max_batch_size)),
                                    float(spec.get("max_batch_time_s", self.batcher.max_batch_time_s)))
        timings["total_s"] = time.perf_counter() - t0
        return json_response(200, {"ok": True, "affinity": self.cores, "threads": self.runner.threads,
                                    "model": self.runner.path, "max_batch_size": self.batcher.max_batch_size,
                                    "max_batch_time_s": self.batcher.max_batch_time_s, **timings})

    async def drain(self, timeout_s: float = 30.0) -> None:
        self.ready = False
        deadline = time.monotonic() + timeout_s
        while self.active and time.monotonic() < deadline:
            await asyncio.sleep(0.01)


def _say(event: str, **fields: Any) -> None:
    sys.stdout.write(json.dumps({"event": event, **fields}) + "\n")
    sys.stdout.flush()


def _die_with_parent() -> None:
    """Ask Linux to send SIGTERM when the parent dies, so that no server outlives its supervisor."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


async def serve(args: argparse.Namespace) -> int:
    cores = [int(c) for c in args.cores.split(",")]
    try:
        affinity = pin_all_threads(cores)
    except OSError as exc:
        _say("error", stage="pin", message=f"cannot pin to CPUs {args.cores}: {exc.strerror or exc}")
        return 1
    try:
        runner = OrtRunner(args.model, args.threads or len(cores), args.input_size)
    except Exception as exc:
        _say("error", stage="load", message=str(exc).strip().splitlines()[0] if str(exc).strip() else repr(exc))
        return 1
    replica = Replica(args.name, runner, affinity, args.max_batch_size, args.max_batch_time)
    try:
        server = await asyncio.start_server(lambda r, w: serve_connection(r, w, replica.handle), "127.0.0.1",
                                            args.port, limit=64 * 1024)
    except OSError as exc:
        _say("error", stage="bind", message=f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror or exc}")
        return 1
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    _say("ready", port=server.sockets[0].getsockname()[1], pid=os.getpid(), affinity=affinity)
    if os.getppid() == 1:  # the parent died before prctl took effect
        stop.set()
    await stop.wait()
    server.close()
    await replica.drain()
    replica.batcher.close()
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m ipa_ext.serving.replica")
    p.add_argument("--name", required=True, help="the model name requests use (the stage's)")
    p.add_argument("--model", required=True, help="ONNX file")
    p.add_argument("--input-size", type=int, help="image height and width for free dimensions")
    p.add_argument("--cores", default=",".join(map(str, sorted(os.sched_getaffinity(0)))))
    p.add_argument("--threads", type=int, default=0, help="intra-op threads (default: one per core)")
    p.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free port)")
    p.add_argument("--max-batch-size", type=int, default=1)
    p.add_argument("--max-batch-time", type=float, default=0.0, help="seconds")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    _die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the supervisor decides
    return asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
