"""One replica group: the replicas of one variant in a stage (the whole stage, or one part of a mix or one
member of an ensemble), started pinned, registered with the router once ready, changed at run time (variant,
batch, cores, count) and restarted when one dies. Every change is timed for the adaptation log."""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .loop import LoopThread
from .process import CoreAllocator, ReplicaProcess, ReplicaSpec, ServingError
from .router import Router


@dataclass(frozen=True)
class VariantModel:
    """The ONNX file behind a variant, the image size it is fed at, and its input layout's signature."""

    path: Path
    input_size: int | None
    signature: str


class ReplicaGroup:
    """The replica processes of one group of a stage (see the module docstring); ``key`` names it in routes."""

    def __init__(self, name: str, models: Mapping[str, VariantModel], allocator: CoreAllocator, router: Router,
                 loop: LoopThread, max_batch_time_s: float, key: str = "") -> None:
        self.name = name
        self.key = key
        self.models = dict(models)
        self.allocator = allocator
        self.router = router
        self.loop = loop
        self.max_batch_time_s = max_batch_time_s
        self.replicas: list[ReplicaProcess] = []
        self.variant: str | None = None
        self.cpu = 0
        self.batch = 1
        self.restarts = 0
        self.oversubscribed = False

    # ------------------------------------------------------------------ pieces

    def _spec(self, variant: str, cores: tuple[int, ...], batch: int) -> ReplicaSpec:
        m = self.models[variant]
        return ReplicaSpec(self.name, m.path, m.input_size, cores, batch,
                           self.max_batch_time_s if batch > 1 else 0.0)

    def _start_one(self, variant: str, cpu: int, batch: int) -> ReplicaProcess:
        cores, shared = self.allocator.allocate(cpu)
        self.oversubscribed |= shared
        try:
            rep = ReplicaProcess(self._spec(variant, cores, batch))
            self.loop.call(self.router.add_endpoint(self.name, str(rep.pid), rep.port, self.name,
                                                    self.models[variant].input_size, group=self.key,
                                                    variant=variant))
        except BaseException:
            self.allocator.release(cores)
            if "rep" in locals():
                rep.kill()
            raise
        return rep

    def _add(self, n: int, variant: str, cpu: int, batch: int) -> None:
        for _ in range(n):
            self.replicas.append(self._start_one(variant, cpu, batch))

    def _remove(self, reps: list[ReplicaProcess]) -> None:
        """Out of the router first, drained, then stopped."""
        for rep in reps:
            self.replicas.remove(rep)
        for rep in reps:
            self.loop.call(self.router.remove_endpoint(self.name, str(rep.pid)))
        for rep in reps:
            rep.stop()
            self.allocator.release(rep.spec.cores)

    def _plan(self, rep: ReplicaProcess, variant: str, cpu: int, batch: int) -> dict[str, Any]:
        """The control request that moves ``rep`` in place (new cores allocated here, in this thread)."""
        changes: dict[str, Any] = {}
        if cpu != len(rep.spec.cores):
            self.allocator.release(rep.spec.cores)
            cores, shared = self.allocator.allocate(cpu)
            self.oversubscribed |= shared
            changes.update(cores=list(cores), threads=cpu)
        m = self.models[variant]
        if m.path != rep.spec.model:
            changes.update(model=str(m.path), input_size=m.input_size)
        wait = self.max_batch_time_s if batch > 1 else 0.0
        if batch != rep.spec.max_batch_size or wait != rep.spec.max_batch_time_s:
            changes.update(max_batch_size=batch, max_batch_time_s=wait)
        return changes

    # ------------------------------------------------------------------ the interface

    def start(self, variant: str, cpu: int, batch: int, replicas: int) -> dict[str, Any]:
        t0 = time.perf_counter()
        self._add(replicas, variant, cpu, batch)
        self.variant, self.cpu, self.batch = variant, cpu, batch
        return {"start_s": time.perf_counter() - t0, "replicas": replicas}

    def apply(self, variant: str, cpu: int, batch: int, replicas: int) -> dict[str, Any]:
        """Move to the new configuration without failing a request; the seconds each part took."""
        report: dict[str, Any] = {}
        if replicas < len(self.replicas):
            t = time.perf_counter()
            self._remove(self.replicas[replicas:])
            report["remove_s"] = time.perf_counter() - t
        switch = variant != self.variant
        if switch and self.models[variant].signature != self.models[self.variant or variant].signature:
            t = time.perf_counter()  # another input layout: new processes first, then the old ones go
            old = list(self.replicas)
            self._add(len(old), variant, cpu, batch)
            self._remove(old)
            report["replace_s"] = time.perf_counter() - t
        elif switch or cpu != self.cpu or batch != self.batch:
            t = time.perf_counter()
            plans = [(r, self._plan(r, variant, cpu, batch)) for r in self.replicas]
            with ThreadPoolExecutor(max_workers=max(1, len(plans))) as pool:  # the replicas load at once
                list(pool.map(lambda rp: rp[0].control(rp[1]) if rp[1] else None, plans))
            if switch:
                self.loop.call(self.router.relabel(self.name, self.key, variant))
            key = "variant_s" if switch else ("cpu_s" if cpu != self.cpu else "batch_s")
            report[key] = time.perf_counter() - t
        if replicas > len(self.replicas):
            t = time.perf_counter()
            self._add(replicas - len(self.replicas), variant, cpu, batch)
            report["add_s"] = time.perf_counter() - t
        self.variant, self.cpu, self.batch = variant, cpu, batch
        report["total_s"] = sum(v for k, v in report.items() if k.endswith("_s"))
        return report

    def retire(self) -> dict[str, Any]:
        """Take the whole group out (it is out of the stage's route already): drained, then stopped."""
        t = time.perf_counter()
        self._remove(list(self.replicas))
        return {"remove_s": time.perf_counter() - t}

    def check(self) -> int:
        """Replace replicas that died; how many were replaced."""
        dead = [r for r in self.replicas if not r.alive()]
        for rep in dead:
            self.replicas.remove(rep)
            self.loop.call(self.router.remove_endpoint(self.name, str(rep.pid), drain_timeout_s=0.0))
            self.allocator.release(rep.spec.cores)
            rep.kill()
        if dead and self.variant is not None:
            try:
                self._add(len(dead), self.variant, self.cpu, self.batch)
            except ServingError:
                pass  # tried again at the next check
        self.restarts += len(dead)
        return len(dead)

    def pids(self) -> list[int]:
        return [r.pid for r in self.replicas]

    def close(self) -> None:
        for rep in list(self.replicas):
            try:
                self.loop.call(self.router.remove_endpoint(self.name, str(rep.pid), drain_timeout_s=2.0))
            except Exception:
                pass
            rep.stop(timeout_s=5.0)
            self.allocator.release(rep.spec.cores)
        self.replicas.clear()
