"""The ``kubernetes`` backend: the adapter loop on a real cluster, its load read from Prometheus.

Each pipeline stage is a workload (a Deployment or a SeldonDeployment, see
:mod:`ipa_ext.k8s`). The backend reads the running configuration from the API
server every interval, applies the loop's choice with patches, and reads the
request rate from Prometheus (:class:`ipa_ext.monitoring.prometheus.RateReader`). Its
options are the config's ``kubernetes:`` section, the ``prometheus:`` section
(as option ``prometheus``) and ``dry_run`` (``ipa-ext adapt --dry-run``: the
patches are computed and reported, never sent).

Faults, as the loop sees them:

* at start, every configuration problem ends the run (a kubeconfig that does
  not load, 401, 403, a stage matching no workload, an env var missing from the
  container spec, a variant the profiles do not know, a PromQL syntax error);
  an unreachable API server or Prometheus is transient and the loop retries;
* during the run, Prometheus or the API server being down, an empty rate
  series and a rejected token are transient: the configuration stays and the
  loop tries again next interval. A problem a person must fix (401, 403, a
  workload or env var that disappeared) may last ``max_failed_intervals``
  intervals in a row (tokens rotate), then the run ends with its message.

A stage configuration that splits a stage over several variants (a mix, from ``infadapter`` or
``clover``) or serves it with several at once (an ensemble, from ``cocktail``) is refused with one
error line naming the policy: each stage is one workload running one variant, so the backend would
otherwise serve only the main part. Mixes and ensembles run on the ``local`` and ``simulation``
backends.

An interval's outcome has the arrivals the rate query counted (NaN when
Prometheus could not say) and the cores the configuration requests; served,
dropped and late requests are not observed on a cluster and are NaN. The
latest apply report (per stage: patch, attempts, error) is in ``extra``.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Mapping, Sequence

from ipa_ext import hookimpl
from ipa_ext.backends import Backend, IntervalOutcome, RunContext
from ipa_ext.errors import ConfigError, IpaExtError, TransientError
from ipa_ext.k8s import ApplyReport, ClusterSettings, PipelineCluster, parse_settings
from ipa_ext.k8s.cluster import KubeCredentialsError, KubePermissionError
from ipa_ext.model import Configuration
from ipa_ext.problem.mix import stage_members, stage_parts
from ipa_ext.monitoring.prometheus import PrometheusSettings, RateReader, parse_prometheus_settings

NAN = math.nan


class NoLoadData(TransientError):
    """The rate query returned no usable samples (the router has no series yet, or only NaN)."""

    component = "prometheus"


class StillFailing(TransientError):
    """A configuration problem that appeared mid-run; tolerated for a few intervals."""

    component = "kubernetes"


class KubernetesBackend(Backend):
    """See the module docstring."""

    name = "kubernetes"
    live = True
    config_sections = ("prometheus",)

    def __init__(self, prometheus: Mapping[str, Any] | None = None, dry_run: bool = False,
                 **section: Any) -> None:
        if not isinstance(dry_run, bool):
            raise ConfigError(f"expected true or false, got {dry_run!r}", where="dry_run")
        self.section = dict(section)
        self.prometheus_section = prometheus
        self.dry_run = dry_run
        # Check the sections' shape now (one-line errors before anything runs); stage
        # names are checked against the pipeline in start().
        stages = section.get("stages")
        parse_settings(self.section, list(stages) if isinstance(stages, Mapping) else [])
        self.prom: PrometheusSettings = parse_prometheus_settings(prometheus)
        if self.prom.step_s != int(self.prom.step_s):
            raise ConfigError(f"must be a whole number of seconds for the kubernetes backend, got "
                              f"{self.prom.step_s:g}", where="prometheus.step_s")
        self.settings: ClusterSettings | None = None
        self.cluster: PipelineCluster | None = None
        self.reader: RateReader | None = None
        self.stage_names: tuple[str, ...] = ()
        self._t0 = 0.0
        self._interval_start_s = 0.0
        self._config: Configuration | None = None
        self._report: ApplyReport | None = None
        self._pod_selectors: dict[str, Any] = {}
        self._streak = 0
        self._failed_this_interval = False
        self._context: RunContext | None = None

    # ------------------------------------------------------------------ start

    def start(self, context: RunContext) -> None:
        path = context.config_path
        self._context = context
        self.stage_names = tuple(context.problem.pipeline.stage_names)
        if self.settings is None:
            self.settings = parse_settings(self.section, self.stage_names, path=path, base_dir=context.base_dir)
            self.prom = parse_prometheus_settings(self.prometheus_section, path=path)
        if self.cluster is None:
            self.cluster = PipelineCluster.from_settings(self.settings)
        if self.reader is None:
            self.reader = self.prom.rate_reader()
        try:  # 401/403/missing: ConfigError; unreachable: transient
            running = self.cluster.read_configuration()
        except (KubeCredentialsError, KubePermissionError) as exc:
            if exc.path is not None or path is None:
                raise
            where = "kubernetes.kubeconfig" if isinstance(exc, KubeCredentialsError) else "kubernetes"
            raise type(exc)(exc.detail, path=path, where=where) from None
        self._check_variants(context, running)
        self._pod_selectors = self.cluster.pod_selectors()
        self.reader.check()  # a PromQL syntax error ends the run now; Prometheus down is transient
        self._config = running
        self._t0 = time.monotonic()
        self._interval_start_s = 0.0

    def _check_variants(self, context: RunContext, config: Configuration) -> None:
        assert self.settings is not None
        for stage, mapping, sc in zip(context.problem.pipeline.stages, self.settings.stages, config):
            if sc.variant not in stage.variant_names:
                raise ConfigError(
                    f"stage {stage.name!r}: {mapping.describe} runs variant {sc.variant!r} "
                    f"({mapping.variant_env}), which the profiles do not have (variants: "
                    f"{', '.join(stage.variant_names)})", path=context.config_path, where=mapping.where or None)

    # ------------------------------------------------------------------ faults

    def _config_problem(self, exc: ConfigError) -> None:
        """A problem a person must fix appeared mid-run: tolerate it for a few intervals."""
        assert self.settings is not None
        if not self._failed_this_interval:
            self._failed_this_interval = True
            self._streak += 1
        if self._streak >= self.settings.max_failed_intervals:
            raise ConfigError(f"{exc} (for {self._streak} intervals in a row)") from None

    # ------------------------------------------------------------------ the interface

    def now_s(self) -> float:
        return time.monotonic() - self._t0

    def finished(self) -> bool:
        return False  # a cluster runs until the loop is stopped

    def _need(self) -> tuple[PipelineCluster, RateReader]:
        if self.cluster is None or self.reader is None:
            raise RuntimeError("kubernetes backend used before start()")
        return self.cluster, self.reader

    def current_configuration(self) -> Configuration:
        cluster, _ = self._need()
        try:
            self._config = cluster.read_configuration()
        except ConfigError as exc:
            self._config_problem(exc)
            assert self.settings is not None
            raise StillFailing(f"{exc} (interval {self._streak} of {self.settings.max_failed_intervals} "
                               "before the run ends)") from None
        return self._config

    def observe_rates(self, duration_s: float) -> Sequence[float]:
        _, reader = self._need()
        window = reader.read(duration_s)
        if window.empty:
            why = f" ({'; '.join(window.problems)})" if window.problems else ""
            raise NoLoadData(f"prometheus: the rate query {reader.query!r} returned no samples over the "
                             f"last {duration_s:g} s{why}")
        return _per_second(window.rates_rps, reader.step_s)

    def _refuse_several_variants(self, config: Configuration) -> None:
        """A mix or an ensemble cannot be one workload's patch: one error line naming the policy."""
        ctx = self._context
        for name, sc in zip(self.stage_names, config):
            parts, members = [p.variant for p, _ in stage_parts(sc)], [m.variant for m in stage_members(sc)]
            if len(parts) == 1 and len(members) == 1:
                continue
            what = f"a mix of {', '.join(parts)}" if len(parts) > 1 else f"an ensemble of {', '.join(members)}"
            policy = f"policy {ctx.policy!r}" if ctx is not None and ctx.policy else "the policy"
            raise ConfigError(f"{policy} serves stage {name!r} with {what}; the kubernetes backend runs one variant "
                              "per stage (one workload each): run this policy on the local or simulation backend",
                              path=ctx.config_path if ctx is not None else None, where="optimizer")

    def apply(self, config: Configuration) -> tuple[bool, ...]:
        cluster, _ = self._need()
        self._refuse_several_variants(config)
        report = cluster.apply(config, dry_run=self.dry_run)
        self._report = report
        if not self.dry_run and report.ok:
            self._config = config
        fatal = report.fatal
        if fatal is not None:
            self._config_problem(ConfigError(str(fatal.error)))
        return tuple(r.ok for r in report.results)

    def advance(self, duration_s: float, stop: threading.Event | None = None) -> IntervalOutcome:
        _, reader = self._need()
        start = self._interval_start_s
        wait = start + duration_s - self.now_s()
        if wait > 0:
            if stop is not None:
                stop.wait(wait)
            else:
                time.sleep(wait)
        end = self.now_s()
        self._interval_start_s = end
        span = max(0.0, end - start)
        extra: dict[str, Any] = {"dry_run": self.dry_run}
        arrivals = NAN
        try:
            window = reader.read(span)
            if not window.empty:
                arrivals = sum(window.rates_rps) / len(window.rates_rps) * span
            else:
                extra["arrivals"] = "no samples"
        except IpaExtError as exc:  # already logged by the step that needed it
            extra["arrivals"] = str(exc)
        if self._report is not None:
            extra["apply"] = self._report.as_dict()
            self._report = None
        if not self._failed_this_interval:
            self._streak = 0
        self._failed_this_interval = False
        cfg = self._config
        reserved = {n: (sc.cpu * sc.replicas * span) for n, sc in zip(self.stage_names, cfg)} if cfg else {}
        return IntervalOutcome(
            start_s=start, end_s=end, arrivals=arrivals, served=NAN, dropped=NAN, late=NAN, queued=NAN,
            busy_cpu_s_by_stage={}, reserved_core_s_by_stage=reserved, extra=extra,
        )

    def energy_source_options(self, name: str) -> Mapping[str, Any]:
        """The ``kepler`` source's Prometheus, namespace, stages and pod lister, from this backend."""
        if name != "kepler" or self.cluster is None:
            return {}
        return {
            "url": self.prom.url,
            "timeout_s": self.prom.timeout_s,
            "bearer_token_file": None if self.prom.bearer_token_file is None else str(self.prom.bearer_token_file),
            "namespace": self.cluster.namespace,
            "stages": dict(self._pod_selectors),
            "pods": self.cluster.list_pods,
        }

    def close(self) -> None:
        if self.cluster is not None:
            self.cluster.close()


def _per_second(rates: Sequence[float], step_s: float) -> list[float]:
    """Samples ``step_s`` apart as a per-second series (each held for its step)."""
    hold = max(1, int(round(step_s)))
    return [float(r) for r in rates for _ in range(hold)]


@hookimpl
def register_backends(register) -> None:
    register("kubernetes", KubernetesBackend)
