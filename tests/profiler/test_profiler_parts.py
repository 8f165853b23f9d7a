"""The profiler's parts on their own: latency statistics, monotonicity checks, the file header, the sweep
plan, the machine description, the GPU provider check, and row energy from NVML (a fake NVML module)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipa_ext.config.pipeline_files import load_pipeline
from ipa_ext.errors import InputError
from ipa_ext.profiler.checks import monotonicity
from ipa_ext.profiler.device import providers_for
from ipa_ext.profiler.energy import Idle, ProfileEnergy
from ipa_ext.profiler.grid import core_sets, parse_int_list, select
from ipa_ext.profiler.machine import _physical_cores, describe_machine
from ipa_ext.profiler.stats import cv, percentile, summarize
from ipa_ext.profiler.writer import Header

from support.paths import FAKE_NVML  # noqa: E402

sys.path.insert(0, str(FAKE_NVML))
import fake_pynvml as fake  # noqa: E402


@given(st.lists(st.floats(0.0001, 10.0), min_size=1, max_size=50), st.floats(0, 100))
def test_percentile_matches_numpy_linear(values, q):
    assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-9, abs=1e-12)


def test_summary_of_known_latencies():
    s = summarize([0.1, 0.2, 0.3, 0.4], q=99)
    assert (s.count, s.p50_s, s.min_s, s.max_s) == (4, pytest.approx(0.25), 0.1, 0.4)
    assert s.latency_s == pytest.approx(0.397)  # 0.3 + 0.97 * 0.1
    assert s.cv == pytest.approx(np.std([0.1, 0.2, 0.3, 0.4], ddof=1) / 0.25)
    assert cv([5.0]) == 0.0
    with pytest.raises(ValueError):
        summarize([])


def rows(table):
    return [{"stage": "s", "variant": "v", "cpu": c, "batch": b, "latency_s": lat * 2, "latency_p50_s": lat,
             "throughput_rps": thr} for c, b, lat, thr in table]


def test_monotone_rows_have_no_violations():
    assert monotonicity(rows([(1, 1, 0.2, 5), (1, 2, 0.3, 6.6), (2, 1, 0.12, 8), (2, 2, 0.2, 10)])) == []


def test_violations_name_the_place_and_the_figures():
    found = monotonicity(rows([(1, 1, 0.2, 5), (1, 2, 0.3, 4), (2, 1, 0.25, 8), (2, 2, 0.2, 10)]))
    assert [(v.kind, v.fixed) for v in found] == [("latency-cores", "batch 1"), ("throughput-batch", "cpu 1")]
    assert found[0].describe() == ("s/v batch 1: median latency does not fall with more cores: cpu 1 200.00 ms -> "
                                   "cpu 2 250.00 ms (+25.0%)")
    assert found[1].describe() == ("s/v cpu 1: throughput falls with a larger batch: batch 1 5 rps -> batch 2 4 rps "
                                   "(-20.0%)")
    # an equal median with more cores is a violation too: more cores bought nothing
    assert len(monotonicity(rows([(1, 1, 0.2, 5), (2, 1, 0.2, 5)]))) == 1


def test_header_round_trip():
    h = Header({"machine": "host x, CPU: y", "machine-id": "ab", "latency": "p99"},
               {"crop/yolo:v5": ("0" * 64, "zoo yolov5n input_size=64")})
    parsed = Header.parse(h.lines())
    assert parsed.fields == h.fields and parsed.models == h.models
    assert all(line.startswith("# ") for line in h.lines())


def test_int_lists_and_core_sets():
    assert parse_int_list("4, 1,2", "--batches") == (1, 2, 4)
    for bad in ("1,,2", "a", "0", "2,2"):
        with pytest.raises(InputError) as exc:
            parse_int_list(bad, "--batches")
        assert str(exc.value).startswith("--batches: ")
    assert core_sets(2, 2, [3, 0, 1, 2]) == [[0, 1], [2, 3]]
    with pytest.raises(InputError, match=r"^--cpus: 3 cores asked for; this machine lets ipa-ext use 2 \(CPUs 0-1\)"):
        core_sets(3, 1, [0, 1])
    with pytest.raises(InputError, match=r"^--replicas: 3 replicas of 2 cores need 6 CPUs; .* use 5 \(CPUs 0-2,5-6\)"):
        core_sets(2, 3, [0, 1, 2, 5, 6])


def test_selection_by_stage_and_variant(tmp_path):
    pp = tmp_path / "p.yaml"
    pp.write_text("stages:\n- name: a\n  variants:\n  - {name: x, accuracy: 1, zoo: resnet18}\n"
                  "  - {name: y, accuracy: 2}\n- name: b\n  variants:\n  - {name: x, accuracy: 1, zoo: resnet34}\n"
                  "profiles:\n- {stage: a, variant: x, cpu: 1, batch: 1, latency_s: 1, throughput_rps: 1}\n"
                  "- {stage: a, variant: y, cpu: 1, batch: 1, latency_s: 1, throughput_rps: 1}\n"
                  "- {stage: b, variant: x, cpu: 1, batch: 1, latency_s: 1, throughput_rps: 1}\n")
    pipe = load_pipeline(pp)
    stages = [(s.name, s.variant_names) for s in pipe.stages]
    assert select(stages, pipe.models, None, None) == ((("a", "x"), ("b", "x")), (("a", "y"),))
    assert select(stages, pipe.models, "b", None) == ((("b", "x"),), ())
    assert select(stages, pipe.models, None, "a/x") == ((("a", "x"),), ())
    with pytest.raises(InputError, match="^--variants: variant a/y names no model"):
        select(stages, pipe.models, None, "y")


def test_physical_cores_from_cpuinfo(tmp_path):
    blocks = [f"processor\t: {i}\nphysical id\t: {i // 4}\ncore id\t: {(i % 4) // 2}\n" for i in range(8)]
    (tmp_path / "cpuinfo").write_text("\n".join(blocks) + "\n")
    assert _physical_cores(tmp_path / "cpuinfo") == 4  # 2 sockets x 2 cores x 2 threads
    m = describe_machine()
    assert m.logical_cpus >= len(m.usable_cpus) >= 1 and m.memory_bytes > 0
    assert m.identity == describe_machine().identity and len(m.identity) == 16


def test_gpu_needs_the_cuda_provider():
    assert providers_for("cpu", []) == ["CPUExecutionProvider"]
    assert providers_for("gpu", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == \
        ["CUDAExecutionProvider", "CPUExecutionProvider"]
    with pytest.raises(InputError) as exc:
        providers_for("gpu", ["CPUExecutionProvider"])
    assert str(exc.value).startswith("--device: no GPU provider: onnxruntime offers CPUExecutionProvider, "
                                     "not CUDAExecutionProvider; install")


@pytest.fixture()
def fake_gpu():
    fake.GPUS = [{"name": "NVIDIA H200", "energy_mj": 1_000_000, "power_mw": 120_000, "mig": False}]
    fake.INIT_ERROR = None
    fake.calls.clear()
    fake._initialised = 0
    yield fake.GPUS[0]
    fake.GPUS = []


def test_row_energy_from_nvml(host, fake_gpu):
    """Measured GPU joules: dynamic = window J - idle W x window s; idle_w is one replica's share."""
    energy = ProfileEnergy(host, ["nvml"], {"nvml": {"module": "fake_pynvml"}}, machine_cpus=4)
    try:
        assert energy.quality == "measured" and energy.whole_system()
        energy.idle = Idle(scope_w=50.0, excluded_w=0.0, seconds=1.0, quality="measured")
        start = energy.snapshot()
        fake_gpu["energy_mj"] += 30_000  # 30 J while 100 requests were served
        e = energy.row(start, requests=100, cpu=1, replicas=1)
    finally:
        energy.close()
    dynamic = 30.0 - 50.0 * e.window_s
    assert e.window_j == pytest.approx(30.0) and e.quality == "measured"
    assert e.energy_j_per_request == pytest.approx(dynamic / 100)
    assert e.idle_w == pytest.approx(12.5)  # 50 W x 1 of 4 CPUs
    assert e.power_w == pytest.approx(12.5 + dynamic / e.window_s)


def test_idle_power_from_a_growing_nvml_counter(host, fake_gpu):
    fake_gpu.update(energy_mj="grow", power_mw=80_000)
    energy = ProfileEnergy(host, ["nvml"], {"nvml": {"module": "fake_pynvml"}})
    try:
        idle = energy.measure_idle(0.3)
    finally:
        energy.close()
    assert idle.scope_w == pytest.approx(80.0, rel=0.1) and idle.excluded_w == 0 and idle.quality == "measured"
    assert idle.gpu_w == idle.scope_w and idle.machine_w == 0  # the GPU's idle is not the host's
    assert energy.measures_gpu()


def test_a_gpu_replica_is_charged_the_gpus_idle_power(host, fake_gpu):
    energy = ProfileEnergy(host, ["nvml"], {"nvml": {"module": "fake_pynvml"}}, machine_cpus=4)
    try:
        energy.idle = Idle(scope_w=60.0, excluded_w=0.0, seconds=1.0, quality="measured", gpu_w=60.0)
        start = energy.snapshot()
        fake_gpu["energy_mj"] += 5_000
        on_gpu = energy.row(start, requests=10, cpu=1, replicas=2, gpu=True)
        on_cpu = energy.row(start, requests=10, cpu=1, replicas=2, gpu=False)
    finally:
        energy.close()
    assert on_gpu.idle_w == pytest.approx(30.0) and on_cpu.idle_w == 0.0


def test_the_estimate_counts_only_the_workers(host):
    """With no worker running the tree estimate's idle is 0 W; the machine's floor is reported apart."""
    energy = ProfileEnergy(host, ["estimate"], machine_cpus=2)
    try:
        idle = energy.measure_idle(0.05)
        assert not energy.whole_system() and energy.quality == "estimated"
        assert idle.scope_w == 0.0 and idle.excluded_w > 0 and idle.machine_w == idle.excluded_w
        assert "process trees of the profiler's workers" in energy.describe()
    finally:
        energy.close()


def test_the_progress_bar_shows_rows_and_an_eta(monkeypatch, capsys):
    import argparse
    import time as _time

    from ipa_ext.cli.profile_cmd import ProgressBar, show_progress
    from ipa_ext.profiler.grid import Point
    from ipa_ext.profiler.sweep import Measured, Progress

    args = argparse.Namespace(quiet=False, json=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setenv("CI", "true")
    assert not show_progress(args)
    monkeypatch.setenv("CI", "0")
    assert show_progress(args) and not show_progress(argparse.Namespace(quiet=True, json=False))
    progress = Progress(total=4, done=1, started_s=_time.monotonic() - 30)
    ProgressBar()(progress, Measured(Point("crop", "yolov5m", 2, 4), {}, ((0, 1),), 30.0))
    line = capsys.readouterr().err
    assert "1/4 rows  crop/yolov5m cpu 2 batch 4  0:30 elapsed, ETA 1:30" in line
