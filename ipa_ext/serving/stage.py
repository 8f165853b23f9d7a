"""One pipeline stage on this machine: one replica group per part of a mix (or member of an ensemble; a plain
stage is one group), the stage's route in the router, and run-time changes between any two of them that fail
no request: new groups are ready before the route names them, and departed groups leave the route, then drain.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Mapping

from ..model import StageConfig
from ..problem.mix import stage_members, stage_parts
from .group import ReplicaGroup, VariantModel
from .loop import LoopThread
from .process import CoreAllocator
from .router import Router
from .routes import ENSEMBLE, MIX, Route

__all__ = ["Part", "StageReplicas", "VariantModel", "layout", "whole_cores"]


def whole_cores(cpu: float) -> int:
    """A replica's cores: its ``cpu`` rounded up, at least one."""
    return max(1, int(math.ceil(cpu)))


@dataclass(frozen=True)
class Part:
    """One replica group's configuration and the share of the stage's requests it gets (an ensemble's
    members get every request: 1)."""

    variant: str
    cores: int
    batch: int
    replicas: int
    share: float = 1.0


def layout(sc: StageConfig) -> tuple[str, tuple[Part, ...]]:
    """How a stage configuration is served: ``mix`` (a plain one is a mix of one part) or ``ensemble``."""
    if getattr(sc, "members", None):
        return ENSEMBLE, tuple(Part(m.variant, whole_cores(m.cpu), m.batch, m.replicas) for m in stage_members(sc))
    return MIX, tuple(Part(p.variant, whole_cores(p.cpu), p.batch, p.replicas, float(share))
                      for p, share in stage_parts(sc))


def _labels(parts: tuple[Part, ...]) -> list[str]:
    """Each part's name in reports: its variant, with ``#2``, ``#3`` for a variant's further parts."""
    seen: dict[str, int] = {}
    out = []
    for p in parts:
        seen[p.variant] = seen.get(p.variant, 0) + 1
        out.append(p.variant if seen[p.variant] == 1 else f"{p.variant}#{seen[p.variant]}")
    return out


class StageReplicas:
    """The replica groups of one stage (see the module docstring)."""

    def __init__(self, name: str, models: Mapping[str, VariantModel], allocator: CoreAllocator, router: Router,
                 loop: LoopThread, max_batch_time_s: float) -> None:
        self.name = name
        self.models = dict(models)
        self.allocator = allocator
        self.router = router
        self.loop = loop
        self.max_batch_time_s = max_batch_time_s
        self.groups: list[ReplicaGroup] = []
        self.kind = MIX
        self.shares: dict[str, float] = {}
        self._serial = 0
        self._gone_restarts = 0

    @property
    def restarts(self) -> int:
        return self._gone_restarts + sum(g.restarts for g in self.groups)

    def _group(self) -> ReplicaGroup:
        self._serial += 1
        return ReplicaGroup(self.name, self.models, self.allocator, self.router, self.loop, self.max_batch_time_s,
                            key=f"g{self._serial}")

    def _route(self, kind: str, pairs: list[tuple[Part, ReplicaGroup]]) -> None:
        shares = {g.key: p.share for p, g in pairs}
        route = Route.ensemble(list(shares)) if kind == ENSEMBLE else Route.mix(shares)
        self.loop.call(self.router.set_route(self.name, route))
        self.kind, self.shares = kind, shares

    def _start_groups(self, parts: list[Part]) -> list[tuple[ReplicaGroup, dict[str, Any]]]:
        """New groups, ready, with their start reports (or none: one that fails takes the ones already
        started down with it)."""
        started: list[tuple[ReplicaGroup, dict[str, Any]]] = []
        try:
            for p in parts:
                g = self._group()
                started.append((g, {}))
                started[-1] = (g, g.start(p.variant, p.cores, p.batch, p.replicas))
        except BaseException:
            for g, _ in started:
                g.close()
            raise
        return started

    def start(self, sc: StageConfig) -> dict[str, Any]:
        t0 = time.perf_counter()
        kind, parts = layout(sc)
        self.groups = [g for g, _ in self._start_groups(list(parts))]
        self._route(kind, list(zip(parts, self.groups)))
        return {"start_s": time.perf_counter() - t0, "replicas": sum(p.replicas for p in parts)}

    def _match(self, parts: tuple[Part, ...]) -> tuple[list[ReplicaGroup | None], list[ReplicaGroup]]:
        """For each new part the group that becomes it (one of the same variant first, else a leftover one,
        switched in place), or None (a new group); and the groups left over (they go)."""
        free = list(self.groups)
        pairs: list[ReplicaGroup | None] = [None] * len(parts)
        for i, p in enumerate(parts):
            g = next((g for g in free if g.variant == p.variant), None)
            if g is not None:
                pairs[i] = g
                free.remove(g)
        for i in range(len(parts)):
            if pairs[i] is None and free:
                pairs[i] = free.pop(0)
        return pairs, free

    def apply(self, sc: StageConfig) -> dict[str, Any]:
        """Move to ``sc`` without failing a request; the seconds each part took.

        New groups start first; groups whose share grows change before the new route, those whose share
        shrinks after it; groups no part needs leave the route, then drain and stop."""
        kind, parts = layout(sc)
        pairs, gone = self._match(parts)
        labels = _labels(parts)
        t0 = time.perf_counter()
        report: dict[str, Any] = {}
        started = self._start_groups([p for p, g in zip(parts, pairs) if g is None])
        fresh = iter(started)
        groups: list[ReplicaGroup] = []
        for label, was in zip(labels, pairs):
            if was is None:
                g, report[label] = next(fresh)
            groups.append(was or g)
        steps = [(label, p, g, p.share < self.shares.get(g.key, 0.0))
                 for label, p, g, was in zip(labels, parts, groups, pairs) if was is not None]
        try:
            for label, p, g, shrinks in steps:
                if not shrinks:
                    report[label] = g.apply(p.variant, p.cores, p.batch, p.replicas)
        except BaseException:
            for g, _ in started:  # not routed yet
                g.close()
            raise
        self._route(kind, list(zip(parts, groups)))
        self.groups = groups + gone
        for label, p, g, shrinks in steps:
            if shrinks:
                report[label] = g.apply(p.variant, p.cores, p.batch, p.replicas)
        removed = {}
        for g in gone:
            removed[g.variant or g.key] = g.retire()
            self.groups.remove(g)
            self._gone_restarts += g.restarts
        if len(parts) == 1 and not gone and pairs[0] is not None and kind == MIX:
            return report[labels[0]]  # a plain stage that stays one: its group's report, as before mixes
        out: dict[str, Any] = {"kind": kind, "parts": report}
        if removed:
            out["removed"] = removed
        out["total_s"] = time.perf_counter() - t0
        return out

    def check(self) -> int:
        """Replace replicas that died; how many were replaced."""
        return sum(g.check() for g in self.groups)

    def pids(self) -> list[int]:
        return [pid for g in self.groups for pid in g.pids()]

    def close(self) -> None:
        for g in self.groups:
            g.close()
            self._gone_restarts += g.restarts
        self.groups.clear()
