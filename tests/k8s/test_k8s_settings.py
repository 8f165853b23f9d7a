"""The ``kubernetes:`` config section and the value formats it uses (quantities, selectors)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipa_ext.errors import ConfigError
from ipa_ext.k8s import parse_settings
from ipa_ext.k8s.values import format_cpu, parse_cpu, parse_selector, selector_from_label_selector

STAGES = ["crop", "classification"]


# --------------------------------------------------------------------------- quantities


@pytest.mark.parametrize("raw, cores", [
    ("2", 2.0), ("500m", 0.5), ("1.5", 1.5), ("0.25", 0.25), ("2500m", 2.5), (".5", 0.5),
    ("1k", 1000.0), ("5e-1", 0.5), ("1Ki", 1024.0), (3, 3.0), (0.5, 0.5), ("100000000n", 0.1),
])
def test_cpu_quantities_parse_to_cores(raw, cores):
    assert parse_cpu(raw) == pytest.approx(cores)


@pytest.mark.parametrize("raw", ["", "two", "1.5.2", "-1", "1 m", "m", None, True, "1x"])
def test_malformed_cpu_quantities_are_rejected(raw):
    with pytest.raises(ValueError):
        parse_cpu(raw)


@given(st.integers(0, 10**7))
def test_formatted_cpu_reads_back_exactly(millicores):
    cores = millicores / 1000
    text = format_cpu(cores)
    assert parse_cpu(text) == cores
    assert text.endswith("m") == (millicores % 1000 != 0)


def test_cpu_finer_than_a_millicore_cannot_be_written():
    with pytest.raises(ValueError, match="finer than 1m"):
        format_cpu(0.0005)
    with pytest.raises(ValueError):
        format_cpu(-1)


# --------------------------------------------------------------------------- selectors

keys = st.sampled_from(["app", "tier", "ipa-ext.io/stage", "x"])
vals = st.sampled_from(["crop", "resnet", "a", "b-1", ""])
clauses = st.one_of(
    st.tuples(keys, st.sampled_from(["=", "!="]), vals).map(lambda t: f"{t[0]}{t[1]}{t[2]}"),
    st.tuples(keys, st.sampled_from(["in", "notin"]),
              st.lists(vals.filter(bool), min_size=1, max_size=3, unique=True))
    .map(lambda t: f"{t[0]} {t[1]} ({','.join(t[2])})"),
    keys,
    keys.map(lambda k: "!" + k),
)
labelsets = st.dictionaries(keys, vals, max_size=4)


@given(st.lists(clauses, min_size=1, max_size=4), labelsets)
def test_selectors_match_like_the_api_servers_grammar(cls, labels):
    pytest.importorskip("kmock")
    from support.kube_mock import selector_matches  # an independent implementation
    text = ",".join(cls)
    sel = parse_selector(text)
    assert sel.matches(labels) == selector_matches(text, labels)
    assert parse_selector(sel.render()) == sel


def test_label_selector_objects_become_selectors():
    sel = selector_from_label_selector({
        "matchLabels": {"app": "crop"},
        "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                             {"key": "old", "operator": "DoesNotExist"}]})
    assert sel.render() == "app=crop,tier in (a,b),!old"
    assert sel.matches({"app": "crop", "tier": "b"}) and not sel.matches({"app": "crop", "tier": "c"})
    with pytest.raises(ValueError, match="operator"):
        selector_from_label_selector({"matchExpressions": [{"key": "a", "operator": "Near"}]})


@pytest.mark.parametrize("text", ["app=", "=x", "app in ()", "a b", "app in (x", "app=(x)"])
def test_bad_selectors_name_the_clause(text):
    if text == "app=":  # an empty value is legal: app has the empty string
        assert parse_selector(text).matches({"app": ""})
        return
    with pytest.raises(ValueError, match="selector"):
        parse_selector(text)


# --------------------------------------------------------------------------- the section


def test_defaults_follow_ipas_layout():
    s = parse_settings(None, STAGES)
    assert [m.stage for m in s.stages] == STAGES
    crop = s.stage("crop")
    assert (crop.kind, crop.name, crop.variant_env, crop.batch_env, crop.set_limits) == (
        "Deployment", "crop", "MODEL_VARIANT", "MLSERVER_MODEL_MAX_BATCH_SIZE", True)
    assert s.namespace is None and s.in_cluster == "auto" and s.retry.attempts == 4
    assert [s.retry.delay_s(i) for i in range(6)] == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]


def test_defaults_and_per_stage_settings_merge(tmp_path):
    s = parse_settings({
        "namespace": "ml", "kubeconfig": "kc.yaml", "selector": "pipeline=video",
        "defaults": {"kind": "SeldonDeployment", "batch_env": "BATCH"},
        "stages": {"crop": {"name": "yolo", "component": 1},
                   "classification": {"kind": "Deployment", "selector": "app=resnet", "container": "srv"}},
    }, STAGES, path=tmp_path / "config.yaml")
    crop, cls = s.stages
    assert (crop.kind, crop.name, crop.component, crop.batch_env) == ("SeldonDeployment", "yolo", 1, "BATCH")
    assert (cls.kind, cls.name, cls.selector.render(), cls.container) == ("Deployment", None, "app=resnet", "srv")
    assert s.kubeconfig == tmp_path / "kc.yaml" and s.namespace == "ml"
    assert s.selector.render() == "pipeline=video"


@pytest.mark.parametrize("section, where, needle", [
    ({"namespaces": "x"}, "kubernetes.namespaces", "unknown key"),
    ({"stages": {"detector": {}}}, "kubernetes.stages.detector", "not a stage of the pipeline"),
    ({"stages": {"crop": {"kind": "StatefulSet"}}}, "kubernetes.stages.crop.kind", "must be one of"),
    ({"defaults": {"kind": "Job"}}, "kubernetes.defaults.kind", "must be one of"),
    ({"stages": {"crop": {"name": "a", "selector": "app=a"}}}, "kubernetes.stages.crop", "either name or selector"),
    ({"stages": {"crop": {"selector": "app in (x"}}}, "kubernetes.stages.crop.selector", "selector"),
    ({"stages": {"crop": {"predictor": 1}}}, "kubernetes.stages.crop.predictor", "SeldonDeployment only"),
    ({"stages": {"crop": {"variant_env": "B", "batch_env": "B"}}}, "kubernetes.stages.crop.batch_env",
     "must differ"),
    ({"retry": {"attempts": 0}}, "kubernetes.retry.attempts", ">= 1"),
    ({"retry": {"tries": 3}}, "kubernetes.retry.tries", "unknown key"),
    ({"in_cluster": "maybe"}, "kubernetes.in_cluster", "auto, true or false"),
    ({"request_timeout_s": "soon"}, "kubernetes.request_timeout_s", "expected a number, got 'soon'"),
    ({"defaults": {"name": "x"}}, "kubernetes.defaults.name", "per stage"),
    ({"stages": {"crop": {"set_limits": "yes"}}}, "kubernetes.stages.crop.set_limits", "true or false"),
    ({"stages": ["crop"]}, "kubernetes.stages", "must be a mapping"),
])
def test_bad_settings_name_the_field(tmp_path, section, where, needle):
    cfg = tmp_path / "config.yaml"
    with pytest.raises(ConfigError) as info:
        parse_settings(section, STAGES, path=cfg)
    assert info.value.where == where
    assert str(info.value).startswith(f"{cfg}: {where}: ")
    assert needle in str(info.value)
