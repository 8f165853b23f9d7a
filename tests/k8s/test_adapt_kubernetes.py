"""``ipa-ext adapt --backend kubernetes`` end to end, with real parts.

One real Prometheus (Debian's binary on 127.0.0.1) scrapes, every half second, a small
exporter (IPA's router request counter at 20 requests per second and Kepler-named energy
counters for the pipeline's pods) and ipa-ext's own metrics endpoint. The official
kubernetes client talks over HTTP to the stateful API mock server (``kube_mock.py``), which
enforces the Role in ``deploy/rbac.yaml``. Faults are real too: a TCP forwarder in front of
a server is cut and restored (``tcp_proxy.py``), a token is revoked on the server.

Each test works in its own namespace, so they share the servers (Prometheus starts once).
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

pytest.importorskip("kmock")

from support.cli import assert_one_line_error, run_cli  # noqa: E402
from support.configs import video_config_data  # noqa: E402
from support.kube_mock import Identity, KubeServer, role_rules  # noqa: E402
from support.paths import ROOT  # noqa: E402
from support.prom_server import Counter, Exporter, PrometheusServer, closed_port_url, free_port  # noqa: E402
from support.tcp_proxy import TcpProxy  # noqa: E402

from ipa_ext.adapt.adapter import least_change, read_log  # noqa: E402
from ipa_ext.config.config import load_config  # noqa: E402
from ipa_ext.errors import ConfigError  # noqa: E402
from ipa_ext.k8s.deployments import STRATEGIC_MERGE  # noqa: E402
from ipa_ext.model import StageConfig  # noqa: E402
from ipa_ext.run.runner import execute, prepare  # noqa: E402

pytestmark = pytest.mark.slow  # a real Prometheus and timed adaptation runs (seconds each)

PIPELINE = [d for d in yaml.safe_load_all((ROOT / "deploy" / "example-pipeline.yaml").read_text()) if d]
STAGES = ("crop", "classification")
TOKEN = "adapter-token"
ROUTER_RPS = 20.0
RATE_QUERY = 'sum(irate(input_requests_count{container="router"}[5s]))'
"""The load query of these tests. The exporter stamps each sample with the time its value was
computed, so the slope between two samples is exactly 20 rps, and ``irate()`` (the slope of the
last two samples) reads it however late a busy machine ran the scrapes. The default
``rate(...[2s])`` extrapolates to its window's edges only as far as the samples' spacing allows,
so delayed scrapes make it read low; ``tests/monitoring/test_prometheus.py`` checks the reader
with it against Prometheus's own answers."""
# Kepler's per-pod package power (W) of the pipeline's pods in namespace "default".
PODS = {
    "crop-6d4-a": ("uid-a", {"app": "crop"}, 10.0),
    "crop-6d4-b": ("uid-b", {"app": "crop"}, 5.0),
    "classification-7f-c": ("uid-c", {"app": "classification"}, 7.0),
}
STAGE_W = {"crop": 15.0, "classification": 7.0}


def exporter_counters():
    out = [Counter("input_requests", {}, ROUTER_RPS, kind="histogram_count")]
    for name, (uid, _labels, watts) in PODS.items():
        base = {"pod_id": uid, "pod_name": name, "pod_namespace": "default", "state": "running"}
        out.append(Counter("kepler_pod_cpu_joules_total", {**base, "zone": "package"}, watts))
        out.append(Counter("kepler_pod_cpu_joules_total", {**base, "zone": "dram"}, 100.0))  # never summed
    return out


def pipeline_in(namespace: str, drop_env: str | None = None, crop_variant: str | None = None):
    docs = copy.deepcopy(PIPELINE)
    for d in docs:
        d["metadata"]["namespace"] = namespace
        c = d["spec"]["template"]["spec"]["containers"][0]
        if drop_env and d["metadata"]["name"] == "crop":
            c["env"] = [e for e in c["env"] if e["name"] != drop_env]
        if crop_variant and d["metadata"]["name"] == "crop":
            for e in c["env"]:
                if e["name"] == "MODEL_VARIANT":
                    e["value"] = crop_variant
    return docs


NAMESPACES = ("default", "ns-prom", "ns-api", "ns-401", "ns-dry", "ns-start", "ns-unit", "ns-mix")


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("adapt")
    rules = role_rules(ROOT / "deploy" / "rbac.yaml")
    sa = "system:serviceaccount:default:ipa-ext-adapter"
    identities = {TOKEN: Identity(sa, rules), "other": Identity("someone", rules)}
    metrics_port = free_port()
    with Exporter(counters=exporter_counters(), timestamps=True) as exporter, \
            KubeServer(identities=identities) as kube:
        for ns in NAMESPACES:
            kube.put_all(pipeline_in(ns))
        kube.put_all(pipeline_in("ns-noenv", drop_env="MLSERVER_MODEL_MAX_BATCH_SIZE"))
        kube.put_all(pipeline_in("ns-variant", crop_variant="yolov9z"))
        for name, (uid, labels, _w) in PODS.items():
            kube.put({"apiVersion": "v1", "kind": "Pod",
                      "metadata": {"name": name, "namespace": "default", "uid": uid, "labels": labels},
                      "spec": {"containers": [{"name": "model", "image": "x"}]}})
        targets = {"router": [(exporter.target, {"container": "router"})],
                   "ipa-ext": [(f"127.0.0.1:{metrics_port}", {})]}
        with PrometheusServer(workdir, targets, scrape_interval_s=0.5) as prom:
            # 4 s of samples: with ipa-ext's own start-up, rate()'s 2 s windows are clear of the
            # series' start (where it extrapolates partially) by the first read
            prom.wait_for("count_over_time(input_requests_count[20s])", lambda r: r and float(r[0]["value"][1]) >= 8)
            yield SimpleNamespace(prom=prom, kube=kube, exporter=exporter, metrics_port=metrics_port,
                                  workdir=workdir)


def write_config(tmp_path: Path, world, namespace: str, *, kube_url: str | None = None,
                 token: str = TOKEN, prometheus: dict | None = None, kubernetes: dict | None = None,
                 **changes) -> Path:
    """The video example on the mock cluster: 1 s intervals, the max of the last 4 s."""
    data = video_config_data()
    for k in ("simulation", "workload", "initial"):  # a cluster runs what it runs
        data.pop(k, None)
    kc = tmp_path / f"kubeconfig-{namespace}"
    kc_server = world.kube
    kc_server.kubeconfig(kc, token=token, namespace=namespace)
    if kube_url is not None:
        doc = yaml.safe_load(kc.read_text())
        doc["clusters"][0]["cluster"]["server"] = kube_url
        kc.write_text(yaml.safe_dump(doc))
    data.update(
        adaptation={"interval_s": 1},
        predictor={"name": "max", "backup": "max", "backup_duration_s": 0, "monitoring_duration_s": 4},
        kubernetes={"kubeconfig": str(kc), "retry": {"attempts": 2, "backoff_s": 0.05},
                    "request_timeout_s": 3, **(kubernetes or {})},
        prometheus={"url": world.prom.url, "timeout_s": 3, "rate_query": RATE_QUERY, **(prometheus or {})},
    )
    data.update(changes)
    path = tmp_path / f"config-{namespace}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def deployment_config(kube, namespace: str) -> tuple[StageConfig, ...]:
    out = []
    for stage in STAGES:
        d = kube.get("Deployment", stage, namespace)
        c = d["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in c["env"]}
        assert c["resources"]["requests"]["cpu"] == c["resources"]["limits"]["cpu"]
        cpu = c["resources"]["requests"]["cpu"]
        cores = float(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)
        out.append(StageConfig(env["MODEL_VARIANT"], cores, int(env["MLSERVER_MODEL_MAX_BATCH_SIZE"]),
                               d["spec"]["replicas"]))
    return tuple(out)


def expected_at(config_path: Path, host, rate: float, current):
    """What the loop should choose at ``rate`` from ``current``: the optimizer's k best,
    least change (worked out here from the optimizer's candidates)."""
    config = load_config(config_path)
    problem = config.build_problem(host)
    opt = host.registry.create("optimizer", config.optimizer.name, dict(config.optimizer.options))
    decision = opt.optimize(problem, rate, current, problem.settings.num_state_limit)
    assert decision.feasible
    return decision.candidates[least_change(decision.candidates, current)].config


def patches(kube, namespace):
    return [a for a in kube.audit() if a[0] == "patch" and a[2] == namespace]


# --------------------------------------------------------------------------- end to end


def test_adapt_reads_load_patches_attributes_energy_and_exports_metrics(world, tmp_path, host):
    """The issue's end-to-end run: a few 1 s intervals against the mock cluster."""
    cfg = write_config(tmp_path, world, "default", energy={"sources": ["kepler"]})
    initial = deployment_config(world.kube, "default")
    out = tmp_path / "run"
    proc = run_cli("adapt", str(cfg), "--backend", "kubernetes", "--metrics-port", str(world.metrics_port),
                   "--metrics-bind", "127.0.0.1", "--steps", "3", "--out", str(out), timeout=90)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "warning" not in proc.stderr, proc.stderr
    assert any(x.startswith("ipa-ext: step 1 at 1 s; 20 rps predicted; crop yolov5n") and "; changed; " in x
               and x.endswith(" J/request") for x in proc.stderr.splitlines()), proc.stderr
    lines = read_log(out / "adaptation.jsonl")
    assert [l["step"] for l in lines] == [0, 1, 2, 3], proc.stderr  # --steps 3, however long start-up takes
    assert lines[0]["decision"]["kind"] == "initial"
    assert lines[0]["config"] == {s: c.as_dict() for s, c in zip(STAGES, initial)}

    # the load, read through PromQL: the router's counter grows at exactly 20 rps (see RATE_QUERY)
    decided = lines[1:]
    for l in decided:
        assert l["monitored"]["last_rps"] == pytest.approx(ROUTER_RPS, rel=1e-9)
        assert l["predicted_rps"] == pytest.approx(ROUTER_RPS, rel=1e-9)
    for l in lines:
        iv = l["interval"]
        assert iv["arrivals"] == pytest.approx(ROUTER_RPS * (iv["end_s"] - iv["start_s"]), rel=1e-9)
        assert iv["served"] is None  # not observed on a cluster, and not invented

    # the patches: the cluster now runs the decision for the rate read, sent once, as strategic merges
    want = expected_at(cfg, host, decided[0]["predicted_rps"], initial)
    assert want != initial
    assert deployment_config(world.kube, "default") == want
    assert {s: c.as_dict() for s, c in zip(STAGES, want)} == decided[0]["config"] == decided[-1]["config"]
    assert decided[0]["change_successful"] == [True, True]
    changed = [s for s, a, b in zip(STAGES, initial, want) if a != b]
    sent = patches(world.kube, "default")
    assert [p[3] for p in sent] and sorted(p[3] for p in sent) == sorted(changed)
    assert {p[4] for p in sent} == {STRATEGIC_MERGE}
    applied = {st["stage"]: st for st in decided[0]["backend"]["apply"]["stages"]}
    assert {s for s, st in applied.items() if st["patch"] is not None} == set(changed)
    assert all(not st["changed"] for l in decided[1:] for st in l["backend"].get("apply", {}).get("stages", []))

    # the energy: Kepler's package counters, per stage through the pods' labels, measured
    total = 0.0
    for l in lines:
        e = l["energy"]
        assert e["source"] == "kepler" and e["quality"] == "measured"
        assert set(e["stages_j"]) == set(STAGES)
        assert e["total_j"] == pytest.approx(sum(e["stages_j"].values()))
        if e["stages_j"]["classification"] > 0:
            # one scrape stamps both stages' pods alike: the split is exactly 15 W : 7 W
            assert e["stages_j"]["crop"] / e["stages_j"]["classification"] == pytest.approx(15 / 7, rel=1e-6)
        assert e["requests_basis"] == "arrivals"
        arrivals = l["interval"]["arrivals"]
        if arrivals:
            assert e["j_per_request"] == pytest.approx(e["total_j"] / arrivals)
            assert e["stages_j_per_request"]["crop"] == pytest.approx(e["stages_j"]["crop"] / arrivals)
        total += e["total_j"]
    elapsed = lines[-1]["interval"]["end_s"] - lines[0]["interval"]["start_s"]
    # every joule between the first and the last Kepler read; reads lag by up to a scrape
    assert sum(STAGE_W.values()) * (elapsed - 1.5) <= total <= sum(STAGE_W.values()) * (elapsed + 0.5)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["backend"] == "kubernetes" and summary["energy"]["source"] == "kepler"
    assert summary["energy"]["total_j"] == pytest.approx(total)
    assert summary["faults"] == 0

    # the metrics Prometheus scraped back from ipa-ext while it ran
    prom = world.prom

    def last(expr):
        r = prom.query(f"max_over_time({expr}[2m])")
        assert r, f"Prometheus has no {expr}"
        return {tuple(sorted((k, v) for k, v in x["metric"].items() if k not in ("job", "instance"))):
                float(x["value"][1]) for x in r}

    assert last("ipa_ext_predicted_rate_rps") == {(): pytest.approx(ROUTER_RPS, rel=1e-9)}
    assert list(last("ipa_ext_observed_rate_rps").values())[0] == pytest.approx(ROUTER_RPS, rel=1e-9)
    for stage, sc in zip(STAGES, want):
        assert last(f'ipa_ext_stage_replicas{{stage="{stage}"}}') == {(("stage", stage),): sc.replicas}
        assert last(f'ipa_ext_stage_batch{{stage="{stage}"}}') == {(("stage", stage),): sc.batch}
        info = last(f'ipa_ext_stage_variant_info{{stage="{stage}"}}')
        assert ((("stage", stage), ("variant", sc.variant))) in info
        joules = last(f'ipa_ext_energy_joules_total{{stage="{stage}",source="kepler"}}')
        (value,) = joules.values()
        logged = sum(l["energy"]["stages_j"][stage] for l in lines)
        assert 0 < value <= logged + 1e-9
    assert last('ipa_ext_adaptations_total{outcome="applied"}') == {(("outcome", "applied"),): 1.0}
    assert last("ipa_ext_decision_seconds_count")[(("optimizer", load_config(cfg).optimizer.name),)] >= 1
    assert last("ipa_ext_objective_term") and last('ipa_ext_power_watts{stage="crop"}')


# --------------------------------------------------------------------------- faults in the loop


def run_loop(cfg: Path, host, tmp_path: Path, on_step, *, options=None):
    """The loop in this process (the same runner as the CLI); ``on_step(record, adapter)``
    runs at the end of every step, where a test injects faults deterministically."""
    prepared = prepare(load_config(cfg), host, backend="kubernetes", backend_options=options)
    held = {}
    records = []

    def on_record(r):
        records.append(r)
        on_step(r, held["adapter"])

    try:
        result, _, _ = execute(prepared, None, log_path=tmp_path / "log.jsonl", on_record=on_record,
                               handle_signals=False, adapter_hook=lambda a: held.setdefault("adapter", a))
    except ConfigError as exc:
        return None, records, exc
    return result, records, None


def test_prometheus_down_mid_run_keeps_the_configuration_and_resumes(world, tmp_path, host):
    with TcpProxy(world.prom.port) as proxy:
        cfg = write_config(tmp_path, world, "ns-prom", prometheus={"url": proxy.url})

        def on_step(r, adapter):
            if r["step"] == 1:
                proxy.cut()
            elif r["step"] == 3:
                proxy.restore()
            elif r["step"] == 5:
                adapter.stop_event.set()

        result, lines, err = run_loop(cfg, host, tmp_path, on_step)
    assert err is None and len(lines) == 6
    assert lines[1]["decision"]["kind"] == "optimizer" and "fault" not in lines[1]
    for l in lines[2:4]:
        assert l["decision"] == {"kind": "fault"}
        assert l["fault"]["component"] == "prometheus" and l["fault"]["phase"] == "observe"
        assert "unreachable" in l["fault"]["message"]
        assert l["config"] == lines[1]["config"] and l["change_successful"] == [False, False]
        assert math.isnan(l["interval"]["arrivals"])
    assert lines[4]["decision"]["kind"] == "optimizer" and lines[4]["config"] == lines[1]["config"]
    assert lines[4]["predicted_rps"] == pytest.approx(ROUTER_RPS, rel=1e-9)
    assert result.faults == 2
    assert deployment_config(world.kube, "ns-prom") == tuple(
        StageConfig(**lines[1]["config"][s]) for s in STAGES)


def test_api_server_unreachable_mid_run_is_ridden_out(world, tmp_path, host):
    kube_port = int(world.kube.url.rsplit(":", 1)[1])
    with TcpProxy(kube_port) as proxy:
        cfg = write_config(tmp_path, world, "ns-api", kube_url=proxy.url)

        def on_step(r, adapter):
            if r["step"] == 1:
                proxy.cut()
            elif r["step"] == 2:
                proxy.restore()
            elif r["step"] == 3:
                adapter.stop_event.set()

        result, lines, err = run_loop(cfg, host, tmp_path, on_step)
    assert err is None and len(lines) == 4
    f = lines[2]["fault"]
    assert f["component"] == "kubernetes" and f["phase"] == "configuration"
    assert "unreachable" in f["message"] and "gave up after 2 attempts" in f["message"]
    assert lines[2]["config"] == lines[1]["config"]
    assert "fault" not in lines[3] and lines[3]["decision"]["feasible"]
    assert result.faults == 1


def test_a_rejected_token_mid_run_is_retried_and_ends_the_run_when_it_persists(world, tmp_path, host):
    kube = world.kube
    saved = kube.handler.identities[TOKEN]

    def revoke():
        kube.call(lambda: kube.handler.identities.pop(TOKEN, None))

    def grant():
        kube.call(lambda: kube.handler.identities.__setitem__(TOKEN, saved))

    cfg = write_config(tmp_path, world, "ns-401", kubernetes={"max_failed_intervals": 3})

    def on_step(r, adapter):
        if r["step"] == 1:
            revoke()  # the token rotated: step 2 is refused
        elif r["step"] == 2:
            grant()  # and the new one works again
        elif r["step"] == 3:
            revoke()  # now for good

    try:
        result, lines, err = run_loop(cfg, host, tmp_path, on_step)
    finally:
        grant()
    assert "401" in lines[2]["fault"]["message"] and "interval 1 of 3" in lines[2]["fault"]["message"]
    assert lines[2]["config"] == lines[1]["config"]
    assert "fault" not in lines[3]
    assert [("interval 1 of 3" in l["fault"]["message"], "interval 2 of 3" in l["fault"]["message"])
            for l in lines[4:]] == [(True, False), (False, True)]
    # the third interval in a row ends the run with the credentials message
    assert isinstance(err, ConfigError)
    assert "401" in str(err) and "renew" in str(err) and "3 intervals in a row" in str(err)


def test_the_backend_reads_rates_per_second_and_treats_no_samples_as_transient(world, tmp_path, host):
    from ipa_ext.backends import RunContext
    from ipa_ext_plugins.backends.kubernetes import NoLoadData

    def backend_for(query, step_s=1):
        cfg = write_config(tmp_path, world, "ns-unit", prometheus={"rate_query": query, "step_s": step_s})
        config = load_config(cfg)
        prepared = prepare(config, host, backend="kubernetes")
        b = prepared.new_backend()
        b.start(RunContext(prepared.problem, None, None, config.base_dir, config.path))
        return b

    b = backend_for(RATE_QUERY, step_s=2)
    try:
        rates = b.observe_rates(8)
        assert len(rates) % 2 == 0 and len(rates) >= 8
        assert rates[0::2] == rates[1::2]  # each 2 s sample held for its two seconds
        assert all(r == pytest.approx(ROUTER_RPS, rel=1e-9) for r in rates)
        assert b.current_configuration() == deployment_config(world.kube, "ns-unit")
    finally:
        b.close()
    for query, needle in (("sum(rate(no_such_counter[2s]))", "returned no samples"),
                          ("sum(rate(input_requests_count[2s])) * NaN", "NaN")):
        b = backend_for(query)
        try:
            with pytest.raises(NoLoadData, match=needle):
                b.observe_rates(4)
        finally:
            b.close()


# --------------------------------------------------------------------------- the CLI


def test_dry_run_prints_the_patches_and_sends_none(world, tmp_path, host):
    cfg = write_config(tmp_path, world, "ns-dry")
    before = world.kube.versions("Deployment", "crop", "ns-dry")
    proc = run_cli("adapt", str(cfg), "--backend", "kubernetes", "--dry-run", "--steps", "2",
                   "--quiet", "--out", str(tmp_path / "o"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    printed = [json.loads(x) for x in proc.stdout.splitlines()]
    assert printed, proc.stderr
    initial = deployment_config(world.kube, "ns-dry")
    decided = read_log(tmp_path / "o" / "adaptation.jsonl")[1]
    assert decided["predicted_rps"] == pytest.approx(ROUTER_RPS, rel=1e-9)
    want = expected_at(cfg, host, decided["predicted_rps"], initial)
    crop = [p for p in printed if p["stage"] == "crop"][0]
    assert crop["patch_type"] == STRATEGIC_MERGE and crop["target"] == "Deployment ns-dry/crop"
    assert crop["patch"]["spec"].get("replicas", initial[0].replicas) == want[0].replicas
    assert patches(world.kube, "ns-dry") == []
    assert world.kube.versions("Deployment", "crop", "ns-dry") == before
    assert decided["backend"]["dry_run"] is True


@pytest.mark.parametrize("kind, dry_run", [("mix", False), ("ensemble", True)])
def test_a_mix_or_an_ensemble_is_refused_with_one_line_not_served_as_its_main_part(world, tmp_path, kind, dry_run):
    one = {"cpu": 1, "batch": 1, "replicas": 1}
    crop = ({"mix": [[{"variant": "yolov5n", **one}, 3], [{"variant": "yolov5s", **one}, 1]]} if kind == "mix"
            else {"ensemble": [{"variant": "yolov5s", **one}, {"variant": "yolov5n", **one}]})
    cfg = write_config(tmp_path, world, "ns-mix", optimizer={"name": "scripted", "options": {"steps": [{"crop": crop}]}},
                       plugins={"load": [str(ROOT / "tests" / "support" / "scripted_optimizer.py")]})
    before = {s: world.kube.versions("Deployment", s, "ns-mix") for s in STAGES}
    proc = run_cli("adapt", str(cfg), "--backend", "kubernetes", "--duration", "6", "--out", str(tmp_path / "o"),
                   "--quiet", *(["--dry-run"] if dry_run else []), timeout=60)
    what = "a mix of yolov5n, yolov5s" if kind == "mix" else "an ensemble of yolov5s, yolov5n"
    assert_one_line_error(proc, f"{cfg}: optimizer: policy 'scripted' serves stage 'crop' with {what}; "
                          "the kubernetes backend runs one variant per stage")
    assert proc.returncode == 2
    assert patches(world.kube, "ns-mix") == []
    assert {s: world.kube.versions("Deployment", s, "ns-mix") for s in STAGES} == before


@pytest.mark.parametrize("what", ["api", "prometheus"])
def test_unreachable_servers_at_start_are_retried_until_stopped(world, tmp_path, what):
    dead = closed_port_url()
    if what == "api":
        cfg = write_config(tmp_path, world, "ns-start", kube_url=dead)
        needle = f"API server {dead} unreachable"
    else:
        cfg = write_config(tmp_path, world, "ns-start", prometheus={"url": dead})
        needle = f"prometheus: {dead} unreachable"
    proc = run_cli("adapt", str(cfg), "--backend", "kubernetes", "--duration", "4", "--quiet",
                   "--out", str(tmp_path / "o"), timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [x for x in proc.stderr.splitlines() if x.startswith("ipa-ext: warning:")]
    assert len(warnings) >= 2 and all(needle in w and w.endswith("retrying in 1 s") for w in warnings), proc.stderr
    assert read_log(tmp_path / "o" / "adaptation.jsonl") == []


@pytest.mark.parametrize("case", ["credentials", "no-workload", "missing-env", "promql", "variant"])
def test_configuration_errors_end_the_run_with_one_line(world, tmp_path, case):
    ns, kw, needles = {
        "credentials": ("ns-start", {"token": "expired-token"}, ["401", "expired or is invalid", "renew"]),
        "no-workload": ("ns-start", {"kubernetes": {"stages": {"crop": {"name": "cropper"}}}},
                        ["kubernetes.stages.crop", "matches no workload", "ns-start/cropper not found"]),
        "missing-env": ("ns-noenv", {}, ["MLSERVER_MODEL_MAX_BATCH_SIZE missing from the container spec",
                                         "Deployment ns-noenv/crop"]),
        "promql": ("ns-start", {"prometheus": {"rate_query": "sum(rate(input_requests_count[2s])"}},
                   ["prometheus.rate_query", "parse error"]),
        "variant": ("ns-variant", {}, ["kubernetes.stages.crop", "runs variant 'yolov9z'", "yolov5n"]),
    }[case]
    cfg = write_config(tmp_path, world, ns, **kw)
    proc = run_cli("adapt", str(cfg), "--backend", "kubernetes", "--duration", "10", "--quiet",
                   "--out", str(tmp_path / "o"), timeout=60)
    assert proc.returncode == 2
    assert_one_line_error(proc, str(cfg), *needles)


def test_adapt_refuses_what_it_cannot_run(world, tmp_path, capsys):
    from ipa_ext.cli import main

    def cfg(name, **kw):
        (tmp_path / name).mkdir()
        return write_config(tmp_path / name, world, "ns-start", **kw)

    cases = [
        (cfg("a"), ["adapt", "--backend", "simulation"], "not live"),
        (cfg("b", prometheus={"step_s": 0.5}), [], "prometheus.step_s"),
        (cfg("c", kubernetes={"stages": {"detector": {}}}), [], "kubernetes.stages.detector"),
    ]
    bad = tmp_path / "noprom.yaml"
    raw = yaml.safe_load(cases[0][0].read_text())
    del raw["prometheus"]
    bad.write_text(yaml.safe_dump(raw))
    cases.append((bad, [], "prometheus: missing"))
    for cfg, extra, needle in cases:
        argv = ["adapt", str(cfg), *(extra[1:] if extra else ["--backend", "kubernetes"]), "--duration", "1"]
        rc = main(argv)
        err = capsys.readouterr().err
        assert rc == 2, err
        assert_one_line_error(SimpleNamespace(returncode=rc, stdout="", stderr=err), needle)
