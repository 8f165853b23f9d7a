"""ipa-ext's YAML config and the reader for upstream IPA configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipa_ext.config.config import load_config
from ipa_ext.config.ipa_import import read_ipa_config
from ipa_ext.errors import ConfigError
from ipa_ext.model import StageConfig

from support.paths import VIDEO


def cfg(tmp_path: Path, body: str) -> Path:
    p = tmp_path / "config.yaml"
    p.write_text(f"pipeline: {VIDEO / 'pipeline.yaml'}\nprofiles: {VIDEO / 'profiles.csv'}\n" + body)
    return p


def test_example_config(video_config):
    s = video_config.settings
    assert (s.accuracy_method, s.allocation_mode, s.threshold, s.batching_cap) == ("sum", "base", 4, 8)
    assert s.weights["alpha"] == 2 and s.weights["gamma"] == 1e-6
    assert s.initial[0] == StageConfig("yolov5n", 1.0, 1, 1)
    assert video_config.pipeline.stage_names == ("crop", "classification")


@pytest.mark.parametrize(
    "body,needle",
    [
        ("alhpa: 2\n", "alhpa: unknown key 'alhpa'"),
        ("weights: {alpha: two}\n", "weights.alpha: expected a number, got 'two'"),
        ("scaling_cap: 0\n", "scaling_cap: must be > 0"),
        ("batching_cap: 2.5\n", "batching_cap: must be a whole number"),
        ("allocation_mode: auto\n", "allocation_mode: must be one of fix, base, variable"),
        ("normalize_accuracy: yes please\n", "normalize_accuracy: expected true or false"),
        ("initial: {crop: {variant: yolov5n, cpu: 1, batch: 1, replicas: 1}}\n", "initial: missing stage(s) classification"),
        ("initial: {crop: {variant: yolo9, cpu: 1, batch: 1, replicas: 1}, classification: {variant: resnet18, cpu: 1, batch: 1, replicas: 1}}\n",
         "initial.crop.variant: unknown variant 'yolo9'"),
        ("initial: {crop: {variant: yolov5n, cpu: 3, batch: 1, replicas: 1}, classification: {variant: resnet18, cpu: 1, batch: 1, replicas: 1}}\n",
         "initial.crop: no profile row for yolov5n at cpu 3"),
        ("optimizer: {name: ilp, solver: cbc}\n", "optimizer: unknown key(s) solver (use 'options')"),
        ("carbon: {intensity: 3}\n", "carbon: expected {intensity_g_per_kwh: N} or {trace: FILE, start: TIME"),
        ("plugins: {load: [1]}\n", "plugins.load: must be a list of names"),
        ("sla_s: -1\n", "sla_s: must be > 0"),
    ],
)
def test_bad_fields_name_file_and_field(tmp_path, body, needle):
    p = cfg(tmp_path, body)
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert str(exc.value).startswith(str(p))
    assert needle in str(exc.value)


def test_missing_pipeline_and_bad_profiles_path(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("weights: {alpha: 1}\n")
    with pytest.raises(ConfigError, match="pipeline: missing"):
        load_config(p)
    p.write_text(f"pipeline: {VIDEO / 'pipeline.yaml'}\nprofiles: nope.csv\n")
    with pytest.raises(Exception, match="nope.csv: file not found"):
        load_config(p)


def test_unknown_weight_rejected_when_building_problem(tmp_path, host):
    c = load_config(cfg(tmp_path, "weights: {zeta: 1}\n"))
    with pytest.raises(ConfigError, match="weights.zeta: no objective uses weight 'zeta'"):
        c.build_problem(host)


def test_energy_weight_needs_power_fields(tmp_path, host):
    pipe = tmp_path / "p.yaml"
    pipe.write_text("stages:\n  - name: s\n    variants: {v: 50}\nprofiles:\n"
                    "  - {stage: s, variant: v, cpu: 1, batch: 1, latency_s: 0.1, throughput_rps: 10}\n")
    c = tmp_path / "c.yaml"
    c.write_text(f"pipeline: {pipe}\nweights: {{delta: 1}}\n")
    with pytest.raises(ConfigError, match=r"weights.delta: power objective: 1 profile row\(s\) lack power_w"):
        load_config(c).build_problem(host)


def test_carbon_constant_and_trace(tmp_path):
    c = load_config(cfg(tmp_path, "carbon: {intensity_g_per_kwh: 420}\n"))
    assert c.settings.carbon_intensity_g_per_kwh == 420
    trace = tmp_path / "ci.csv"
    trace.write_text("time_s,g_per_kwh\n0,300\n3600,200\n")
    c = load_config(cfg(tmp_path, f"carbon: {{trace: {trace}}}\n"))
    assert c.carbon.at(10) == 300 and c.carbon.at(3600) == 200 and c.carbon.at(1e9) == 200
    trace.write_text("time_s,g_per_kwh\n0,300\n0,200\n")
    with pytest.raises(ConfigError, match="row 3: time_s must increase"):
        load_config(cfg(tmp_path, f"carbon: {{trace: {trace}}}\n"))


def test_reads_ipa_video_config(shared_data):
    ipa = read_ipa_config(shared_data / "ipa-configs" / "video-1.yaml")
    v = ipa.values
    assert v["weights"] == {"alpha": 2, "beta": 1, "gamma": 0.000001}
    assert (v["scaling_cap"], v["batching_cap"], v["threshold"], v["sla_factor"]) == (100, 8, 4, 5)
    assert (v["allocation_mode"], v["accuracy_method"], v["normalize_accuracy"]) == ("base", "sum", True)
    assert v["optimizer"] == {"name": "ilp", "options": {"pool_gap": 0}}  # gurobi -> the exact ILP, ties-only pool
    assert v["initial"]["crop"] == {"variant": "yolov5n", "cpu": 1, "replicas": 1, "batch": 1}
    assert v["predictor"]["monitoring_duration_s"] == 120 and v["predictor"]["backup"] == "max"
    assert v["workload"] == {"type": "twitter", "start": 1301160, "end": 1302360, "damping_factor": 8}
    assert v["adaptation"] == {"interval_s": 10}
    for ignored in ("profiling_series", "reference_latency", "teleport_mode", "nodes", "central_queue"):
        assert ignored in ipa.ignored
    assert ipa.unknown == []


def test_from_ipa_imports_settings_and_local_keys_override(tmp_path, shared_data):
    p = cfg(tmp_path, f"from_ipa: {shared_data / 'ipa-configs' / 'video-1.yaml'}\n"
                      "weights: {beta: 0.5}\noptimizer: brute-force\n")
    c = load_config(p)
    assert c.settings.weights["alpha"] == 2 and c.settings.weights["beta"] == 0.5
    assert c.settings.batching_cap == 8
    assert c.optimizer.name == "brute-force"
    assert c.settings.initial[1] == StageConfig("resnet18", 1.0, 1, 1)
    assert "profiling_series" in c.ipa.ignored


def test_from_ipa_a_section_of_another_kind_replaces_the_imported_one(tmp_path, shared_data):
    ref = f"from_ipa: {shared_data / 'ipa-configs' / 'video-1.yaml'}\n"
    # IPA's twitter workload carries damping_factor; a synthetic workload here does not inherit it
    c = load_config(cfg(tmp_path, ref + "workload: {type: synthetic, pattern: steady}\n"))
    assert c.section("workload") == {"type": "synthetic", "pattern": "steady"}
    # the same kind is merged key by key
    c = load_config(cfg(tmp_path, ref + "workload: {trace: t.tbz2}\n"))
    assert c.section("workload") == {"type": "twitter", "start": 1301160, "end": 1302360, "damping_factor": 8,
                                     "trace": "t.tbz2"}
    # another predictor drops only the imported one's own options; backup and margin stay
    c = load_config(cfg(tmp_path, ref + "predictor: {name: moving-window-max, options: {window: 3}}\n"))
    p = c.section("predictor")
    assert p["name"] == "moving-window-max" and p["options"] == {"window": 3} and p["backup"] == "max"


def test_simulation_ipa_config_maps_rate(shared_data):
    ipa = read_ipa_config(shared_data / "ipa-configs" / "pipeline-simulation-video.yaml")
    assert ipa.values["rate_rps"] == 31 and ipa.values["batching_cap"] == 64


@pytest.mark.parametrize("key", ["workload", "simulation", "predictor", "adaptation", "kubernetes", "prometheus"])
def test_a_section_given_as_a_string_is_rejected(tmp_path, key):
    p = cfg(tmp_path, f"{key}: bursty\n")
    with pytest.raises(ConfigError, match=f"{key}: must be a mapping"):
        load_config(p)


@pytest.mark.parametrize("extra,where", [
    ("initial:\n  crop: {variant: yolov5n, cpu: 1, batch: 1, replicas: 1, bogus: 2}\n"
     "  classification: {variant: resnet18, cpu: 1, batch: 1, replicas: 1}\n", "initial.crop.bogus"),
    ("energy: {sourcez: [rapl]}\n", "energy.sourcez"),
])
def test_unknown_keys_in_nested_sections_name_the_field(tmp_path, extra, where):
    with pytest.raises(ConfigError, match=rf"{where}: unknown key"):
        load_config(cfg(tmp_path, extra))
