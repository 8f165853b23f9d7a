"""The adapter's own metrics, exported through prometheus-client.

One :class:`AdapterMetrics` per adapter, on its own registry (never the global one):

==========================================  =========  ===============================================
metric                                      type       meaning
==========================================  =========  ===============================================
``ipa_ext_decision_seconds``                histogram  time the optimizer took per decision
``ipa_ext_observed_rate_rps``               gauge      latest request rate read from the backend
``ipa_ext_predicted_rate_rps``              gauge      rate the last decision provisioned for
``ipa_ext_stage_replicas{stage}``           gauge      chosen replicas per stage
``ipa_ext_stage_batch{stage}``              gauge      chosen batch size per stage
``ipa_ext_stage_cpu_cores{stage}``          gauge      chosen CPU cores per replica
``ipa_ext_stage_variant_info{stage,variant}`` info     chosen variant (one series per stage)
``ipa_ext_objective``                       gauge      objective value of the chosen configuration
``ipa_ext_objective_term{term}``            gauge      its unweighted terms (accuracy, cost, batch, ...)
``ipa_ext_adaptations_total{outcome}``      counter    intervals by outcome (applied, unchanged, ...)
``ipa_ext_stage_apply_failures_total{stage}`` counter  stages whose change failed
``ipa_ext_faults_total{component}``         counter    transient faults (kubernetes, prometheus, ...)
==========================================  =========  ===============================================

Energy counters and power gauges (``ipa_ext_energy_joules_total``, ``ipa_ext_power_watts``)
come from the energy collector (:class:`ipa_ext.energy.export.EnergyMetrics`), added with
:meth:`AdapterMetrics.add_collector`. :meth:`AdapterMetrics.record_step` updates everything
from one adaptation-log line, so the metrics say what the log says. Labels are stage names,
objective names and fixed outcome words, so cardinality stays low.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info, start_http_server

from ..model import Configuration, StageConfig

ENERGY_DOMAIN = "all"
"""The ``domain`` label of per-interval energy from the loop: the sum over the sources' root
domains (the machine's package and DRAM, or the pipeline's pods for Kepler)."""

DECISION_BUCKETS_S = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
OUTCOMES = ("applied", "unchanged", "partial", "failed", "infeasible", "skipped")


@dataclass
class MetricsServer:
    """An HTTP endpoint serving one registry; :meth:`close` stops it."""

    server: Any
    thread: Any

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


class AdapterMetrics:
    """The adapter's metrics for a pipeline with ``stages`` (see the module docstring)."""

    def __init__(self, stages: Sequence[str], registry: CollectorRegistry | None = None) -> None:
        self.stages = tuple(stages)
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.decision_seconds = Histogram(
            "ipa_ext_decision_seconds", "Time the optimizer took to decide, per decision",
            ["optimizer"], buckets=DECISION_BUCKETS_S, registry=r)
        self.observed_rate = Gauge("ipa_ext_observed_rate_rps", "Latest request rate read from the backend",
                                   registry=r)
        self.predicted_rate = Gauge("ipa_ext_predicted_rate_rps",
                                    "Request rate the last decision provisioned for", registry=r)
        self.replicas = Gauge("ipa_ext_stage_replicas", "Chosen replicas per stage", ["stage"], registry=r)
        self.batch = Gauge("ipa_ext_stage_batch", "Chosen batch size per stage", ["stage"], registry=r)
        self.cpu = Gauge("ipa_ext_stage_cpu_cores", "Chosen CPU cores per replica", ["stage"], registry=r)
        self.variant = Info("ipa_ext_stage_variant", "Chosen model variant per stage", ["stage"], registry=r)
        self.objective = Gauge("ipa_ext_objective", "Objective value of the chosen configuration", registry=r)
        self.objective_term = Gauge("ipa_ext_objective_term",
                                    "Unweighted objective terms of the chosen configuration", ["term"],
                                    registry=r)
        self.adaptations = Counter("ipa_ext_adaptations", "Adaptation intervals by outcome", ["outcome"],
                                   registry=r)
        self.apply_failures = Counter("ipa_ext_stage_apply_failures", "Stages whose change failed",
                                      ["stage"], registry=r)
        self.faults = Counter("ipa_ext_faults", "Transient faults by component", ["component"], registry=r)
        for o in OUTCOMES:
            self.adaptations.labels(o)
        for s in self.stages:
            self.apply_failures.labels(s)

    def add_collector(self, collector: Any) -> None:
        """Expose another collector (for example the energy collector) on the same endpoint."""
        self.registry.register(collector)

    def record_decision(self, optimizer: str, decision_time_s: float) -> None:
        self.decision_seconds.labels(optimizer).observe(max(0.0, decision_time_s))

    def record_rates(self, observed_rps: float | None, predicted_rps: float | None) -> None:
        if observed_rps is not None:
            self.observed_rate.set(observed_rps)
        if predicted_rps is not None:
            self.predicted_rate.set(predicted_rps)

    def record_configuration(self, config: Configuration) -> None:
        """The configuration now chosen (or kept), one value per stage."""
        for stage, sc in zip(self.stages, config, strict=True):
            self.replicas.labels(stage).set(sc.replicas)
            self.batch.labels(stage).set(sc.batch)
            self.cpu.labels(stage).set(sc.cpu)
            self.variant.labels(stage).info({"variant": sc.variant})

    def record_objective(self, objective: float | None, terms: Mapping[str, float]) -> None:
        if objective is not None:
            self.objective.set(objective)
        for name, value in terms.items():
            self.objective_term.labels(name).set(value)

    def record_outcome(self, outcome: str, failed_stages: Sequence[str] = ()) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r} (known: {', '.join(OUTCOMES)})")
        self.adaptations.labels(outcome).inc()
        for s in failed_stages:
            self.apply_failures.labels(s).inc()

    def record_fault(self, component: str) -> None:
        self.faults.labels(component).inc()

    def record_step(self, record: Mapping[str, Any], energy: Any = None) -> None:
        """Every metric from one adaptation-log line (:class:`ipa_ext.adapt.adapter.Adapter`'s ``on_record``).

        ``energy`` is an :class:`~ipa_ext.energy.export.EnergyMetrics` that receives the
        interval's joules per stage (domain ``all``); faults are counted by the caller
        (:meth:`record_fault`), as they also happen outside steps.
        """
        d = record.get("decision") or {}
        kind = d.get("kind")
        if kind == "optimizer" and not d.get("memoised") and d.get("decision_time_s") is not None:
            self.record_decision(str(d.get("optimizer")), float(d["decision_time_s"]))
        mon = record.get("monitored") or {}
        self.record_rates(mon.get("last_rps"), record.get("predicted_rps"))
        cfg = record.get("config")
        if cfg:
            self.record_configuration(tuple(
                StageConfig(str(c["variant"]), float(c["cpu"]), int(c["batch"]), int(c["replicas"]))
                for c in (cfg[s] for s in self.stages)))
        obj = record.get("objective")
        if obj:
            self.record_objective(obj.get("value"), obj.get("terms") or {})
        if kind == "optimizer" and record.get("fault") is None:
            ok = list(record.get("change_successful") or [])
            failed = [s for s, good in zip(self.stages, ok) if not good]
            if not d.get("feasible"):
                self.record_outcome("infeasible")
            elif failed:
                self.record_outcome("failed" if len(failed) == len(self.stages) else "partial", failed)
            else:
                self.record_outcome("applied" if d.get("config_changed") else "unchanged")
        elif record.get("fault") is not None:
            self.record_outcome("skipped")
        e = record.get("energy")
        if energy is not None and e:
            iv = record.get("interval") or {}
            span = float(iv.get("end_s", 0.0)) - float(iv.get("start_s", 0.0))
            source, quality = str(e.get("source")), str(e.get("quality"))
            parts = dict(e.get("stages_j") or {})
            for extra in ("idle", "unattributed"):
                if e.get(f"{extra}_j") is not None:
                    parts[extra] = e[f"{extra}_j"]
            parts[""] = e.get("total_j", 0.0)
            for stage, j in parts.items():
                j = max(0.0, float(j))
                energy.add(source, ENERGY_DOMAIN, j, j / span if span > 0 else None, stage=stage,
                           quality=quality)

    def serve(self, port: int, addr: str = "0.0.0.0") -> MetricsServer:
        """Serve ``/metrics`` over HTTP (port 0 picks a free port)."""
        server, thread = start_http_server(port, addr=addr, registry=self.registry)
        return MetricsServer(server, thread)
