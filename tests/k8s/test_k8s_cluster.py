"""The Kubernetes layer against a stateful API mock server over HTTP.

The official ``kubernetes`` client talks to kmock's emulator on 127.0.0.1 (see
``kube_mock.py``), which enforces the Role in ``deploy/rbac.yaml``, resourceVersion
preconditions, strategic-merge and JSON-merge semantics. Nothing in the client is patched.
"""

from __future__ import annotations

import copy

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("kmock")

from support.kube_mock import Fault, Identity, KubeServer, role_rules  # noqa: E402
from support.paths import ROOT  # noqa: E402
from support.prom_server import closed_port_url  # noqa: E402

from ipa_ext.errors import ConfigError, TransientError  # noqa: E402
from ipa_ext.k8s import PipelineCluster, parse_settings  # noqa: E402
from ipa_ext.k8s.cluster import KubeCredentialsError, KubePermissionError, KubeUnavailable  # noqa: E402
from ipa_ext.k8s.deployments import JSON_MERGE, STRATEGIC_MERGE  # noqa: E402
from ipa_ext.model import StageConfig  # noqa: E402

RBAC = ROOT / "deploy" / "rbac.yaml"
PIPELINE = [d for d in yaml.safe_load_all((ROOT / "deploy" / "example-pipeline.yaml").read_text()) if d]
STAGES = ["crop", "classification"]
SA = "system:serviceaccount:default:ipa-ext-adapter"
TOKEN = "adapter-token"


def _without(rules, verb):
    out = []
    for r in copy.deepcopy(rules):
        r["verbs"] = [v for v in r["verbs"] if v != verb]
        out.append(r)
    return out


def _identities():
    rules = role_rules(RBAC)
    return {
        TOKEN: Identity(SA, rules),
        "no-patch": Identity(SA, _without(rules, "patch")),
        "no-list": Identity(SA, _without(rules, "list")),
    }


@pytest.fixture
def kube():
    with KubeServer(identities=_identities()) as srv:
        srv.put_all(PIPELINE)
        yield srv


def make_cluster(kube, tmp_path, section=None, token=TOKEN, stages=STAGES):
    kc = kube.kubeconfig(tmp_path / "kubeconfig", token=token)
    sec = {"kubeconfig": str(kc), **(section or {})}
    delays: list[float] = []
    cluster = PipelineCluster.from_settings(parse_settings(sec, stages), sleep=delays.append)
    return cluster, delays


def env_of(obj, name):
    c = obj["spec"]["template"]["spec"]["containers"][0]
    return next(e["value"] for e in c["env"] if e["name"] == name)


def test_reads_the_running_configuration_in_stage_order(kube, tmp_path):
    cluster, _ = make_cluster(kube, tmp_path)
    assert cluster.namespace == "default"
    assert cluster.read_configuration() == (
        StageConfig("yolov5n", 1.0, 1, 1), StageConfig("resnet18", 1.0, 1, 1))
    # Millicores and replicas other than 1 read as cores and counts.
    crop = kube.get("Deployment", "crop")
    crop["spec"]["replicas"] = 3
    crop["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "1500m"
    crop["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] = "2"
    kube.put(crop)
    assert cluster.read_configuration()[0] == StageConfig("yolov5n", 1.5, 1, 3)


def test_apply_patches_only_the_fields_it_owns(kube, tmp_path):
    cluster, delays = make_cluster(kube, tmp_path)
    want = (StageConfig("yolov5s", 2.0, 4, 3), StageConfig("resnet50", 0.5, 2, 2))
    report = cluster.apply(want)
    assert report.ok and [r.changed for r in report.results] == [True, True]
    assert [r.attempts for r in report.results] == [1, 1] and delays == []
    crop = kube.get("Deployment", "crop")
    c = crop["spec"]["template"]["spec"]["containers"][0]
    assert crop["spec"]["replicas"] == 3
    assert c["resources"] == {"requests": {"cpu": "2", "memory": "2Gi"}, "limits": {"cpu": "2", "memory": "2Gi"}}
    assert env_of(crop, "MODEL_VARIANT") == "yolov5s"
    assert env_of(crop, "MLSERVER_MODEL_MAX_BATCH_SIZE") == "4"
    assert env_of(crop, "MLSERVER_MODEL_MAX_BATCH_TIME") == "1"  # untouched env survives the merge
    assert kube.get("Deployment", "classification")["spec"]["template"]["spec"]["containers"][0][
        "resources"]["requests"]["cpu"] == "500m"
    assert cluster.read_configuration() == want
    patches = [a for a in kube.audit() if a[0] == "patch"]
    assert sorted(a[3] for a in patches) == ["classification", "crop"]
    assert {a[4] for a in patches} == {STRATEGIC_MERGE}
    # Applying the same configuration again changes nothing and sends no patch.
    again = cluster.apply(want)
    assert again.ok and not any(r.changed for r in again.results)
    assert len([a for a in kube.audit() if a[0] == "patch"]) == 2


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "yolov5x"]), st.integers(1, 16000),
                          st.integers(1, 64), st.integers(0, 50)), min_size=2, max_size=2))
def test_read_after_apply_returns_what_was_applied(kube, tmp_path, rows):
    cluster, _ = make_cluster(kube, tmp_path)
    want = tuple(StageConfig(v, m / 1000, b, r) for v, m, b, r in rows)
    assert cluster.apply(want).ok
    assert cluster.read_configuration() == want


def test_conflict_rereads_and_keeps_the_other_writers_change(kube, tmp_path):
    cluster, delays = make_cluster(kube, tmp_path)

    def other_writer(obj):  # e.g. someone edits the batch timeout between our read and patch
        env = obj["spec"]["template"]["spec"]["containers"][0]["env"]
        next(e for e in env if e["name"] == "MLSERVER_MODEL_MAX_BATCH_TIME")["value"] = "5"

    kube.add_fault(Fault("patch", "deployments", name="crop", mutate=other_writer))
    report = cluster.apply((StageConfig("yolov5m", 1.0, 8, 2), StageConfig("resnet18", 1.0, 1, 1)))
    crop_result = report.results[0]
    assert crop_result.ok and crop_result.attempts == 2
    assert delays == [0.5]
    crop = kube.get("Deployment", "crop")
    assert env_of(crop, "MLSERVER_MODEL_MAX_BATCH_TIME") == "5"
    assert env_of(crop, "MODEL_VARIANT") == "yolov5m" and crop["spec"]["replicas"] == 2
    # The second patch was computed from the fresh object: it carries the writer's resourceVersion.
    writer_version = kube.history("Deployment", "crop")[-2]
    assert env_of(writer_version, "MLSERVER_MODEL_MAX_BATCH_TIME") == "5"
    assert crop_result.patch["metadata"]["resourceVersion"] == writer_version["metadata"]["resourceVersion"]


def test_server_errors_are_retried_with_exponential_backoff(kube, tmp_path):
    cluster, delays = make_cluster(kube, tmp_path)
    kube.add_fault(Fault("patch", "deployments", status=503, times=2, name="crop"))
    report = cluster.apply((StageConfig("yolov5m", 1.0, 1, 1), StageConfig("resnet18", 1.0, 1, 1)))
    assert report.ok and report.results[0].attempts == 3
    assert delays == [0.5, 1.0]
    assert env_of(kube.get("Deployment", "crop"), "MODEL_VARIANT") == "yolov5m"


def test_retry_after_is_honoured_within_the_cap(kube, tmp_path):
    cluster, delays = make_cluster(kube, tmp_path, {"retry": {"max_backoff_s": 3}})
    kube.add_fault(Fault("patch", "deployments", status=429, times=1, name="crop", retry_after_s=7))
    assert cluster.apply((StageConfig("yolov5m", 1.0, 1, 1), StageConfig("resnet18", 1.0, 1, 1))).ok
    assert delays == [3.0]


def test_a_failing_stage_is_reported_bounded_and_does_not_block_the_others(kube, tmp_path):
    cluster, delays = make_cluster(kube, tmp_path, {"retry": {"attempts": 3, "backoff_s": 0.1}})
    kube.add_fault(Fault("patch", "deployments", status=500, times=1000, name="crop", message="etcd timeout"))
    report = cluster.apply((StageConfig("yolov5m", 1.0, 1, 1), StageConfig("resnet34", 1.0, 1, 1)))
    assert not report.ok and [r.stage for r in report.failed] == ["crop"]
    crop, cls = report.results
    assert crop.attempts == 3 and not crop.fatal and "500" in crop.error and "etcd timeout" in crop.error
    assert "gave up after 3 attempts" in crop.error
    assert delays == [0.1, 0.2]
    assert len([a for a in kube.audit() if a[0] == "patch" and a[3] == "crop"]) == 3
    assert cls.ok and env_of(kube.get("Deployment", "classification"), "MODEL_VARIANT") == "resnet34"
    assert env_of(kube.get("Deployment", "crop"), "MODEL_VARIANT") == "yolov5n"


def test_forbidden_patch_names_the_missing_rbac_verb(kube, tmp_path):
    cluster, delays = make_cluster(kube, tmp_path, token="no-patch")
    assert cluster.read_configuration()[0].variant == "yolov5n"  # get is still allowed
    report = cluster.apply((StageConfig("yolov5m", 1.0, 1, 1), StageConfig("resnet18", 1.0, 1, 1)))
    crop = report.results[0]
    assert not crop.ok and crop.fatal and crop.attempts == 1 and delays == []
    assert "RBAC verb 'patch'" in crop.error and "deployments.apps" in crop.error
    assert "deploy/rbac.yaml" in crop.error and f'User "{SA}" cannot patch' in crop.error
    assert report.fatal is crop


def test_forbidden_list_raises_naming_the_verb(kube, tmp_path):
    cluster, _ = make_cluster(kube, tmp_path, {"stages": {"crop": {"selector": "app=crop"}}}, token="no-list")
    with pytest.raises(KubePermissionError, match="RBAC verb 'list' on deployments.apps"):
        cluster.read_configuration()


def test_expired_credentials_are_a_clear_error(kube, tmp_path):
    cluster, delays = make_cluster(kube, tmp_path, token="expired-token")
    with pytest.raises(KubeCredentialsError, match=r"401 Unauthorized.*expired or is invalid"):
        cluster.read_configuration()
    assert delays == []  # retrying cannot fix credentials


def test_a_stage_matching_no_deployment(kube, tmp_path):
    cluster, _ = make_cluster(kube, tmp_path, {"stages": {"crop": {"name": "yolo"}}})
    with pytest.raises(ConfigError) as info:
        cluster.read_configuration()
    msg = str(info.value)
    assert "stage 'crop' matches no workload" in msg and "Deployment default/yolo not found" in msg
    assert "kubernetes.stages.crop" in msg


def test_selectors_must_match_exactly_one_workload(kube, tmp_path):
    cluster, _ = make_cluster(kube, tmp_path, {"stages": {"crop": {"selector": "app=crop"}}})
    assert cluster.read_configuration()[0].variant == "yolov5n"
    cluster, _ = make_cluster(kube, tmp_path, {"stages": {"crop": {"selector": "app in (crop,classification)"}}})
    with pytest.raises(ConfigError, match=r"matches 2 workloads \(classification, crop\)"):
        cluster.read_configuration()
    cluster, _ = make_cluster(kube, tmp_path, {"stages": {"crop": {"selector": "app=yolo"}}})
    with pytest.raises(ConfigError, match="matches no workload"):
        cluster.read_configuration()


def test_the_scope_selector_guards_named_workloads(kube, tmp_path):
    cluster, _ = make_cluster(kube, tmp_path, {"selector": "ipa-ext.io/pipeline=video"})
    assert len(cluster.read_configuration()) == 2
    cluster, _ = make_cluster(kube, tmp_path, {"selector": "ipa-ext.io/pipeline=audio"})
    with pytest.raises(ConfigError, match="does not match kubernetes.selector"):
        cluster.read_configuration()


@pytest.mark.parametrize("env", ["MODEL_VARIANT", "MLSERVER_MODEL_MAX_BATCH_SIZE"])
def test_an_env_var_missing_from_the_container_spec(kube, tmp_path, env):
    crop = kube.get("Deployment", "crop")
    c = crop["spec"]["template"]["spec"]["containers"][0]
    c["env"] = [e for e in c["env"] if e["name"] != env]
    kube.put(crop)
    cluster, _ = make_cluster(kube, tmp_path)
    with pytest.raises(ConfigError) as info:
        cluster.read_configuration()
    assert f"env var {env} missing from the container spec" in str(info.value)
    assert "container 'model'" in str(info.value)
    report = cluster.apply((StageConfig("yolov5m", 1.0, 1, 1), StageConfig("resnet18", 1.0, 1, 1)))
    assert report.results[0].fatal and env in report.results[0].error
    assert not [a for a in kube.audit() if a[0] == "patch" and a[3] == "crop"]


def test_a_named_container_must_exist(kube, tmp_path):
    cluster, _ = make_cluster(kube, tmp_path, {"defaults": {"container": "server"}})
    with pytest.raises(ConfigError, match=r"no container named 'server' \(containers: model\)"):
        cluster.read_configuration()


def test_dry_run_reports_patches_and_sends_none(kube, tmp_path):
    cluster, _ = make_cluster(kube, tmp_path)
    before = kube.versions("Deployment", "crop")
    report = cluster.apply((StageConfig("yolov5l", 4.0, 2, 5), StageConfig("resnet18", 1.0, 1, 1)),
                           dry_run=True)
    crop, cls = report.results
    assert crop.dry_run and crop.changed and crop.patch_type == STRATEGIC_MERGE
    assert crop.patch["spec"]["replicas"] == 5
    assert crop.patch["spec"]["template"]["spec"]["containers"][0]["env"] == [
        {"name": "MODEL_VARIANT", "value": "yolov5l"}, {"name": "MLSERVER_MODEL_MAX_BATCH_SIZE", "value": "2"}]
    assert not cls.changed and cls.patch is None
    assert not [a for a in kube.audit() if a[0] == "patch"]
    assert kube.versions("Deployment", "crop") == before
    assert cluster.read_configuration()[0] == StageConfig("yolov5n", 1.0, 1, 1)


def test_an_invalid_change_is_refused_once_and_not_retried(kube, tmp_path):
    # Without set_limits a request above the container's limit is invalid (422).
    cluster, delays = make_cluster(kube, tmp_path, {"defaults": {"set_limits": False}})
    report = cluster.apply((StageConfig("yolov5n", 2.0, 1, 1), StageConfig("resnet18", 1.0, 1, 1)))
    crop = report.results[0]
    assert not crop.ok and not crop.fatal and crop.attempts == 1 and delays == []
    assert "422" in crop.error and "must be less than or equal to cpu limit" in crop.error


def test_unreachable_api_server_is_transient_and_bounded(tmp_path):
    kc = tmp_path / "kubeconfig"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "x",
        "clusters": [{"name": "x", "cluster": {"server": closed_port_url()}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [{"name": "x", "context": {"cluster": "x", "user": "u"}}]}))
    delays: list[float] = []
    cluster = PipelineCluster.from_settings(
        parse_settings({"kubeconfig": str(kc), "retry": {"attempts": 2}}, STAGES), sleep=delays.append)
    with pytest.raises(KubeUnavailable) as info:
        cluster.read_configuration()
    assert isinstance(info.value, TransientError)
    assert "unreachable" in str(info.value) and "gave up after 2 attempts" in str(info.value)
    assert delays == [0.5]
    report = cluster.apply((StageConfig("a", 1.0, 1, 1), StageConfig("b", 1.0, 1, 1)))
    assert not report.ok and not report.fatal
    assert all("unreachable" in r.error for r in report.results)


def test_kubeconfig_problems_name_the_file(tmp_path):
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=f"kubeconfig {missing} not found"):
        PipelineCluster.from_settings(parse_settings({"kubeconfig": str(missing)}, STAGES))
    bad = tmp_path / "bad"
    bad.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    with pytest.raises(ConfigError, match=f"kubeconfig {bad}:"):
        PipelineCluster.from_settings(parse_settings({"kubeconfig": str(bad)}, STAGES))


def test_in_cluster_outside_a_pod_is_a_config_error():
    with pytest.raises(ConfigError, match="in-cluster credentials"):
        PipelineCluster.from_settings(parse_settings({"in_cluster": True}, STAGES))


# --------------------------------------------------------------------------- Seldon


def seldon(name, variant, batch, cpu="1", predictors=1):
    comp = {
        "replicas": 1,
        "spec": {"containers": [{
            "name": name, "image": "mlserver:1",
            "env": [{"name": "MODEL_VARIANT", "value": variant},
                    {"name": "MLSERVER_MODEL_MAX_BATCH_SIZE", "value": str(batch)},
                    {"name": "MLSERVER_PARALLEL_WORKERS", "value": "0"}],
            "resources": {"requests": {"cpu": cpu, "memory": "4Gi"}, "limits": {"cpu": cpu, "memory": "4Gi"}}}]},
    }
    preds = [{"name": name, "replicas": 1, "componentSpecs": [comp],
              "graph": {"name": name, "type": "MODEL"}}]
    for i in range(1, predictors):
        extra = copy.deepcopy(preds[0])
        extra["name"] = f"{name}-canary{i}"
        preds.append(extra)
    return {"apiVersion": "machinelearning.seldon.io/v1", "kind": "SeldonDeployment",
            "metadata": {"name": name, "namespace": "default"},
            "spec": {"name": name, "protocol": "v2", "predictors": preds}}


def test_seldon_deployments_are_read_and_changed_with_json_merge_patches(kube, tmp_path):
    kube.put(seldon("yolo", "yolov5n", 1, predictors=2))
    kube.put(seldon("resnet-human", "resnet18", 1))
    section = {"defaults": {"kind": "SeldonDeployment"},
               "stages": {"crop": {"name": "yolo"}, "classification": {"name": "resnet-human"}}}
    cluster, _ = make_cluster(kube, tmp_path, section)
    assert cluster.read_configuration() == (
        StageConfig("yolov5n", 1.0, 1, 1), StageConfig("resnet18", 1.0, 1, 1))
    want = (StageConfig("yolov5s", 2.0, 4, 3), StageConfig("resnet18", 1.0, 1, 1))
    report = cluster.apply(want)
    assert report.ok and report.results[0].patch_type == JSON_MERGE
    assert cluster.read_configuration() == want
    obj = kube.get("SeldonDeployment", "yolo")
    main, canary = obj["spec"]["predictors"]
    c = main["componentSpecs"][0]["spec"]["containers"][0]
    assert main["componentSpecs"][0]["replicas"] == 3
    assert c["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
    assert {e["name"]: e["value"] for e in c["env"]} == {
        "MODEL_VARIANT": "yolov5s", "MLSERVER_MODEL_MAX_BATCH_SIZE": "4", "MLSERVER_PARALLEL_WORKERS": "0"}
    assert canary == seldon("yolo", "yolov5n", 1, predictors=2)["spec"]["predictors"][1]
    assert {a[4] for a in kube.audit() if a[0] == "patch"} == {JSON_MERGE}


def test_seldon_conflict_keeps_a_concurrent_predictor_change(kube, tmp_path):
    kube.put(seldon("yolo", "yolov5n", 1, predictors=2))
    kube.put(seldon("resnet-human", "resnet18", 1))
    section = {"defaults": {"kind": "SeldonDeployment"},
               "stages": {"crop": {"name": "yolo", "predictor": "yolo"},
                          "classification": {"name": "resnet-human"}}}
    cluster, _ = make_cluster(kube, tmp_path, section)

    def scale_canary(obj):
        obj["spec"]["predictors"][1]["componentSpecs"][0]["replicas"] = 7

    kube.add_fault(Fault("patch", "seldondeployments", name="yolo", mutate=scale_canary))
    report = cluster.apply((StageConfig("yolov5x", 1.0, 1, 2), StageConfig("resnet18", 1.0, 1, 1)))
    assert report.ok and report.results[0].attempts == 2
    obj = kube.get("SeldonDeployment", "yolo")
    # A merge patch replaces the predictors list whole: without the precondition and the
    # re-read, our patch would have undone the canary's scale-up.
    assert obj["spec"]["predictors"][1]["componentSpecs"][0]["replicas"] == 7
    assert obj["spec"]["predictors"][0]["componentSpecs"][0]["replicas"] == 2


def test_pod_selectors_come_from_the_workloads(kube, tmp_path):
    kube.put(seldon("resnet-human", "resnet18", 1))
    section = {"stages": {"classification": {"kind": "SeldonDeployment", "name": "resnet-human"}}}
    cluster, _ = make_cluster(kube, tmp_path, section)
    sels = cluster.pod_selectors()
    assert sels["crop"].render() == "app=crop"
    assert sels["classification"].render() == "seldon-deployment-id=resnet-human"


# --------------------------------------------------------------------------- the manifests


def test_the_role_grants_only_get_list_and_patch_on_the_named_kinds():
    docs = [d for d in yaml.safe_load_all(RBAC.read_text()) if d]
    kinds = {d["kind"]: d for d in docs}
    assert set(kinds) == {"ServiceAccount", "Role", "RoleBinding"}
    rules = kinds["Role"]["rules"]
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
               for v in rule["verbs"]}
    assert granted == {
        ("apps", "deployments", "get"), ("apps", "deployments", "list"), ("apps", "deployments", "patch"),
        ("machinelearning.seldon.io", "seldondeployments", "get"),
        ("machinelearning.seldon.io", "seldondeployments", "list"),
        ("machinelearning.seldon.io", "seldondeployments", "patch"),
        ("", "pods", "get"), ("", "pods", "list"),
    }
    binding = kinds["RoleBinding"]
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": kinds["Role"]["metadata"]["name"]}
    assert binding["subjects"][0]["name"] == kinds["ServiceAccount"]["metadata"]["name"]


def test_the_example_pipeline_carries_the_env_vars_the_adapter_changes():
    assert [d["kind"] for d in PIPELINE] == ["Deployment", "Deployment"]
    for d in PIPELINE:
        c = d["spec"]["template"]["spec"]["containers"][0]
        names = {e["name"] for e in c["env"]}
        assert {"MODEL_VARIANT", "MLSERVER_MODEL_MAX_BATCH_SIZE"} <= names
        assert c["resources"]["requests"]["cpu"] and c["resources"]["limits"]["cpu"]


def test_the_adapter_manifest_uses_the_role_and_its_config_fits_the_example_pipeline(kube, tmp_path):
    from ipa_ext.config.config import config_from_mapping
    from ipa_ext.monitoring.prometheus import parse_prometheus_settings

    docs = {d["kind"]: d for d in yaml.safe_load_all((ROOT / "deploy" / "adapter.yaml").read_text()) if d}
    sa = next(d for d in yaml.safe_load_all(RBAC.read_text()) if d and d["kind"] == "ServiceAccount")
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"]
    assert pod["containers"][0]["args"][:4] == ["adapt", "/etc/ipa-ext/config.yaml", "--backend", "kubernetes"]
    raw = yaml.safe_load(docs["ConfigMap"]["data"]["config.yaml"])
    raw["pipeline"] = str(ROOT / "examples" / "video" / "pipeline.yaml")
    raw["profiles"] = str(ROOT / "examples" / "video" / "profiles.csv")
    config = config_from_mapping(raw, tmp_path / "config.yaml")
    parse_prometheus_settings(config.section("prometheus"), path=config.path)
    section = {**config.section("kubernetes"), "kubeconfig": str(kube.kubeconfig(tmp_path / "kc", token=TOKEN))}
    cluster = PipelineCluster.from_settings(parse_settings(section, config.pipeline.stage_names))
    current = cluster.read_configuration()
    assert [c.variant for c in current] == ["yolov5n", "resnet18"]
    for stage, sc in zip(config.pipeline.stages, current):
        assert sc.variant in stage.variant_names
    # every section the adapter reads is valid for ipa-ext adapt --backend kubernetes
    from ipa_ext.host import load_plugins
    from ipa_ext.run.runner import prepare

    prepared = prepare(config, load_plugins(), backend="kubernetes")
    assert prepared.settings.interval_s == 10 and prepared.predictor_desc["name"] == "moving-window-max"
    assert prepared.backend_spec.options["prometheus"]["url"] == "http://prometheus.monitoring:9090"
    assert pod["containers"][0]["args"][-2:] == ["--out", "/tmp/ipa-ext"]
    assert {"mountPath": "/tmp", "name": "tmp"} in pod["containers"][0]["volumeMounts"]
