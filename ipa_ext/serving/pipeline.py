"""A whole pipeline served on this machine: the router and its load generator on a background event loop,
each stage's replica groups, a watchdog that restarts dead replicas, and per-interval accounting."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from ..energy.cputime import process_tree_cpu_s
from ..model import StageConfig
from .http import Pool
from .loadgen import LoadStats, replay
from .loop import LoopThread
from .process import CoreAllocator, ServingError
from .router import FRONT_PATH, Done, Router
from .stage import StageReplicas, VariantModel

FRONT_BODY = b'{"inputs":[{"name":"request","shape":[1],"datatype":"INT32","data":[0]}]}'


@dataclass(frozen=True)
class External:
    """A stage served by a V2 server this machine does not start (MLServer, Triton, KServe, or ours)."""

    host: str
    port: int
    model: str
    input_size: int | None = None


class ExternalError(ServingError):
    """An external V2 server (``local.stages``) that cannot be used; ``name`` is its stage."""

    def __init__(self, name: str, message: str) -> None:
        self.name = name
        super().__init__(message, "external")


EXTERNAL_TIMEOUT_S = 30.0
"""How long an external server may take to answer its model's metadata request."""


@dataclass
class Interval:
    """What the router saw between two calls of :meth:`LocalPipeline.interval`."""

    start_s: float
    end_s: float
    arrivals: int
    done: list[Done]
    queued: int
    busy_cpu_s: dict[str, float]
    restarts: int
    load: dict[str, Any] = field(default_factory=dict)
    served_by_variant: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per stage, the requests each variant answered (every member of an ensemble answers each request)."""
    votes: dict[str, dict[str, int]] = field(default_factory=dict)
    """Per ensemble stage, how its majority votes went (:meth:`Router.take_counts`)."""


class LocalPipeline:
    """Serves the stages in order; see the module docstring. Close it in a ``finally``."""

    def __init__(self, stages: Sequence[str], models: Mapping[str, Mapping[str, VariantModel]],
                 external: Mapping[str, External], *, drop_limit_s: float, max_batch_time_s: float,
                 usable_cores: Sequence[int], router_port: int = 0, driver_cores: Sequence[int] = ()) -> None:
        self.stage_names = list(stages)
        self.loop = LoopThread()
        self.router = Router(stages, drop_limit_s)
        self.allocator = CoreAllocator(usable_cores, driver_cores)
        self.external = dict(external)
        self.stages = {s: StageReplicas(s, models.get(s, {}), self.allocator, self.router, self.loop,
                                        max_batch_time_s) for s in stages if s not in external}
        self._lock = threading.RLock()
        self._cpu: dict[int, float] = {}
        self._last_s = 0.0
        self._restarts_seen = 0
        self.load = LoadStats()
        self._load_future: Any = None
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.loop.call(self.router.start(router_port))

    # ------------------------------------------------------------------ lifecycle

    def start(self, initial: Mapping[str, StageConfig | tuple[str, float, int, int]]) -> dict[str, Any]:
        """Start every stage's replicas (a stage configuration, a mix or an ensemble; or a tuple (variant, cpu,
        batch, replicas)) and register external servers."""
        report = {}
        for name, ext in self.external.items():
            self._add_external(name, ext)
        for name, st in self.stages.items():
            report[name] = st.start(_config(initial[name]))
        self._watchdog = threading.Thread(target=self._watch, name="ipa-ext-watchdog", daemon=True)
        self._watchdog.start()
        return report

    def _add_external(self, name: str, ext: External) -> None:
        url = f"http://{ext.host}:{ext.port}"
        try:
            self.loop.call(asyncio.wait_for(self.router.add_endpoint(name, "external", ext.port, ext.model,
                                                                     ext.input_size, ext.host), EXTERNAL_TIMEOUT_S))
        except (asyncio.TimeoutError, TimeoutError):
            raise ExternalError(name, f"the V2 server at {url} did not answer within {EXTERNAL_TIMEOUT_S:g} s") \
                from None
        except Exception as exc:  # refused, not V2, no such model, metadata without inputs
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or type(exc).__name__
            raise ExternalError(name, f"cannot use the V2 server at {url} (model {ext.model!r}): {why}") from None

    def start_load(self, counts: Sequence[int], *, spread: str, seed: int, duration_s: float | None,
                   timeout_s: float) -> None:
        """Replay ``counts`` (requests per second) against the front door; the clock restarts now."""
        self.router.t0 = time.monotonic()
        self._last_s = 0.0
        async def go() -> LoadStats:
            pool = Pool("127.0.0.1", self.router.port, limit=4096)

            async def send() -> bool:
                resp = await pool.request("POST", FRONT_PATH, FRONT_BODY, {"content-type": "application/json"})
                return resp.status == 200

            try:
                return await replay(counts, send, spread=spread, seed=seed, duration_s=duration_s,
                                    timeout_s=timeout_s, stats=self.load, t0=self.router.t0)
            finally:
                pool.close()

        self._load_future = self.loop.submit(go())

    def load_finished(self) -> bool:
        return self._load_future is not None and self._load_future.done()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            with self._lock:
                for st in self.stages.values():
                    st.check()

    def now_s(self) -> float:
        return time.monotonic() - self.router.t0

    # ------------------------------------------------------------------ changes and accounting

    def apply(self, name: str, config: StageConfig | tuple[str, float, int, int]) -> dict[str, Any]:
        """Move stage ``name`` to ``config`` (see :meth:`StageReplicas.apply`); the seconds it took."""
        if name in self.external:
            return {"external": True}
        with self._lock:
            return self.stages[name].apply(_config(config))

    def _busy_cpu_s(self) -> dict[str, float]:
        out = {}
        for name, st in self.stages.items():
            total = 0.0
            for pid in st.pids():
                try:
                    now = process_tree_cpu_s(pid)
                except (ProcessLookupError, OSError):
                    continue
                total += max(0.0, now - self._cpu.get(pid, 0.0))
                self._cpu[pid] = now
            out[name] = total
        return out

    def interval(self) -> Interval:
        """The requests finished, arrivals and servers' CPU seconds since the last call."""
        end = self.now_s()
        start, self._last_s = self._last_s, end
        restarts = sum(st.restarts for st in self.stages.values())
        new_restarts, self._restarts_seen = restarts - self._restarts_seen, restarts
        with self._lock:
            busy = self._busy_cpu_s()
        s = self.load
        done = self.router.take()
        served, votes = self.router.take_counts()
        return Interval(start, end, self.router.arrivals_between(start, end), done,
                        self.router.outstanding, busy, new_restarts,
                        {"sent": s.sent, "ok": s.ok, "rejected": s.rejected, "timeouts": s.timeouts,
                         "errors": s.errors}, served, votes)

    def server_pids(self) -> list[int]:
        return [pid for st in self.stages.values() for pid in st.pids()]

    def latencies(self) -> np.ndarray:
        return np.asarray(self.load.latencies_s, dtype=float)

    def close(self) -> None:
        """Stop the load, the servers and the router; a second call does nothing."""
        if self._stop.is_set():
            return
        self._stop.set()
        if self._watchdog is not None:
            self._watchdog.join(timeout=5)
        if self._load_future is not None and not self._load_future.done():
            self._load_future.cancel()
        with self._lock:
            for st in self.stages.values():
                st.close()
        try:
            self.loop.call(self.router.close(), timeout_s=5)
        except Exception:
            pass
        self.loop.close()


def _config(config: StageConfig | tuple[str, float, int, int]) -> StageConfig:
    return config if isinstance(config, StageConfig) else StageConfig(*config)
