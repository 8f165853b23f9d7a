"""A deterministic per-second simulator of a pipeline serving a request series.

Every number comes from the profiles, so the same inputs give the same results.

The model (fluid, first-come first-served):

* **Capacity.** A stage serves ``replicas x throughput_rps`` requests per second.
  The stages form a tandem of FIFO servers; for constant-rate fluid servers a
  tandem behaves as one server at the bottleneck rate ``C = min over stages``
  (min-plus algebra: the convolution of two rate curves is the slower one), so
  requests queue once, in front of the pipeline.
* **Arrivals.** Second ``t``'s ``a`` requests arrive evenly over ``[t, t+1)``.
* **Service latency.** A request that leaves the queue takes
  ``S = sum over stages of (latency_s + min((batch-1)/r, max_batch_wait_s)/2)``
  more seconds: the profile's per-batch latency plus the mean time to fill its
  batch, with ``r`` the arrival rate (the bottleneck rate ``C`` while requests
  are queued, since batches then form from the queue). ``max_batch_wait_s`` is
  the batching timeout (MLServer's ``max_batch_time``, 1 s in IPA's configs).
* **Bounded queue.** The queue admits a request only if it can finish within
  ``drop_limit_s`` at the capacity running when it arrives: the queue holds at
  most ``(drop_limit_s - S) x C`` requests and the rest are dropped and counted.
  ``drop_limit_s`` defaults to the SLA ("requests that cannot finish within the
  SLA are dropped"); IPA's ``drop_limit`` (10 s in its video configs) can be set
  instead, and then requests served after the SLA count as late. When a
  reconfiguration lowers the bound, the newest queued requests are dropped; a
  configuration whose service latency alone exceeds the limit drops everything.
* **Latency distribution.** Each queued slice of requests keeps its arrival
  interval; the wait of each request is computed exactly for the fluid queue
  (it is piecewise linear in the request's position), so per-request latency,
  late counts (latency > SLA) and a latency histogram are exact for the model.
* **Energy.** Per second and stage: ``replicas x idle_w`` (reserved, idle) plus
  ``served x energy_j_per_request`` (busy): the profiles' power model. Dropped
  requests cost nothing. Quality: ``estimated``.
* **Reconfiguration.** A configuration applied at ``t`` takes effect at the start
  of second ``ceil(t + reconfiguration_delay_s)``; until then the old one serves
  and is the one billed.
* **Accuracy** is weighted by the requests served under each configuration.

Counts are real numbers (fluid); ``arrivals = served + dropped + queued``
holds to rounding error.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from dataclasses import dataclass, field
from typing import Iterable, Sequence

from ..model import Configuration, StageConfig
from ..problem.problem import Problem

EPS = 1e-9
"""Fluid amounts below this many requests are treated as zero."""


def stage_parts(sc: StageConfig) -> tuple[tuple[StageConfig, float], ...]:
    """The (stage configuration, load share) parts of one stage.

    A plain :class:`StageConfig` is one part with the whole load. A stage
    configuration with a ``parts`` attribute (a load split over several
    variants, as InfAdapter makes) lists its own parts.
    """
    parts = getattr(sc, "parts", None)
    if parts:
        return tuple(parts)
    return ((sc, 1.0),)


@dataclass(frozen=True)
class ActiveModel:
    """What the simulator needs to know about one running configuration."""

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

    @property
    def total_cores(self) -> float:
        return float(sum(self.cores))


def build_model(problem: Problem, config: Configuration, index: int = 0) -> ActiveModel:
    """Derive capacity, latency, power and accuracy of a configuration from the profiles."""
    pipeline = problem.pipeline
    if len(config) != len(pipeline.stages):
        raise ValueError("configuration and pipeline have different stage counts")
    caps, lats, fills, idles, eprs, cpus, cores, accs_pct, accs = [], [], [], [], [], [], [], [], []
    has_power = True
    for i, sc in enumerate(config):
        stage = pipeline.stages[i]
        cap = lat = fill = idle = epr = cps = cr = ap = ao = 0.0
        for part, share in stage_parts(sc):
            prof = stage.profile(part.variant, part.cpu, part.batch)
            if prof is None:
                raise KeyError(
                    f"no profile for stage {stage.name!r} variant {part.variant!r} "
                    f"cpu {part.cpu:g} batch {part.batch}"
                )
            cap += part.replicas * prof.throughput_rps
            lat = max(lat, prof.latency_s)
            fill = max(fill, float(part.batch - 1))
            idle += part.replicas * prof.idle_power_w
            dyn = prof.dynamic_energy_j
            if dyn is None:
                has_power = False
                dyn = 0.0
            epr += share * dyn
            cps += share * part.cpu / prof.throughput_rps
            cr += part.cpu * part.replicas
            ap += share * stage.variant(part.variant).accuracy
            ao += share * problem.stage_accuracies[i][part.variant]
        caps.append(cap)
        lats.append(lat)
        fills.append(fill)
        idles.append(idle)
        eprs.append(epr)
        cpus.append(cps)
        cores.append(cr)
        accs_pct.append(ap)
        accs.append(ao)
    method = problem.settings.accuracy_method
    if method == "multiply":
        acc = math.prod(accs)
    elif method == "average":
        acc = sum(accs) / len(accs)
    else:
        acc = sum(accs)
    return ActiveModel(
        index=index,
        config=tuple(config),
        capacity_rps=min(caps),
        stage_capacity_rps=tuple(caps),
        latency_s=sum(lats),
        batch_waits=tuple(f for f in fills if f > 0),
        idle_w=tuple(idles),
        energy_j_per_request=tuple(eprs),
        cpu_s_per_request=tuple(cpus),
        cores=tuple(cores),
        accuracy_pct=sum(accs_pct) / len(accs_pct),
        accuracy=acc,
        has_power=has_power,
    )


MAX_HISTOGRAM_S = 1e12
"""The latency histogram's range ends here however long the SLA (later latencies count as over)."""


class LatencyHistogram:
    """Request latencies in fixed-width bins, filled with point masses and uniform spreads."""

    def __init__(self, width_s: float, max_s: float) -> None:
        self.width_s = float(width_s)
        self.nbins = int(math.ceil(max_s / width_s)) + 1
        self.point = [0.0] * (self.nbins + 1)
        self.dens = [0.0] * (self.nbins + 2)  # difference array of per-bin density
        self.over = 0.0
        self.max_s = 0.0
        self.total = 0.0

    def add_point(self, lat: float, mass: float) -> None:
        i = int(lat / self.width_s)
        if i >= self.nbins:
            self.over += mass
        else:
            self.point[i] += mass
        self.total += mass
        if lat > self.max_s:
            self.max_s = lat

    def add_uniform(self, lo: float, hi: float, mass: float) -> None:
        if hi - lo < self.width_s:
            self.add_point((lo + hi) / 2, mass)
            if hi > self.max_s:
                self.max_s = hi
            return
        w = self.width_s
        per_s = mass / (hi - lo)
        i0, i1 = int(lo / w), int(hi / w)
        self.total += mass
        if hi > self.max_s:
            self.max_s = hi
        if i1 >= self.nbins:
            cut = self.nbins * w
            if lo >= cut:
                self.over += mass
                return
            self.over += per_s * (hi - cut)
            hi, i1 = cut, self.nbins
        # partial first and last bins as point masses, full bins as density
        if i0 == i1:
            self.point[i0] += per_s * (hi - lo)
            return
        self.point[i0] += per_s * ((i0 + 1) * w - lo)
        if i1 < self.nbins:
            self.point[i1] += per_s * (hi - i1 * w)
        if i1 > i0 + 1:
            self.dens[i0 + 1] += per_s * w
            self.dens[i1] -= per_s * w

    def counts(self) -> list[float]:
        out = []
        run = 0.0
        for i in range(self.nbins):
            run += self.dens[i]
            out.append(self.point[i] + run)
        return out

    def quantile(self, q: float) -> float | None:
        """The latency below which a fraction ``q`` of requests fall (bin upper edge)."""
        if self.total <= 0:
            return None
        target = q * self.total
        acc = 0.0
        for i, c in enumerate(self.counts()):
            acc += c
            if acc >= target - 1e-9:
                return min((i + 1) * self.width_s, self.max_s)
        return self.max_s


SECOND_COLUMNS = ("arrivals", "served", "dropped", "late", "queued", "latency_sum_s", "latency_max_s")
"""Columns recorded every second; the rest (capacity, cores, power, accuracy) follow
from ``config_index`` and the :class:`ActiveModel` of that configuration."""


class SecondSeries:
    """Per-second records as compact columns (``array('d')``) starting at ``start_s``."""

    def __init__(self, stages: Sequence[str], start_s: int = 0) -> None:
        self.stages = tuple(stages)
        self.start_s = start_s
        self.cols: dict[str, array] = {c: array("d") for c in SECOND_COLUMNS}
        self.config_index = array("l")
        self.models: list[ActiveModel] = []
        """The models by config index (shared with the simulator)."""

    def __len__(self) -> int:
        return len(self.config_index)

    def stage_energy_j(self, i: int, stage: int) -> float:
        """Energy of a stage in second ``i``: idle watts plus served requests x J/request."""
        m = self.models[self.config_index[i]]
        return m.idle_w[stage] + self.cols["served"][i] * m.energy_j_per_request[stage]

    def energy_j(self, i: int) -> float:
        m = self.models[self.config_index[i]]
        served = self.cols["served"][i]
        return sum(m.idle_w[k] + served * m.energy_j_per_request[k] for k in range(len(self.stages)))


@dataclass
class Totals:
    """Sums over simulated seconds."""

    stage_energy_j: list[float]
    stage_busy_cpu_s: list[float]
    stage_core_s: list[float]
    arrivals: float = 0.0
    served: float = 0.0
    dropped: float = 0.0
    late: float = 0.0
    lat_sum: float = 0.0
    lat_max: float = 0.0
    acc_pct_sum: float = 0.0
    acc_sum: float = 0.0
    seconds_by_config: dict[int, int] = field(default_factory=dict)


class PipelineSimulator:
    """Replays per-second arrivals through the running configuration (see module docstring)."""

    def __init__(
        self,
        problem: Problem,
        initial: Configuration,
        *,
        drop_limit_s: float | None = None,
        reconfiguration_delay_s: float = 0.0,
        max_batch_wait_s: float = 1.0,
        record_seconds: bool = True,
        histogram_width_s: float | None = None,
    ) -> None:
        self.problem = problem
        self.stage_names = problem.pipeline.stage_names
        self.sla_s = float(problem.sla_s)
        self.drop_limit_s = float(drop_limit_s) if drop_limit_s is not None else self.sla_s
        if not self.drop_limit_s > 0:
            raise ValueError(f"drop_limit_s must be > 0, got {drop_limit_s!r}")
        if reconfiguration_delay_s < 0 or not math.isfinite(reconfiguration_delay_s):
            raise ValueError(f"reconfiguration_delay_s must be >= 0, got {reconfiguration_delay_s!r}")
        self.reconfiguration_delay_s = float(reconfiguration_delay_s)
        if not max_batch_wait_s >= 0 or not math.isfinite(max_batch_wait_s):
            raise ValueError(f"max_batch_wait_s must be >= 0, got {max_batch_wait_s!r}")
        self.max_batch_wait_s = float(max_batch_wait_s)
        self.configs: list[Configuration] = []
        self.models: list[ActiveModel] = []
        self._models: dict[Configuration, ActiveModel] = {}
        self.series = SecondSeries(self.stage_names) if record_seconds else None
        if self.series is not None:
            self.series.models = self.models
        self.active = self.model(initial)
        self.target = self.active
        self.pending: deque[tuple[int, ActiveModel]] = deque()
        self.queue: deque[list[float]] = deque()  # [n, first arrival, last arrival]
        self.queued = 0.0
        self.t = 0
        hist_max = min(2 * max(self.drop_limit_s, self.sla_s) + 10.0, MAX_HISTOGRAM_S)
        width = histogram_width_s or max(hist_max / 20000.0, 1e-4)
        self.histogram = LatencyHistogram(width, hist_max)
        self.totals = self._new_totals()
        self.reconfigurations = 0

    # ------------------------------------------------------------------ configurations

    def model(self, config: Configuration) -> ActiveModel:
        m = self._models.get(config)
        if m is None:
            m = build_model(self.problem, config, len(self.configs))
            self.configs.append(tuple(config))
            self.models.append(m)
            self._models[config] = m
        return m

    def schedule(self, config: Configuration) -> int | None:
        """Apply ``config`` now; returns the second it takes effect (None when unchanged)."""
        m = self.model(config)
        if m is self.target:
            return None
        self.target = m
        at = int(math.ceil(self.t + self.reconfiguration_delay_s - 1e-9))
        if at <= self.t:
            self.pending.clear()
            self._activate(m)
            return self.t
        self.pending.append((at, m))
        return at

    def _activate(self, m: ActiveModel) -> None:
        if m is not self.active:
            self.reconfigurations += 1
        self.active = m

    # ------------------------------------------------------------------ stepping

    def _new_totals(self) -> Totals:
        n = len(self.stage_names)
        return Totals([0.0] * n, [0.0] * n, [0.0] * n)

    def run(self, arrivals: Iterable[float]) -> Totals:
        """Simulate one second per arrival count; returns the totals of these seconds."""
        tot = self._new_totals()
        q = self.queue
        Q = self.queued
        sla_tol = self.sla_s + 1e-9
        D = self.drop_limit_s
        hist = self.histogram
        series = self.series
        stage_energy = tot.stage_energy_j
        stage_busy = tot.stage_busy_cpu_s
        stage_core = tot.stage_core_s
        nst = len(stage_energy)
        pending = self.pending
        act = self.active
        cols = series.cols if series is not None else None
        if cols is not None:
            c_arr, c_srv, c_drp, c_late = cols["arrivals"], cols["served"], cols["dropped"], cols["late"]
            c_q, c_ls, c_lm = cols["queued"], cols["latency_sum_s"], cols["latency_max_s"]
            c_idx = series.config_index  # type: ignore[union-attr]
        T = self.max_batch_wait_s
        by_model: dict[int, tuple[int, float]] = {}
        m_cur: ActiveModel | None = None
        secs = 0
        served_cur = 0.0
        for a in arrivals:
            t = self.t
            while pending and pending[0][0] <= t:
                self._activate(pending.popleft()[1])
            act = self.active
            a = float(a)
            C = act.capacity_rps
            fill = 0.0
            if act.batch_waits:
                r = a if (a > 0.0 and Q <= EPS and a <= C) else C
                if r > 0.0:
                    for bw in act.batch_waits:
                        w = bw / r
                        fill += (w if w < T else T) * 0.5
            S = act.latency_s + fill
            qmax = (D - S) * C
            if qmax < 0.0:
                qmax = 0.0
            dropped = 0.0
            served = 0.0
            late = 0.0
            lat_sum = 0.0
            lat_max = 0.0
            if Q <= EPS and a <= C and S <= D:
                # fast path: nothing queued and the second's arrivals fit
                if Q > 0.0:
                    served += Q
                    lat_sum += Q * S
                    q.clear()
                    Q = 0.0
                if a > 0.0:
                    served += a
                    lat_sum += a * S
                    lat_max = S
                    hist.add_point(S, a)
                    if S > sla_tol:
                        late += a
            else:
                if Q > qmax:
                    excess = Q - qmax
                    dropped += excess
                    while excess > EPS and q:
                        seg = q[-1]
                        if seg[0] <= excess + EPS:
                            excess -= seg[0]
                            q.pop()
                        else:
                            keep = (seg[0] - excess) / seg[0]
                            seg[2] = seg[1] + (seg[2] - seg[1]) * keep
                            seg[0] -= excess
                            excess = 0.0
                    Q = qmax
                if a > 0.0:
                    if S > D:
                        dropped += a
                    elif a > C and Q + (a - C) > qmax:
                        x1 = (qmax - Q) / (a - C)
                        if x1 < 0.0:
                            x1 = 0.0
                        elif x1 > 1.0:
                            x1 = 1.0
                        n1 = a * x1
                        n2 = C * (1.0 - x1)
                        if n1 > EPS:
                            q.append([n1, t, t + x1])
                        if n2 > EPS:
                            q.append([n2, t + x1, t + 1.0])
                        adm = n1 + n2
                        dropped += a - adm
                        Q += adm
                    else:
                        q.append([a, float(t), t + 1.0])
                        Q += a
                if C > 0.0:
                    tau = float(t)
                    end = t + 1.0
                    thr = sla_tol - S  # waits above this are late
                    while q:
                        seg = q[0]
                        n, tf, tl = seg
                        span = tl - tf
                        nc = n / C
                        slope2 = nc if nc > span else span
                        us = (end - tau) / nc if nc > 0.0 else 1.0
                        if slope2 > 0.0:
                            u2 = (end - tf) / slope2
                            if u2 < us:
                                us = u2
                        if us >= 1.0 or n * (1.0 - us) < EPS:
                            us = 1.0
                        elif us <= 0.0:
                            break
                        A = tau - tf
                        g = nc - span
                        m = n * us
                        # the wait W(u) = max(A + u*g, u*max(g, 0)) over u in [0, us]
                        if g >= 0.0:
                            w0 = A if A > 0.0 else 0.0
                            pieces = ((m, w0, w0 + g * us),)
                        elif A <= 0.0:
                            pieces = ((m, 0.0, 0.0),)
                        else:
                            u0 = A / -g
                            if u0 >= us:
                                pieces = ((m, A, A + g * us),)
                            else:
                                pieces = ((n * u0, A, 0.0), (n * (us - u0), 0.0, 0.0))
                        for pm, w0, w1 in pieces:
                            if pm <= 0.0:
                                continue
                            served += pm
                            lat_sum += pm * ((w0 + w1) * 0.5 + S)
                            lo, hi = (w0, w1) if w0 <= w1 else (w1, w0)
                            if hi + S > lat_max:
                                lat_max = hi + S
                            if hi > lo:
                                hist.add_uniform(lo + S, hi + S, pm)
                                if hi > thr:
                                    frac = (hi - thr) / (hi - lo)
                                    late += pm * (frac if frac < 1.0 else 1.0)
                            else:
                                hist.add_point(lo + S, pm)
                                if lo > thr:
                                    late += pm
                        if us >= 1.0:
                            q.popleft()
                            d1 = tau + nc
                            d2 = tf + slope2
                            tau = d1 if d1 > d2 else d2
                        else:
                            seg[0] = n - m
                            seg[1] = tf + us * span
                            break
                    Q -= served
                    if not q or Q < EPS:
                        if q:
                            # rounding residue: serve it with the last wait
                            served += Q
                            lat_sum += Q * S
                            q.clear()
                        Q = 0.0
            # accounting: per-configuration sums; stage figures follow from the model
            if act is not m_cur:
                if m_cur is not None:
                    k0, s0 = by_model.get(m_cur.index, (0, 0.0))
                    by_model[m_cur.index] = (k0 + secs, s0 + served_cur)
                m_cur = act
                secs = 0
                served_cur = 0.0
            secs += 1
            served_cur += served
            tot.arrivals += a
            tot.served += served
            tot.dropped += dropped
            tot.late += late
            tot.lat_sum += lat_sum
            if lat_max > tot.lat_max:
                tot.lat_max = lat_max
            if cols is not None:
                c_arr.append(a)
                c_srv.append(served)
                c_drp.append(dropped)
                c_late.append(late)
                c_q.append(Q)
                c_ls.append(lat_sum)
                c_lm.append(lat_max)
                c_idx.append(act.index)
            self.t = t + 1
        if m_cur is not None:
            k0, s0 = by_model.get(m_cur.index, (0, 0.0))
            by_model[m_cur.index] = (k0 + secs, s0 + served_cur)
        for idx, (k, srv) in by_model.items():
            m = self.models[idx]
            for i in range(nst):
                stage_energy[i] += k * m.idle_w[i] + srv * m.energy_j_per_request[i]
                stage_busy[i] += srv * m.cpu_s_per_request[i]
                stage_core[i] += k * m.cores[i]
            tot.acc_pct_sum += srv * m.accuracy_pct
            tot.acc_sum += srv * m.accuracy
            tot.seconds_by_config[idx] = tot.seconds_by_config.get(idx, 0) + k
        self.queued = Q
        t_all = self.totals
        for f in ("arrivals", "served", "dropped", "late", "lat_sum", "acc_pct_sum", "acc_sum"):
            setattr(t_all, f, getattr(t_all, f) + getattr(tot, f))
        for i in range(nst):
            t_all.stage_energy_j[i] += tot.stage_energy_j[i]
            t_all.stage_busy_cpu_s[i] += tot.stage_busy_cpu_s[i]
            t_all.stage_core_s[i] += tot.stage_core_s[i]
        if tot.lat_max > t_all.lat_max:
            t_all.lat_max = tot.lat_max
        return tot
