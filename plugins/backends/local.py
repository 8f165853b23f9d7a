"""The ``local`` backend: the adaptation loop against real model servers on this machine.

Each stage's replicas are ``python -m ipa_ext.serving.replica`` processes (onnxruntime, pinned to their
cores, adaptive batching, the V2 REST protocol on 127.0.0.1); a router chains the stages and a load
generator replays the run's workload in real time (:mod:`ipa_ext.serving`). A stage configured as a mix or
an ensemble (:mod:`ipa_ext.problem.mix`) runs one replica group per part or member. Options (the config's
``local:`` section, overridden by ``backend.options``; see docs/local.md):

=====================  ==========  ==============================================================
option                 default     meaning
=====================  ==========  ==============================================================
drop_limit_s           the SLA     a request this old is dropped (IPA's ``drop_limit`` too)
max_batch_wait_s       1           batching window (MLServer's ``max_batch_time``)
rate_scale             1           multiply the workload's rates (``--rate-scale``)
duration_s             none        stop the load after this many seconds (``--duration``)
spread                 poisson     poisson, uniform or step: how a second's requests are spread
seed                   0           seed of the spread
request_timeout_s      drop + 30   a client request unanswered this long counts as dropped
router_port            0           the router's port on 127.0.0.1 (0: any free port)
model_cache            default     the zoo model cache folder
stages                 {}          ``{stage: {url: http://HOST:PORT, model: NAME, input_size: N}}``:
                                   stages served by an external V2 server (never reconfigured)
pin_driver             auto        pin the ipa-ext process to a core of its own: auto (when one is spare),
                                   true or false
=====================  ==========  ==============================================================
"""

from __future__ import annotations

import logging
import math
import os
import threading
import urllib.parse
from typing import Any, Mapping, Sequence

import numpy as np

from ipa_ext import hookimpl
from ipa_ext.backends import Backend, IntervalOutcome, RunContext
from ipa_ext.errors import ConfigError, IpaExtError
from ipa_ext.model import Configuration, StageConfig
from ipa_ext.problem.ensemble import ensemble_accuracy_pct, ensemble_score
from ipa_ext.problem.mix import stage_members
from ipa_ext.config.numeric import option
from ipa_ext.serving.loadgen import SPREADS, scaled_counts
from ipa_ext.serving.driver import PIN_MODES, DriverPlacement, pin_process, place_driver, restore_process
from ipa_ext.serving.pipeline import External, ExternalError, LocalPipeline
from ipa_ext.serving.seconds import RequestSeconds
from ipa_ext.serving.routes import ENSEMBLE
from ipa_ext.serving.stage import VariantModel, layout

log = logging.getLogger("ipa_ext.backends.local")


def _external(stages: Any) -> dict[str, External]:
    if not isinstance(stages, Mapping):
        raise ValueError(f"stages must be a mapping of stage name to {{url, model}}, got {stages!r}")
    out = {}
    for name, spec in stages.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("url"), str):
            raise ValueError(f"stages.{name}: give url: http://HOST:PORT (and model: NAME)")
        u = urllib.parse.urlsplit(spec["url"])
        if u.scheme != "http" or not u.hostname or not u.port:
            raise ValueError(f"stages.{name}.url: expected http://HOST:PORT, got {spec['url']!r}")
        size = spec.get("input_size")
        out[str(name)] = External(u.hostname, u.port, str(spec.get("model", name)),
                                  None if size is None else option(f"stages.{name}.input_size", size,
                                                                   integer=True, minimum=1))
    return out


class LocalBackend(Backend):
    """See the module docstring."""

    name = "local"
    live = True
    needs_workload = True
    default_energy_sources = ("estimate",)
    config_sections = ("prometheus",)

    def __init__(self, drop_limit_s: float | None = None, drop_limit: float | None = None,
                 max_batch_wait_s: float = 1.0, rate_scale: float = 1.0, duration_s: float | None = None,
                 spread: str = "poisson", seed: int = 0, request_timeout_s: float | None = None,
                 router_port: int = 0, model_cache: str | None = None, stages: Any = None,
                 pin_driver: Any = "auto", prometheus: Mapping[str, Any] | None = None) -> None:
        if drop_limit_s is not None and drop_limit is not None:
            raise ValueError("give drop_limit_s or IPA's drop_limit, not both")
        limit = drop_limit_s if drop_limit_s is not None else drop_limit
        self.drop_limit_s = None if limit is None else option("drop_limit_s", limit, positive=True)
        self.max_batch_wait_s = option("max_batch_wait_s", max_batch_wait_s, minimum=0)
        self.rate_scale = option("rate_scale", rate_scale, positive=True)
        self.duration_s = None if duration_s is None else option("duration_s", duration_s, positive=True)
        if spread not in SPREADS:
            raise ValueError(f"spread must be one of {', '.join(SPREADS)}, got {spread!r}")
        self.spread = spread
        self.seed = option("seed", seed, integer=True, minimum=0)
        self.request_timeout_s = None if request_timeout_s is None else option(
            "request_timeout_s", request_timeout_s, positive=True)
        self.router_port = option("router_port", router_port, integer=True, minimum=0, maximum=65535)
        self.model_cache = model_cache
        self.external = _external(stages or {})
        mode = {True: "true", False: "false"}.get(pin_driver, pin_driver) if isinstance(pin_driver, bool) \
            else pin_driver
        if mode not in PIN_MODES:
            raise ValueError(f"pin_driver must be auto, true or false, got {pin_driver!r}")
        self.pin_driver = mode
        self.driver = DriverPlacement((), "not started")
        self._driver_masks: dict[int, set[int]] | None = None
        self._usable: set[int] = set()
        self._driver_ever_shared = False
        self.prometheus_section = prometheus if isinstance(prometheus, Mapping) and prometheus.get("url") else None
        self.pipeline: LocalPipeline | None = None
        self.sla_s = math.inf
        self._config: Configuration | None = None
        self._apply_reports: dict[str, Any] = {}
        self._latencies: list[float] = []
        self._reader: Any = None
        self._problem: Any = None
        self._seconds: RequestSeconds | None = None
        self._drained = False
        self._served_total: dict[str, dict[str, int]] = {}
        self.stage_names: tuple[str, ...] = ()

    # ------------------------------------------------------------------ start

    def _models(self, context: RunContext) -> dict[str, dict[str, VariantModel]]:
        from ipa_ext.profiler.models import resolve

        pipe = context.problem.pipeline
        out: dict[str, dict[str, VariantModel]] = {}
        for stage in pipe.stages:
            if stage.name in self.external:
                continue
            out[stage.name] = {}
            for variant in stage.variant_names:
                ref = pipe.models.get((stage.name, variant))
                if ref is None:
                    raise ConfigError(f"stage {stage.name!r} variant {variant!r} names no model: give it "
                                      "'zoo: NAME' or 'model: FILE.onnx' in the pipeline, or serve the stage "
                                      "from an external V2 server (local.stages)", path=context.config_path,
                                      where="pipeline")
                m = resolve(ref, cache_dir=self.model_cache)
                family = ref.source if ref.kind == "file" else _family(ref.source)
                out[stage.name][variant] = VariantModel(m.path, m.input_size, f"{family}@{m.input_size}")
        return out

    def start(self, context: RunContext) -> None:
        if context.workload is None:
            raise ConfigError("the local backend replays a workload: the run has none", where="workload")
        if context.initial is None:
            raise ConfigError("the local backend needs the starting configuration", path=context.config_path,
                              where="initial")
        problem = context.problem
        self.stage_names = tuple(problem.pipeline.stage_names)
        unknown = sorted(set(self.external) - set(self.stage_names))
        if unknown:
            raise ConfigError(f"no stage named {unknown[0]!r} (stages: {', '.join(self.stage_names)})",
                              path=context.config_path, where=f"local.stages.{unknown[0]}")
        self.sla_s = problem.sla_s
        self._problem = problem
        drop = self.drop_limit_s if self.drop_limit_s is not None else self.sla_s
        usable = sorted(os.sched_getaffinity(0))
        for name, sc in zip(self.stage_names, context.initial):
            _check_cores(name, sc, usable, context)
        models = self._models(context)
        if self.prometheus_section is not None:
            from ipa_ext.monitoring.prometheus import parse_prometheus_settings

            self._reader = parse_prometheus_settings(self.prometheus_section, path=context.config_path).rate_reader()
        self._place_driver(usable, context)
        try:
            self.pipeline = LocalPipeline(self.stage_names, models, self.external, drop_limit_s=drop,
                                          max_batch_time_s=self.max_batch_wait_s, usable_cores=usable,
                                          router_port=self.router_port, driver_cores=self.driver.cores)
        except OSError as exc:
            self.close()
            raise ConfigError(f"cannot serve on 127.0.0.1:{self.router_port}: {exc.strerror or exc}",
                              path=context.config_path, where="local.router_port") from None
        try:
            self.pipeline.start(dict(zip(self.stage_names, context.initial)))
        except ExternalError as exc:
            self.close()
            raise ConfigError(str(exc), path=context.config_path, where=f"local.stages.{exc.name}") from None
        except IpaExtError as exc:
            self.close()
            raise ConfigError(f"cannot start the servers: {exc}", path=context.config_path, where="initial") from None
        self._config = tuple(context.initial)
        self._seconds = RequestSeconds(self.stage_names, self.sla_s)
        self._seconds.configure(0.0, self._config, _accuracy(problem, self._config)[0])
        counts = scaled_counts(context.workload.rates.tolist(), self.rate_scale)
        timeout = self.request_timeout_s or drop + 30.0
        self.pipeline.start_load(counts, spread=self.spread, seed=self.seed, duration_s=self.duration_s,
                                 timeout_s=timeout)

    def _place_driver(self, usable: list[int], context: RunContext) -> None:
        """Pin this process (router, load generator, loop) apart when a core is spare; else say it shares."""
        need = sum(_reserved(sc) for n, sc in zip(self.stage_names, context.initial) if n not in self.external)
        self.driver = place_driver(usable, need, self.pin_driver)
        self._usable = set(usable)
        if self.driver.pinned:
            self._driver_masks = pin_process(self.driver.cores)
        else:
            log.info("local: the ipa-ext process (router, load generator, loop) shares the %d usable cores "
                        "with the replicas (%s): measured latencies include that contention", len(usable),
                        self.driver.reason)

    def _driver_shares(self) -> bool:
        """Whether the driver shares a core with a replica now."""
        counts = self._need().allocator.replica_counts()
        if self.driver.pinned:
            shared = any(counts.get(c, 0) for c in self.driver.cores)
        else:
            shared = all(n > 0 for n in counts.values())
        self._driver_ever_shared |= shared
        return shared

    # ------------------------------------------------------------------ the interface

    def _need(self) -> LocalPipeline:
        if self.pipeline is None:
            raise RuntimeError("local backend used before start()")
        return self.pipeline

    def now_s(self) -> float:
        return self._need().now_s()

    def finished(self) -> bool:
        """True once an interval was taken after the load ended (so no finished request is left untaken)."""
        self._need()
        return self._drained

    def observe_rates(self, duration_s: float) -> Sequence[float]:
        if self._reader is not None:
            window = self._reader.read(duration_s)
            hold = max(1, int(round(self._reader.step_s)))
            return [float(r) for r in window.rates_rps for _ in range(hold)]
        return self._need().router.arrivals_per_second(duration_s)

    def current_configuration(self) -> Configuration:
        assert self._config is not None
        return self._config

    def apply(self, config: Configuration) -> tuple[bool, ...]:
        pipe = self._need()
        ok, reports = [], {}
        for name, new, old in zip(self.stage_names, config, self._config or config):
            if new == old:
                ok.append(True)
                continue
            try:
                usable = list(pipe.allocator.usable)
                if _cores(new) > len(usable):
                    raise IpaExtError(f"{_cores(new)} cores per replica; {len(usable)} usable")
                reports[name] = pipe.apply(name, new)
                ok.append(True)
            except IpaExtError as exc:
                reports[name] = {"error": str(exc)}
                ok.append(False)
        before = self._config
        self._config = tuple(n if good else o for n, o, good in zip(config, self._config or config, ok))
        if self._seconds is not None and self._config != before:
            self._seconds.configure(pipe.now_s(), self._config, _accuracy(self._problem, self._config)[0])
        self._apply_reports = reports
        return tuple(ok)

    def advance(self, duration_s: float, stop: threading.Event | None = None) -> IntervalOutcome:
        pipe = self._need()
        end = pipe._last_s + duration_s
        while pipe.now_s() < end and not pipe.load_finished():
            if stop is not None and stop.wait(min(0.2, max(0.0, end - pipe.now_s()))):
                break
            if stop is None:
                threading.Event().wait(min(0.2, max(0.0, end - pipe.now_s())))
        self._drained = pipe.load_finished()  # every request has its record before the client's answer
        iv = pipe.interval()
        return self._outcome(iv)

    def _outcome(self, iv: Any) -> IntervalOutcome:
        served = [d for d in iv.done if d.status == "served"]
        if self._seconds is not None:
            self._seconds.record(iv.done)
        lat = [d.latency_s for d in served]
        self._latencies.extend(lat)
        span = max(0.0, iv.end_s - iv.start_s)
        cfg = self._config or ()
        failed = sum(1 for d in iv.done if d.status == "failed")
        extra: dict[str, Any] = {
            "failed": failed, "restarts": iv.restarts, "load": iv.load,
            "dropped_by_stage": _count_by_stage(iv.done),
            "oversubscribed": self._need().allocator.oversubscribed or self._driver_shares(),
            "driver": {"cores": list(self.driver.cores), "shares_cores": self._driver_shares()},
            "cores_used": self._need().allocator.replica_counts(),
            "server_pids": self._need().server_pids(),
        }
        if self._apply_reports:
            extra["reconfiguration"] = self._apply_reports
            self._apply_reports = {}
        extra["served_by_variant"] = iv.served_by_variant
        if iv.votes:
            extra["ensemble_votes"] = iv.votes
        for stage, counts in iv.served_by_variant.items():
            total = self._served_total.setdefault(stage, {})
            for v, n in counts.items():
                total[v] = total.get(v, 0) + n
        acc_pct, acc = _accuracy(self._problem, cfg, iv.served_by_variant) if cfg and self._problem is not None \
            else (None, None)
        return IntervalOutcome(
            start_s=iv.start_s, end_s=iv.end_s, arrivals=float(iv.arrivals), served=float(len(served)),
            dropped=float(len(iv.done) - len(served)), late=float(sum(1 for x in lat if x > self.sla_s)),
            queued=float(iv.queued), busy_cpu_s_by_stage=iv.busy_cpu_s,
            reserved_core_s_by_stage={n: _reserved(sc) * span for n, sc in zip(self.stage_names, cfg)},
            latency_mean_s=float(np.mean(lat)) if lat else None, latency_max_s=max(lat) if lat else None,
            accuracy_pct=acc_pct, accuracy=acc, extra=extra,
        )

    def per_second(self) -> RequestSeconds | None:
        """Real requests per second (:mod:`ipa_ext.serving.seconds`); readable after :meth:`close`."""
        if self._seconds is None or self.pipeline is None:
            return None
        self._seconds.finish(self.pipeline.router.arrival_counts(), self.pipeline._last_s)
        return self._seconds

    def latency_quantiles(self, qs: Sequence[float]) -> dict[float, float | None] | None:
        if not self._latencies:
            return {q: None for q in qs}
        xs = np.asarray(self._latencies)
        return {q: float(np.quantile(xs, q)) for q in qs}

    def energy_scope(self) -> tuple[Any, str]:
        """The servers' cumulative CPU seconds, for a process-tree estimate (see docs/local.md)."""
        from ipa_ext.profiler.energy import WorkerCpu

        cpu = WorkerCpu()

        def counter() -> float:
            if self.pipeline is not None:
                for pid in self.pipeline.server_pids():
                    cpu.add(pid)
            return cpu()

        return counter, "process trees of the local backend's servers"

    def run_report(self) -> dict[str, Any]:
        pipe = self.pipeline
        if pipe is None:
            return {}
        s = pipe.load
        return {"restarts": {n: st.restarts for n, st in pipe.stages.items()},
                "served_by_variant": self._served_total,
                "oversubscribed": pipe.allocator.ever_shared or self._driver_ever_shared,
                "driver": {"cores": list(self.driver.cores), "pinned": self.driver.pinned,
                           "reason": self.driver.reason, "shared_cores": self._driver_ever_shared},
                "load": {"sent": s.sent, "ok": s.ok, "rejected": s.rejected, "timeouts": s.timeouts,
                         "errors": s.errors, "rate_scale": self.rate_scale, "spread": self.spread}}

    def close(self) -> None:
        if self.pipeline is not None:
            self._driver_shares()
            self.pipeline.close()
        if self._driver_masks is not None:
            restore_process(self._driver_masks, self._usable)
            self._driver_masks = None


def _family(zoo_name: str) -> str:
    from ipa_ext.inference.zoo import entry

    return entry(zoo_name).family


def _cores(sc: StageConfig) -> int:
    """The most cores one replica of the stage asks for (over a mix's parts or an ensemble's members)."""
    return max(p.cores for p in layout(sc)[1])


def _reserved(sc: StageConfig) -> int:
    """The cores every replica of the stage reserves together."""
    return sum(p.cores * p.replicas for p in layout(sc)[1])


def _check_cores(name: str, sc: StageConfig, usable: list[int], context: RunContext) -> None:
    if _cores(sc) > len(usable):
        raise ConfigError(f"stage {name!r} asks for {_cores(sc)} cores per replica; this machine lets ipa-ext "
                          f"use {len(usable)}", path=context.config_path, where=f"initial.{name}.cpu")


def _stage_weights(stage: Any, sc: StageConfig, served: Mapping[str, int] | None) -> dict[str, float]:
    """Which variants a stage's accuracy is weighted over: the requests each served this interval (a mix),
    else the shares (an ensemble is scored by :func:`_accuracy` with the majority-vote model)."""
    kind, parts = layout(sc)
    counts = {v: float(n) for v, n in (served or {}).items() if n > 0 and v in stage.variant_names}
    if counts:
        return counts
    weights: dict[str, float] = {}
    for p in parts:
        weights[p.variant] = weights.get(p.variant, 0.0) + p.share
    return weights if sum(weights.values()) > 0 else {sc.variant: 1.0}


def _accuracy(problem: Any, config: Configuration,
              served: Mapping[str, Mapping[str, int]] | None = None) -> tuple[float, float]:
    """The configuration's accuracy: the stages' mean in percent, and the objective's term (as the simulation);
    a mixed stage's is weighted by the requests each variant served (``served``), else by the shares; an
    ensemble's is modelled (a majority vote of independent members, ``ipa_ext.problem.ensemble``)."""
    stages = problem.pipeline.stages
    pcts, terms = [], []
    for i, (st, sc) in enumerate(zip(stages, config)):
        if layout(sc)[0] == ENSEMBLE:  # the model cocktail decides with (majority vote, independent errors)
            names = [m.variant for m in stage_members(sc)]
            pcts.append(ensemble_accuracy_pct(st, names))
            terms.append(ensemble_score(problem, i, names))
            continue
        w = _stage_weights(st, sc, (served or {}).get(st.name))
        total = sum(w.values())
        pcts.append(sum(n * st.variant(v).accuracy for v, n in w.items()) / total)
        terms.append(sum(n * problem.stage_accuracies[i][v] for v, n in w.items()) / total)
    method = problem.settings.accuracy_method
    term = math.prod(terms) if method == "multiply" else sum(terms) / len(terms) if method == "average" else sum(terms)
    return float(sum(pcts) / len(stages)), float(term)


def _count_by_stage(done: Sequence[Any]) -> dict[str, int]:
    out: dict[str, int] = {}
    for d in done:
        if d.status != "served" and d.stage is not None:
            out[d.stage] = out.get(d.stage, 0) + 1
    return out


@hookimpl
def register_backends(register) -> None:
    register("local", LocalBackend)
