"""The ``kepler`` energy source: Kepler-named counters in a real Prometheus, pods in the
Kubernetes API mock server, joules per stage through pod labels.

Each exporter serves counters growing at known watts, so every stage's joules over an
interval are known up to when Prometheus scraped. ``dram`` series (100 W) and other
namespaces' pods are there to catch summed zones and leaks across namespaces.
"""

from __future__ import annotations

import time

import pytest

pytest.importorskip("kmock")

from support.kube_mock import KubeServer  # noqa: E402
from support.prom_server import Counter, Exporter, PrometheusServer, closed_port_url  # noqa: E402

from ipa_ext.energy.source import Status  # noqa: E402
from ipa_ext.k8s import PipelineCluster, parse_settings  # noqa: E402
from ipa_ext.k8s.values import parse_selector  # noqa: E402
from ipa_ext.monitoring.prometheus import PrometheusAPI  # noqa: E402
from ipa_ext_plugins.energy.kepler import KeplerSource  # noqa: E402

pytestmark = pytest.mark.slow  # a real Prometheus that must collect samples first

# pod name -> (uid, labels, package watts)
PODS = {
    "crop-7d9-abc": ("uid-c1", {"app": "crop"}, 10.0),
    "crop-7d9-def": ("uid-c2", {"app": "crop"}, 5.0),
    "classification-5f-xyz": ("uid-k1", {"app": "classification"}, 7.0),
    "router-0": ("uid-r0", {"app": "router"}, 3.0),
}
STAGE_W = {"crop": 15.0, "classification": 7.0}
SELECTORS = {"crop": "app=crop", "classification": "app=classification"}


def pod_counters():
    out = []
    for name, (uid, _labels, watts) in PODS.items():
        base = {"pod_id": uid, "pod_name": name, "pod_namespace": "default", "state": "running"}
        out.append(Counter("kepler_pod_cpu_joules_total", {**base, "zone": "package"}, watts))
        out.append(Counter("kepler_pod_cpu_joules_total", {**base, "zone": "dram"}, 100.0))
        # The same pod name in another namespace must not count.
        out.append(Counter("kepler_pod_cpu_joules_total",
                           {**base, "pod_namespace": "other", "pod_id": uid + "-o", "zone": "package"}, 50.0))
    return out


def container_counters():
    out = []
    for name, (uid, _labels, watts) in PODS.items():
        base = {"container_id": f"cid-{name}", "container_name": "model", "pod_id": uid,
                "runtime": "containerd", "state": "running"}
        out.append(Counter("kepler_container_cpu_joules_total", {**base, "zone": "package"}, watts))
        out.append(Counter("kepler_container_cpu_joules_total", {**base, "zone": "core"}, 100.0))
    return out


def legacy_counters():
    out = []
    for name, (_uid, _labels, watts) in PODS.items():
        base = {"container_name": "model", "container_namespace": "default", "pod_name": name}
        # Before 0.10 the package zone is its own metric, split in dynamic and idle modes.
        out.append(Counter("kepler_container_package_joules_total", {**base, "mode": "dynamic"}, watts * 0.6))
        out.append(Counter("kepler_container_package_joules_total", {**base, "mode": "idle"}, watts * 0.4))
        out.append(Counter("kepler_container_dram_joules_total", {**base, "mode": "dynamic"}, 100.0))
        out.append(Counter("kepler_container_joules_total", {**base, "mode": "dynamic"}, 100.0))
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    exporters = {"pod": Exporter(counters=pod_counters()), "container": Exporter(counters=container_counters()),
                 "legacy": Exporter(counters=legacy_counters())}
    for e in exporters.values():
        e.__enter__()
    try:
        with KubeServer() as kube:
            for name, (uid, labels, _w) in PODS.items():
                kube.put({"apiVersion": "v1", "kind": "Pod",
                          "metadata": {"name": name, "namespace": "default", "uid": uid, "labels": labels},
                          "spec": {"containers": [{"name": "model", "image": "x"}]}})
            kube.put({"apiVersion": "v1", "kind": "Pod",  # same labels, another namespace
                      "metadata": {"name": "crop-7d9-abc", "namespace": "other", "uid": "uid-c1-o",
                                   "labels": {"app": "crop"}}, "spec": {"containers": []}})
            workdir = tmp_path_factory.mktemp("kepler")
            kc = kube.kubeconfig(workdir / "kubeconfig")
            targets = {f"kepler-{k}": [(e.target, {})] for k, e in exporters.items()}
            with PrometheusServer(workdir, targets, scrape_interval_s=0.5) as prom:
                prom.wait_for("count(kepler_container_package_joules_total)", lambda r: bool(r))
                prom.wait_for("count(kepler_pod_cpu_joules_total)", lambda r: bool(r))
                prom.wait_for("count(kepler_container_cpu_joules_total)", lambda r: bool(r))
                cluster = PipelineCluster.from_settings(parse_settings({"kubeconfig": str(kc)}, []))
                yield {"prom": prom, "kube": kube, "kubeconfig": kc, "pods": cluster.list_pods,
                       "exporters": exporters}
    finally:
        for e in exporters.values():
            e.__exit__(None, None, None)


def source(setup, **kw):
    kw.setdefault("stages", SELECTORS)
    return KeplerSource(api=PrometheusAPI(setup["prom"].url), namespace="default", pods=setup["pods"], **kw)


def two_reads(src, prom, wait_s=1.5):
    """Two readings at least one scrape apart, and bounds on the Prometheus-side time between
    the scrapes each reading saw. A scrape may land while a reading runs, so each reading is
    bracketed by the newest scrape time just before and just after it."""
    stamp = "timestamp(kepler_pod_cpu_joules_total)"

    def newest():
        return max(float(x["value"][1]) for x in prom.query(stamp))

    before0 = newest()
    r0 = src.read()
    after0 = newest()
    time.sleep(wait_s)
    before1 = newest()
    r1 = src.read()
    after1 = newest()
    return r0, r1, (before1 - after0, after1 - before0)


@pytest.mark.parametrize("metric", ["pod", "container", "legacy"])
def test_joules_per_stage_follow_the_pods_package_watts(setup, metric):
    src = source(setup, metric=metric)
    r0, r1, _ = two_reads(src, setup["prom"])
    assert r0.quality == "measured" and not r1.gaps
    assert set(r1.joules) == {"crop/package", "classification/package"}
    assert r0.joules == {"crop/package": 0.0, "classification/package": 0.0}  # the first read is the baseline
    crop, cls = r1.joules["crop/package"], r1.joules["classification/package"]
    assert crop > 0 and cls > 0
    # One scrape stamps every series of a target with the same time, so the ratio is exact:
    # 15 W against 7 W. Summed zones or a leak from the other namespace would break it.
    assert crop / cls == pytest.approx(STAGE_W["crop"] / STAGE_W["classification"], rel=1e-6)
    elapsed = crop / STAGE_W["crop"]
    assert 0.5 <= elapsed <= 4.0


def test_auto_prefers_pod_metrics_and_matches_prometheus_elapsed_time(setup):
    src = source(setup)
    r0, r1, (shortest, longest) = two_reads(src, setup["prom"])
    assert src._used == "pod"
    # The joules are the pods' package watts times the time between the scrapes the two
    # readings saw. Summing the 100 W dram zone or the other namespace's 50 W pods would put
    # them far outside these bounds. The slack covers the exporter computing a value a few
    # milliseconds after Prometheus stamps the scrape (here the samples carry no timestamps,
    # as Kepler's do not).
    elapsed = r1.joules["crop/package"] / STAGE_W["crop"]
    assert shortest - 0.05 <= elapsed <= longest + 0.05
    assert shortest > 0
    assert src.stage_joules(r1) == {"crop": r1.joules["crop/package"],
                                    "classification": r1.joules["classification/package"]}


def test_a_restarted_counter_keeps_the_total_monotone(setup):
    src = source(setup, metric="legacy")
    src.read()
    time.sleep(1.0)
    mid = src.read()
    for c in setup["exporters"]["legacy"].counters:
        if c.labels.get("pod_name") == "classification-5f-xyz":
            c.restart()
    time.sleep(1.5)
    after = src.read()
    assert after.joules["classification/package"] >= mid.joules["classification/package"]
    assert after.joules["crop/package"] > mid.joules["crop/package"]


def test_a_pod_scaled_up_later_counts_from_its_start(setup):
    kube, prom = setup["kube"], setup["prom"]
    src = source(setup, metric="pod", stages={"crop": "app=crop", "late": "tier=late"})
    assert src.read().joules["late/package"] == 0.0  # no pod matches yet
    # A new pod appears: Kepler's counter for it starts at zero, the pod carries the label.
    for c in setup["exporters"]["pod"].counters:
        if c.labels["pod_name"] == "router-0" and c.labels["pod_namespace"] == "default":
            c.restart()
    born = time.time()
    kube.put({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "router-0", "namespace": "default",
              "uid": "uid-r0", "labels": {"app": "router", "tier": "late"}}, "spec": {"containers": []}})
    prom.wait_for('kepler_pod_cpu_joules_total{pod_name="router-0",zone="package",pod_namespace="default"}',
                  lambda r: r and float(r[0]["value"][0]) > born + 0.6)
    series = 'kepler_pod_cpu_joules_total{pod_name="router-0",zone="package",pod_namespace="default"}'
    for _ in range(10):  # a reading that no scrape overtook: the counter is the same before and after
        before = float(prom.query(series)[0]["value"][1])
        r = src.read()
        seen = float(prom.query(series)[0]["value"][1])
        if seen == before:
            break
    else:
        pytest.fail("every reading raced a scrape")
    # Counted in full from the pod's start (3 W since `born`), not from the exporter's start.
    assert r.joules["late/package"] == pytest.approx(seen, rel=1e-6)
    assert 0 < r.joules["late/package"] < 3.0 * (time.time() - born) + 1e-9


def test_prometheus_down_keeps_totals_and_flags_gaps(setup):
    src = KeplerSource(api=PrometheusAPI(closed_port_url(), timeout_s=1), stages=SELECTORS,
                       namespace="default", pods=setup["pods"])
    r = src.read()
    assert r.joules == {"crop/package": 0.0, "classification/package": 0.0}
    assert set(r.gaps) == {"crop/package", "classification/package"}


def test_probe_never_raises(setup):
    assert source(setup).probe().status is Status.AVAILABLE
    down = KeplerSource(api=PrometheusAPI(closed_port_url(), timeout_s=1), stages=SELECTORS,
                        pods=setup["pods"]).probe()
    assert down.status is Status.ABSENT and "Prometheus" in down.detail and down.hint


def test_the_plugin_builds_from_config_options(setup, host):
    src = host.registry.create("energy source", "kepler", {
        "url": setup["prom"].url, "namespace": "default", "stages": SELECTORS,
        "kubeconfig": str(setup["kubeconfig"]), "metric": "pod"})
    assert [d.id for d in src.domains()] == ["crop/package", "classification/package"]
    src.read()
    time.sleep(1.0)
    assert src.read().joules["crop/package"] > 0


@pytest.mark.parametrize("options, needle", [
    ({"stages": SELECTORS}, "url"),
    ({"url": "http://127.0.0.1:1"}, "stages"),
    ({"url": "http://127.0.0.1:1", "stages": SELECTORS, "metric": "node"}, "metric"),
    ({"url": "http://127.0.0.1:1", "stages": SELECTORS, "quality": "guessed"}, "quality"),
    ({"url": "http://127.0.0.1:1", "stages": {"crop": ""}}, "empty pod selector"),
])
def test_bad_options_are_config_errors(host, options, needle):
    from ipa_ext.errors import ConfigError

    with pytest.raises(ConfigError, match=needle):
        host.registry.create("energy source", "kepler", options, where="energy.sources[0].options")


def test_selectors_parse():
    assert parse_selector(SELECTORS["crop"]).matches(PODS["crop-7d9-abc"][1])
