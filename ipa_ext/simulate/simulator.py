"""A per-second simulator of a pipeline serving a request series (the model: docs/adaptation.md).

Every number comes from the profiles (service times drawn from a seeded generator where
they have a spread), so the same inputs give the same results.
"""

from __future__ import annotations

import math
from collections import deque
from typing import Iterable, Sequence

from ..model import Configuration
from ..problem.problem import Problem
from .histogram import MAX_HISTOGRAM_S, LatencyHistogram
from .draws import NormalDraws, UniformDraws
from .model import ActiveModel, Route, build_model, stage_parts
from .queue import EPS, FluidQueue, reroute, serve_spread, service_latency_s
from .series import SECOND_COLUMNS, SecondSeries, Totals
from .waits import ARRIVALS

__all__ = [
    "ARRIVALS", "EPS", "MAX_HISTOGRAM_S", "SECOND_COLUMNS", "SERVICE_TIMES", "ActiveModel", "LatencyHistogram",
    "PipelineSimulator", "SecondSeries", "Totals", "build_model", "stage_parts",
]

SERVICE_TIMES = ("spread", "profiled")
"""``spread``: draw batch latencies between a profile's p50 and p99 where it has a p50 (the
default); ``profiled``: every batch takes the profile's latency (IPA's simulator)."""
MAX_DRAWS = 32
"""At most this many batch service times are drawn per route and second."""


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
        service_times: str = "spread",
        seed: int = 0,
        arrivals: str = "poisson",
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
        if service_times not in SERVICE_TIMES:
            raise ValueError(f"service_times must be one of {', '.join(SERVICE_TIMES)}, got {service_times!r}")
        self.spread = service_times == "spread"
        if arrivals not in ARRIVALS:
            raise ValueError(f"arrivals must be one of {', '.join(ARRIVALS)}, got {arrivals!r}")
        self.arrivals = arrivals
        self.normal = NormalDraws(seed)
        self.uniform = UniformDraws((seed, 1))  # the waits' own stream: the service-time draws stay as they were
        self.configs: list[Configuration] = []
        self.models: list[ActiveModel] = []
        self._models: dict[Configuration, ActiveModel] = {}
        self.series = SecondSeries(self.stage_names) if record_seconds else None
        if self.series is not None:
            self.series.models = self.models
        self.active = self.model(initial)
        self.target = self.active
        self.pending: deque[tuple[int, ActiveModel]] = deque()
        self.queues = [FluidQueue() for _ in self.active.weights]
        self.queue = self.queues[0]
        self.t = 0
        hist_max = min(2 * max(self.drop_limit_s, self.sla_s) + 10.0, MAX_HISTOGRAM_S)
        width = histogram_width_s or max(hist_max / 20000.0, 1e-4)
        self.histogram = LatencyHistogram(width, hist_max)
        self.totals = self._new_totals()
        self.reconfigurations = 0

    # ------------------------------------------------------------------ configurations

    def model(self, config: Configuration) -> ActiveModel:
        """The model of ``config`` (built once, then shared by index)."""
        m = self._models.get(config)
        if m is None:
            m = build_model(self.problem, config, len(self.configs), spread=self.spread)
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
            if m.weights != self.active.weights:  # other routes: the waiting requests are routed anew
                self.queues = reroute(self.queues, m.weights)
                self.queue = self.queues[0]
        self.active = m

    def _reconfigure_due(self, t: int) -> None:
        """Activate the scheduled configurations whose time has come by second ``t``."""
        pending = self.pending
        while pending and pending[0][0] <= t:
            self._activate(pending.popleft()[1])

    @property
    def queued(self) -> float:
        """Requests waiting in the queues now."""
        return sum(q.total for q in self.queues)

    # ------------------------------------------------------------------ stepping

    def _new_totals(self) -> Totals:
        n = len(self.stage_names)
        return Totals([0.0] * n, [0.0] * n, [0.0] * n)

    def run(self, arrivals: Iterable[float]) -> Totals:
        """Simulate one second per arrival count; returns the totals of these seconds.

        The common second (nothing queued, the arrivals fit) is served inline; the
        others go through the queue (:meth:`_queued_second`).
        """
        tot = self._new_totals()
        queue, hist, pending = self.queue, self.histogram, self.pending
        late_tol, D, T = self.sla_s + 1e-9, self.drop_limit_s, self.max_batch_wait_s
        series = self.series
        if series is not None:  # the per-second columns' appends
            cols = series.cols
            c_arr, c_srv, c_drp, c_late = (cols[c].append for c in ("arrivals", "served", "dropped", "late"))
            c_q, c_ls, c_lm = (cols[c].append for c in ("queued", "latency_sum_s", "latency_max_s"))
            c_idx = series.config_index.append
        by_model: dict[int, tuple[int, float, list[float] | None]] = {}
        act = self.active
        routes = act.routes  # empty for a plain configuration: one queue, served inline below
        secs, served_act = 0, 0.0  # seconds and served requests under act in this call
        by_route = [0.0] * len(routes) if len(routes) > 1 else None  # served per route under act
        for a in arrivals:
            t = self.t
            if pending and pending[0][0] <= t:  # reconfigure
                self._reconfigure_due(t)
                if self.active is not act:
                    if secs:
                        _tally(by_model, act, secs, served_act, by_route)
                    act, secs, served_act = self.active, 0, 0.0
                    routes, queue = act.routes, self.queue
                    by_route = [0.0] * len(routes) if len(routes) > 1 else None
            a = float(a)
            if routes:  # a mix, an ensemble or drawn service times: one queue per route
                served, dropped, late, lat_sum, lat_max = self._routed_second(t, a, routes, by_route)
            else:
                Q = queue.total
                C = act.capacity_rps
                S = act.latency_s
                if act.batch_waits:  # batches form from the arrivals, or from the queue at the capacity
                    S = service_latency_s(S, act.batch_waits, a if (a > 0.0 and Q <= EPS and a <= C) else C, T)
                if Q <= EPS and a <= C and S <= D:
                    # fast path: nothing queued and the second's arrivals fit
                    served = dropped = late = lat_sum = lat_max = 0.0
                    if Q > 0.0:
                        served += Q
                        lat_sum += Q * S
                        queue.clear()
                    if a > 0.0:
                        served += a
                        lat_sum += a * S
                        lat_max = S
                        hist.add_point(S, a)
                        if S > late_tol:
                            late += a
                else:
                    served, dropped, late, lat_sum, lat_max = self._queued_second(t, a, C, S)
            secs += 1
            served_act += served
            tot.arrivals += a
            tot.served += served
            tot.dropped += dropped
            tot.late += late
            tot.lat_sum += lat_sum
            if lat_max > tot.lat_max:
                tot.lat_max = lat_max
            if series is not None:
                c_arr(a)
                c_srv(served)
                c_drp(dropped)
                c_late(late)
                c_q(self.queued if routes else queue.total)
                c_ls(lat_sum)
                c_lm(lat_max)
                c_idx(act.index)
            self.t = t + 1
        if secs:
            _tally(by_model, act, secs, served_act, by_route)
        self._bill(by_model, tot)
        self._add_to_totals(tot)
        return tot

    def _queued_second(self, t: int, a: float, C: float, S: float) -> tuple[float, float, float, float, float]:
        """A second with a queue or overload: drop beyond the bound, admit, serve.

        Returns (served, dropped, late, latency sum, latency max)."""
        queue, D = self.queue, self.drop_limit_s
        bound = (D - S) * C  # the most queued requests that can still finish within the drop limit
        if bound < 0.0:
            bound = 0.0
        dropped = queue.shrink_to(bound) if queue.total > bound else 0.0
        if a > 0.0:
            dropped += a if S > D else queue.admit(t, a, C, bound)
        if C > 0.0:
            served, lat_sum, lat_max, late = queue.serve(t, C, S, self.sla_s + 1e-9 - S, self.histogram)
            return served, dropped, late, lat_sum, lat_max
        return 0.0, dropped, 0.0, 0.0, 0.0

    def _route_queued(
        self, queue: FluidQueue, t: int, a: float, C: float, S: float, offsets: Sequence[float] | None
    ) -> tuple[float, float, float, float, float]:
        """:meth:`_queued_second` on a route's queue, with drawn service times ``S + offset`` when given.

        (The plain configuration's copy above stays free of the routes' extra steps: it is the
        simulator's hot path.)"""
        D = self.drop_limit_s
        bound = (D - S) * C
        if bound < 0.0:
            bound = 0.0
        dropped = queue.shrink_to(bound) if queue.total > bound else 0.0
        if a > 0.0:
            dropped += a if S > D else queue.admit(t, a, C, bound)
        if C <= 0.0:
            return 0.0, dropped, 0.0, 0.0, 0.0
        if offsets is None:
            served, lat_sum, lat_max, late = queue.serve(t, C, S, self.sla_s + 1e-9 - S, self.histogram)
        else:
            served, lat_sum, lat_max, late = serve_spread(queue, t, C, S, self.sla_s + 1e-9, self.histogram, offsets)
        return served, dropped, late, lat_sum, lat_max

    def _routed_second(
        self, t: int, a: float, routes: Sequence[Route], by_route: list[float] | None
    ) -> tuple[float, float, float, float, float]:
        """One second of a configuration with routes: each route gets its share of ``a`` and serves it
        from its own queue, at its own capacity and service time.

        Adds each route's served requests to ``by_route`` and, with several routes, to the
        per-second records. Returns the sums (served, dropped, late, latency sum, latency max)."""
        D, T = self.drop_limit_s, self.max_batch_wait_s
        served = dropped = late = lat_sum = lat_max = 0.0
        per_route = []
        for k, (r, queue) in enumerate(zip(routes, self.queues)):
            ar, C, Q = a * r.weight, r.capacity_rps, queue.total
            fits = Q <= EPS and ar <= C
            rate = ar if (ar > 0.0 and fits) else C
            S = r.service_s(rate, T)
            offsets = self._offsets(r, rate, S, min(ar + Q, C)) if r.spread else None
            if fits and S <= D:
                s_, l_, m_, lt_ = self._serve_now(queue, ar, S, offsets)
                d_ = 0.0
            else:
                s_, d_, lt_, l_, m_ = self._route_queued(queue, t, ar, C, S, offsets)
            served += s_
            dropped += d_
            late += lt_
            lat_sum += l_
            if m_ > lat_max:
                lat_max = m_
            per_route.append(s_)
            if by_route is not None:
                by_route[k] += s_
        if by_route is not None and self.series is not None:
            self.series.route_served[len(self.series.config_index)] = tuple(per_route)
        return served, dropped, late, lat_sum, lat_max

    def _offsets(self, r: Route, rate: float, S: float, n: float) -> tuple[float, ...]:
        """Drawn service times minus ``S``: one per batch of the ``n`` requests served (at most MAX_DRAWS),
        each with its drawn wait at the stages' replicas for ``n`` requests this second (docs/adaptation.md)."""
        k = int(math.ceil(n / r.min_batch - 1e-9)) if n > 0.0 else 1
        k = 1 if k < 1 else (MAX_DRAWS if k > MAX_DRAWS else k)
        T, normal, uniform = self.max_batch_wait_s, self.normal, self.uniform
        waits = r.waits(n, self.arrivals) if n > 0.0 else None
        return tuple(r.drawn_s(rate, T, normal, waits, uniform) - S for _ in range(k))

    def _serve_now(
        self, queue: FluidQueue, a: float, S: float, offsets: Sequence[float] | None
    ) -> tuple[float, float, float, float]:
        """Serve a second's ``a`` arrivals (and a residue in ``queue``) at once, each after ``S`` plus its
        draw. Returns (served, latency sum, latency max, late)."""
        late_tol, hist = self.sla_s + 1e-9, self.histogram
        n = a + queue.total
        queue.clear()
        if n <= 0.0:
            return 0.0, 0.0, 0.0, 0.0
        if offsets is None:
            hist.add_point(S, n)
            return n, n * S, S, (n if S > late_tol else 0.0)
        nk = n / len(offsets)
        late = lat_max = 0.0
        for d in offsets:
            hist.add_point(S + d, nk)
            if S + d > late_tol:
                late += nk
            if S + d > lat_max:
                lat_max = S + d
        return n, n * S + nk * sum(offsets), lat_max, late

    def _bill(self, by_model: dict[int, tuple[int, float, list[float] | None]], tot: Totals) -> None:
        """Stage energy, busy CPU, reserved cores and accuracy of the seconds each configuration ran.

        With several routes, each route's served requests are billed at its parts' figures."""
        n = len(tot.stage_energy_j)
        for idx, (k, srv, by_route) in by_model.items():
            m = self.models[idx]
            if by_route is None:
                for i in range(n):
                    tot.stage_energy_j[i] += k * m.idle_w[i] + srv * m.energy_j_per_request[i]
                    tot.stage_busy_cpu_s[i] += srv * m.cpu_s_per_request[i]
                    tot.stage_core_s[i] += k * m.cores[i]
                tot.acc_pct_sum += srv * m.accuracy_pct
                tot.acc_sum += srv * m.accuracy
            else:
                pairs = list(zip(m.routes, by_route))
                for i in range(n):
                    tot.stage_energy_j[i] += k * m.idle_w[i] + sum(x * r.energy_j_per_request[i] for r, x in pairs)
                    tot.stage_busy_cpu_s[i] += sum(x * r.cpu_s_per_request[i] for r, x in pairs)
                    tot.stage_core_s[i] += k * m.cores[i]
                tot.acc_pct_sum += sum(x * r.accuracy_pct for r, x in pairs)
                tot.acc_sum += sum(x * r.accuracy for r, x in pairs)
            tot.seconds_by_config[idx] = tot.seconds_by_config.get(idx, 0) + k

    def _add_to_totals(self, tot: Totals) -> None:
        """Add one run's totals to the simulator's running totals."""
        t_all = self.totals
        for f in ("arrivals", "served", "dropped", "late", "lat_sum", "acc_pct_sum", "acc_sum"):
            setattr(t_all, f, getattr(t_all, f) + getattr(tot, f))
        for i in range(len(tot.stage_energy_j)):
            t_all.stage_energy_j[i] += tot.stage_energy_j[i]
            t_all.stage_busy_cpu_s[i] += tot.stage_busy_cpu_s[i]
            t_all.stage_core_s[i] += tot.stage_core_s[i]
        if tot.lat_max > t_all.lat_max:
            t_all.lat_max = tot.lat_max


def _tally(by_model: dict[int, tuple[int, float, list[float] | None]], m: ActiveModel, seconds: int,
           served: float, by_route: list[float] | None) -> None:
    """Add a run of ``seconds`` under ``m`` (``served`` requests, per route ``by_route``) to the
    per-configuration sums."""
    k0, s0, r0 = by_model.get(m.index, (0, 0.0, None))
    if by_route is not None and r0 is not None:
        by_route = [x + y for x, y in zip(r0, by_route)]
    by_model[m.index] = (k0 + seconds, s0 + served, by_route)
