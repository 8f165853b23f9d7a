"""The ``kepler`` energy source: per-stage joules from Kepler's counters in Prometheus.

Kepler (sustainable-computing.io) already splits each node's RAPL energy over pods by
CPU-time share. This source reads its counters from Prometheus and adds them up per
pipeline stage, finding each stage's pods through their labels (the Kubernetes API's pod
list with the stage's selector). It reads, in order of preference:

* ``kepler_pod_cpu_joules_total{zone="package"}`` (Kepler 0.10+, by pod name);
* ``kepler_container_cpu_joules_total{zone="package"}`` (Kepler 0.10+, by ``pod_id``, the pod UID);
* ``kepler_container_package_joules_total`` (the names before 0.10, by pod name; its
  ``mode`` series, dynamic and idle, partition the package energy and are added).

Only the package zone is used. Zones overlap (package contains core and uncore) and are
never summed. Counters are followed series by series: a restart (a value that went down)
counts from zero, a series that appears after the first read counts in full, and a failed
read keeps the totals and flags the stages as gaps (a configuration problem, such as a
Role without ``list`` on pods, is an error on the first read only). The joules are ``measured`` (Kepler
0.10+ reads RAPL); set ``quality: estimated`` where Kepler runs its power model instead
(pre-0.10 on machines without RAPL).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from ipa_ext import hookimpl
from ipa_ext.energy.source import Domain, EnergySource, ProbeResult, Reading, Status
from ipa_ext.errors import ConfigError, IpaExtError
from ipa_ext.k8s.values import Selector, parse_selector
from ipa_ext.monitoring.prometheus import PrometheusAPI, Series

log = logging.getLogger("ipa_ext.kepler")

ZONE = "package"
POD_METRIC = "kepler_pod_cpu_joules_total"
CONTAINER_METRIC = "kepler_container_cpu_joules_total"
LEGACY_METRIC = "kepler_container_package_joules_total"
METRICS = ("pod", "container", "legacy")

PodLister = Callable[[Selector], Sequence[Mapping[str, Any]]]


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _regex_alternatives(values: Iterable[str]) -> str:
    return "|".join(re.escape(v) for v in sorted(values))


class KeplerSource(EnergySource):
    """Per-stage package joules from Kepler (see the module docstring).

    ``stages`` maps each stage to the label selector of its pods. ``pods`` lists pods for a
    selector (default: the Kubernetes API through ``kubeconfig``/in-cluster credentials).
    ``api`` is the Prometheus API (default: one at ``url``).
    """

    name = "kepler"
    scope = "each stage's pods, as Kepler splits the node's package energy"
    quality = "measured"
    resolution_s = 3.0  # Kepler's default sampling interval

    def __init__(
        self,
        url: str | None = None,
        stages: Mapping[str, str | Selector] | None = None,
        namespace: str | None = None,
        metric: str = "auto",
        quality: str = "measured",
        timeout_s: float = 5.0,
        kubeconfig: str | None = None,
        context: str | None = None,
        in_cluster: str = "auto",
        bearer_token_file: str | None = None,
        *,
        api: PrometheusAPI | None = None,
        pods: PodLister | None = None,
    ) -> None:
        if metric not in ("auto", *METRICS):
            raise ValueError(f"metric must be auto, pod, container or legacy, got {metric!r}")
        if quality not in ("measured", "estimated"):
            raise ValueError(f"quality must be measured or estimated, got {quality!r}")
        if api is None and not url:
            raise ValueError("url (the Prometheus server with Kepler's metrics) is required")
        if not stages:
            raise ValueError("stages (stage -> pod label selector) is required")
        self.api = api or PrometheusAPI(str(url), timeout_s=timeout_s, bearer_token_file=bearer_token_file,
                                        where="kepler")
        self.stages: dict[str, Selector] = {}
        for stage, sel in stages.items():
            self.stages[str(stage)] = sel if isinstance(sel, Selector) else parse_selector(str(sel))
            if not self.stages[str(stage)]:
                raise ValueError(f"stage {stage!r}: empty pod selector would match every pod")
        self.namespace = namespace
        self.metric = metric
        self.quality = quality  # type: ignore[assignment]
        self._kube = {"kubeconfig": kubeconfig, "context": context, "in_cluster": in_cluster}
        self._pods = pods
        self._used: str | None = None if metric == "auto" else metric
        self._last: dict[tuple[tuple[str, str], ...], float] = {}
        self._totals = {s: 0.0 for s in self.stages}
        self._first = True
        self._lock = threading.Lock()

    # ---------------------------------------------------------------- collaborators

    def _pod_lister(self) -> PodLister:
        if self._pods is None:
            from ipa_ext.k8s.cluster import PipelineCluster, connect
            from ipa_ext.k8s.settings import ClusterSettings

            settings = ClusterSettings(
                stages=(), namespace=self.namespace,
                kubeconfig=None if self._kube["kubeconfig"] is None else Path(
                    str(self._kube["kubeconfig"])).expanduser(),
                context=self._kube["context"], in_cluster=str(self._kube["in_cluster"]).lower(),
            )
            client, ns = connect(settings)
            self.namespace = self.namespace or ns
            cluster = PipelineCluster(settings, client, self.namespace)
            self._pods = cluster.list_pods
        return self._pods

    # ---------------------------------------------------------------- the interface

    def domains(self) -> list[Domain]:
        return [Domain(f"{stage}/{ZONE}", ZONE) for stage in self.stages]

    def stage_of(self, domain: str) -> str:
        """The stage a domain id belongs to (``crop/package`` -> ``crop``)."""
        return domain.rsplit("/", 1)[0]

    def probe(self) -> ProbeResult:
        try:
            found = [m for m in METRICS if self._series_exist(m)]
        except IpaExtError as exc:
            return ProbeResult(Status.ABSENT, f"Prometheus not usable: {exc}",
                               "check the kepler source's url and that Prometheus is up")
        except Exception as exc:  # probe never raises
            return ProbeResult(Status.ABSENT, f"{type(exc).__name__}: {exc}", "check the kepler options")
        if not found:
            return ProbeResult(Status.ABSENT, "no Kepler energy counters in Prometheus",
                               "deploy Kepler and let Prometheus scrape it")
        return ProbeResult(Status.AVAILABLE, f"Kepler metrics found: {', '.join(found)}")

    def _series_exist(self, metric: str) -> bool:
        name = {"pod": POD_METRIC, "container": CONTAINER_METRIC, "legacy": LEGACY_METRIC}[metric]
        return bool(self.api.query(f"count({name})"))

    def _query(self, metric: str, pods: Mapping[str, list[Mapping[str, Any]]]) -> list[Series]:
        ns = self.namespace
        if metric == "pod":
            sel = f'zone="{ZONE}"' + (f",pod_namespace={_quote(ns)}" if ns else "")
            return self.api.query(f"{POD_METRIC}{{{sel}}}", field="kepler")
        if metric == "container":
            uids = {str((p.get("metadata") or {}).get("uid")) for ps in pods.values() for p in ps}
            uids.discard("None")
            if not uids:
                return []
            return self.api.query(
                f'{CONTAINER_METRIC}{{zone="{ZONE}",pod_id=~{_quote(_regex_alternatives(uids))}}}',
                field="kepler")
        sel = f"container_namespace={_quote(ns)}" if ns else ""
        return self.api.query(f"{LEGACY_METRIC}{{{sel}}}", field="kepler")

    def _stage_of_series(self, metric: str, labels: Mapping[str, str],
                         index: Mapping[str, str]) -> str | None:
        if metric in ("pod", "container") and labels.get("zone", ZONE) != ZONE:
            return None  # never sum zones, whatever the query returned
        key = labels.get("pod_id") if metric == "container" else labels.get("pod_name")
        return index.get(str(key)) if key is not None else None

    def read(self) -> Reading:
        with self._lock:
            now = time.monotonic()
            try:
                pods = {stage: list(self._pod_lister()(sel)) for stage, sel in self.stages.items()}
                series, metric = self._read_series(pods)
            except ConfigError as exc:
                if self._first:  # a wrong query or a Role without pods: say so at once
                    raise
                log.warning("kepler: read failed, stages flagged as gaps: %s", exc)
                return self._gap_reading(now)
            except IpaExtError as exc:
                log.warning("kepler: read failed, stages flagged as gaps: %s", exc)
                return self._gap_reading(now)
            index: dict[str, str] = {}
            for stage, ps in pods.items():
                for p in ps:
                    meta = p.get("metadata") or {}
                    index[str(meta.get("uid") if metric == "container" else meta.get("name"))] = stage
            seen: dict[tuple[tuple[str, str], ...], float] = {}
            for s in series:
                stage = self._stage_of_series(metric, s.labels, index)
                if stage is None or not s.points:
                    continue
                value = s.points[-1][1]
                if value != value or value < 0:  # NaN or negative: not a counter value
                    continue
                key = tuple(sorted(s.labels.items()))
                seen[key] = value
                last = self._last.get(key)
                if last is None:
                    delta = 0.0 if self._first else value
                elif value >= last:
                    delta = value - last
                else:  # the counter restarted (Kepler or the pod restarted)
                    delta = value
                self._totals[stage] += delta
            # Series that vanished keep no state; one that comes back counts from its value.
            self._last = seen
            self._first = False
            return Reading(now, dict(self._joules()), self.quality)  # type: ignore[arg-type]

    def _gap_reading(self, now: float) -> Reading:
        """The totals so far, every stage flagged as a gap (a failed read)."""
        return Reading(now, dict(self._joules()), self.quality,  # type: ignore[arg-type]
                       gaps=tuple(f"{s}/{ZONE}" for s in self.stages))

    def _read_series(self, pods: Mapping[str, list[Mapping[str, Any]]]) -> tuple[list[Series], str]:
        if self._used is not None:
            return self._query(self._used, pods), self._used
        for metric in METRICS:
            series = self._query(metric, pods)
            if series:
                self._used = metric
                log.info("kepler: reading %s", {"pod": POD_METRIC, "container": CONTAINER_METRIC,
                                                  "legacy": LEGACY_METRIC}[metric])
                return series, metric
        return [], METRICS[0]

    def _joules(self) -> dict[str, float]:
        return {f"{stage}/{ZONE}": j for stage, j in self._totals.items()}

    def stage_joules(self, reading: Reading) -> dict[str, float]:
        """A reading's joules by stage name."""
        return {self.stage_of(d): j for d, j in reading.joules.items()}


@hookimpl
def register_energy_sources(register):
    register("kepler", KeplerSource)
