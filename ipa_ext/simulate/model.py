"""What the simulator knows about one running configuration, derived from the profiles.

A plain configuration (one variant per stage, service times at the profiles' latency)
is one fluid queue. A configuration with a mixed stage, an ensemble stage or service
times drawn between p50 and p99 also gets :class:`Route` s: one per combination of the
stages' parts, each its own queue (docs/adaptation.md).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Sequence

from ..model import Configuration, StageConfig
from ..problem.ensemble import ensemble_accuracy_pct, ensemble_score
from ..problem.mix import stage_members, stage_parts
from ..problem.problem import Problem
from .waits import Wait, member_wait, waiting_time

Z99 = 2.3263478740408408
"""The standard normal distribution's 0.99 quantile."""

Member = tuple[float, float, float, float]
"""A stage member's service terms on a route: (latency_s, median_s, sigma, batch wait)."""
Servers = tuple[int, float, int, float, float]
"""A stage member's replicas as a queue: (replicas, capacity_rps, batch, squared coefficient of
variation of the batch service time, the member's arrivals per route arrival)."""


@dataclass(frozen=True)
class Route:
    """One path through the stages' parts: its share of the arrivals, capacity and service terms.

    ``stages`` holds per stage the members that serve the route's requests (one, or an
    ensemble's members); the batch wait is ``batch - 1`` scaled to the route's arrival
    rate, so a batch's fill time is ``batch wait / route rate``.
    """

    weight: float
    capacity_rps: float
    stages: tuple[tuple[Member, ...], ...]
    spread: bool
    min_batch: int
    energy_j_per_request: tuple[float, ...]
    cpu_s_per_request: tuple[float, ...]
    accuracy_pct: float
    accuracy: float
    servers: tuple[tuple[Servers, ...], ...] = ()
    """Per stage and member (as ``stages``), its replicas as a queue, for :meth:`waits`."""

    def waits(self, rate_rps: float, arrivals: str) -> tuple[tuple[Wait, ...], ...]:
        """Per stage and member, the wait (:func:`~.waits.member_wait`) at the member's replicas of
        ``rate_rps`` requests this second on this route, arriving by the process ``arrivals``."""
        # per member: its arrivals this second, from all routes through it, are rate x per
        return tuple(tuple(member_wait(c, rate_rps * per, cap, b, cs2, arrivals) for c, cap, b, cs2, per in members)
                     for members in self.servers)

    def service_s(self, rate_rps: float, max_wait_s: float) -> float:
        """Seconds after the queue at the profiles' latency: per stage the slowest member's batch plus fill."""
        total = 0.0
        for members in self.stages:
            worst = 0.0
            for lat, _, _, bw in members:
                fill = bw / rate_rps if rate_rps > 0.0 else 0.0
                s = lat + (fill if fill < max_wait_s else max_wait_s) * 0.5
                if s > worst:
                    worst = s
            total += worst
        return total

    def drawn_s(self, rate_rps: float, max_wait_s: float, normal,
                waits: Sequence[Sequence[Wait]] | None = None, uniform=None) -> float:
        """As :meth:`service_s` with each member's batch latency drawn: ``median * exp(sigma * z)``,
        plus, with ``waits`` (from :meth:`waits`), a wait at the member's replicas drawn with ``uniform``
        (:func:`~.waits.draw_wait`, inlined: this is the spread's inner loop)."""
        total = 0.0
        for i, members in enumerate(self.stages):
            worst = 0.0
            row = waits[i] if waits is not None else None
            for j, (_, med, sigma, bw) in enumerate(members):
                fill = bw / rate_rps if rate_rps > 0.0 else 0.0
                s = med * math.exp(sigma * normal()) + (fill if fill < max_wait_s else max_wait_s) * 0.5
                if row is not None:
                    pw, mean, erlang2 = row[j]
                    if pw > 0.0:
                        u = uniform()
                        if u < pw:
                            s += waiting_time(u / pw, mean, erlang2, uniform)
                if s > worst:
                    worst = s
            total += worst
        return total


@dataclass(frozen=True)
class ActiveModel:
    """What the simulator needs to know about one running configuration.

    The scalar figures describe the configuration as a whole (a mix's are share-weighted);
    ``routes`` is empty for a plain configuration, which the simulator serves as one queue.
    """

    index: int
    config: Configuration
    capacity_rps: float
    stage_capacity_rps: tuple[float, ...]
    latency_s: float
    batch_waits: tuple[float, ...]
    """Per stage, ``batch - 1``: the requests a batch waits for."""
    idle_w: tuple[float, ...]
    energy_j_per_request: tuple[float, ...]
    cpu_s_per_request: tuple[float, ...]
    cores: tuple[float, ...]
    accuracy_pct: float
    accuracy: float
    has_power: bool
    routes: tuple[Route, ...] = ()

    @property
    def total_cores(self) -> float:
        """Cores reserved by all stages."""
        return float(sum(self.cores))

    @property
    def weights(self) -> tuple[float, ...]:
        """The routes' shares of the arrivals (a plain configuration: one route with all)."""
        return tuple(r.weight for r in self.routes) if self.routes else (1.0,)


@dataclass(frozen=True)
class _Part:
    """One part of a stage (a variant, or an ensemble of variants) with its figures."""

    share: float
    capacity: float
    latency: float
    fill: float
    members: tuple[Member, ...]
    min_batch: int
    idle: float
    epr: float
    cps: float
    cores: float
    acc_pct: float
    acc: float
    has_power: bool
    servers: tuple[Servers, ...] = ()


def _spread(latency_s: float, p50: float | None, spread: bool) -> tuple[float, float]:
    """(median, sigma) of a lognormal with the profile's p50 as median and its latency as p99."""
    if not spread or p50 is None or p50 <= 0.0 or p50 >= latency_s:
        return latency_s, 0.0
    return p50, math.log(latency_s / p50) / Z99


def _part(problem: Problem, i: int, part: StageConfig, share: float, spread: bool) -> _Part:
    """The figures of one part of stage ``i``: summed over an ensemble's members where each serves every request."""
    stage = problem.pipeline.stages[i]
    cap = math.inf
    lat = fill = idle = epr = cps = cores = 0.0
    members: list[Member] = []
    servers: list[Servers] = []
    names: list[str] = []
    has_power = True
    for m in stage_members(part):
        prof = stage.profile(m.variant, m.cpu, m.batch)
        if prof is None:
            raise KeyError(f"no profile for stage {stage.name!r} variant {m.variant!r} cpu {m.cpu:g} batch {m.batch}")
        cap = min(cap, m.replicas * prof.throughput_rps)
        lat = max(lat, prof.latency_s)
        fill = max(fill, float(m.batch - 1))
        idle += m.replicas * prof.idle_power_w
        dyn = prof.dynamic_energy_j
        if dyn is None:
            has_power, dyn = False, 0.0
        epr += dyn
        cps += m.cpu / prof.throughput_rps
        cores += m.cpu * m.replicas
        med, sigma = _spread(prof.latency_s, prof.latency_p50_s, spread)
        members.append((prof.latency_s, med, sigma, float(m.batch - 1)))
        servers.append(_servers(m.replicas, m.replicas * prof.throughput_rps, m.batch, sigma))
        names.append(m.variant)
    # the optimizers' model of an ensemble (majority vote, independent errors), so both agree
    acc_pct, acc = ensemble_accuracy_pct(stage, names), ensemble_score(problem, i, names)
    min_batch = min(m.batch for m in stage_members(part))
    return _Part(share, cap, lat, fill, tuple(members), min_batch, idle, epr, cps, cores, acc_pct, acc, has_power,
                 tuple(servers))


def _servers(replicas: int, capacity_rps: float, batch: int, sigma: float) -> Servers:
    """A member's replicas as a queue (:func:`~.waits.member_wait`); the batch times vary as the
    lognormal does: squared coefficient of variation ``e^(sigma^2) - 1`` (0 without a spread)."""
    return (int(replicas), capacity_rps, int(batch), math.expm1(sigma * sigma), 1.0)


def _combine(method: str, accs: Sequence[float]) -> float:
    """The pipeline's accuracy term from the stages' (IPA's ``accuracy_method``)."""
    if method == "multiply":
        return math.prod(accs)
    if method == "average":
        return sum(accs) / len(accs)
    return sum(accs)


def _routes(problem: Problem, stages: list[list[_Part]]) -> tuple[Route, ...]:
    """One route per combination of the stages' parts, with its share of each part's capacity."""
    out = []
    method = problem.settings.accuracy_method
    for combo in itertools.product(*stages):
        w = math.prod(p.share for p in combo)
        if w <= 0.0:
            continue
        cap = min(p.capacity * w / p.share for p in combo)
        terms = tuple(tuple((lat, med, sg, bw * w / p.share) for lat, med, sg, bw in p.members) for p in combo)
        out.append(Route(
            weight=w, capacity_rps=cap, stages=terms,
            spread=any(sg > 0.0 for p in combo for _, _, sg, _ in p.members),
            min_batch=min(p.min_batch for p in combo),
            energy_j_per_request=tuple(p.epr for p in combo), cpu_s_per_request=tuple(p.cps for p in combo),
            accuracy_pct=sum(p.acc_pct for p in combo) / len(combo),
            accuracy=_combine(method, [p.acc for p in combo]),
            servers=tuple(tuple((c, cap, b, cs2, p.share / w) for c, cap, b, cs2, _ in p.servers)
                          for p in combo),
        ))
    return tuple(out)


def build_model(problem: Problem, config: Configuration, index: int = 0, *, spread: bool = False) -> ActiveModel:
    """Derive capacity, latency, power and accuracy of a configuration from the profiles.

    With ``spread``, service times of profiles with a p50 are drawn (see :class:`Route`).
    """
    pipeline = problem.pipeline
    if len(config) != len(pipeline.stages):
        raise ValueError("configuration and pipeline have different stage counts")
    stages = [[_part(problem, i, part, share, spread) for part, share in stage_parts(sc)]
              for i, sc in enumerate(config)]
    caps, lats, fills, idles, eprs, cpus, cores, accs_pct, accs = [], [], [], [], [], [], [], [], []
    for parts in stages:
        cap = lat = fill = idle = epr = cps = cr = ap = ao = 0.0
        for p in parts:
            cap += p.capacity
            lat = max(lat, p.latency)
            fill = max(fill, p.fill)
            idle += p.idle
            epr += p.share * p.epr
            cps += p.share * p.cps
            cr += p.cores
            ap += p.share * p.acc_pct
            ao += p.share * p.acc
        for lst, v in zip((caps, lats, fills, idles, eprs, cpus, cores, accs_pct, accs),
                          (cap, lat, fill, idle, epr, cps, cr, ap, ao)):
            lst.append(v)
    routes = _routes(problem, stages)
    plain = len(routes) == 1 and not routes[0].spread and all(len(m) == 1 for m in routes[0].stages)
    return ActiveModel(
        index=index,
        config=tuple(config),
        capacity_rps=min(caps) if plain else min(r.capacity_rps / r.weight for r in routes),
        stage_capacity_rps=tuple(caps),
        latency_s=sum(lats),
        batch_waits=tuple(f for f in fills if f > 0),
        idle_w=tuple(idles),
        energy_j_per_request=tuple(eprs),
        cpu_s_per_request=tuple(cpus),
        cores=tuple(cores),
        accuracy_pct=sum(accs_pct) / len(accs_pct),
        accuracy=_combine(problem.settings.accuracy_method, accs),
        has_power=all(p.has_power for parts in stages for p in parts),
        routes=() if plain else routes,
    )
