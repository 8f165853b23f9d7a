"""The nvml source against a fake NVML module with nvidia-ml-py's names, and the real "NVML absent" path."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import pytest

from ipa_ext.energy import EnergySourceError, Status
from ipa_ext.energy.meter import Meter
from ipa_ext_plugins.energy.nvml import NvmlSource

from support.paths import FAKE_NVML  # noqa: E402

sys.path.insert(0, str(FAKE_NVML))
import fake_pynvml as fake  # noqa: E402

H200 = {"name": "NVIDIA H200", "energy_mj": 1_000_000, "power_mw": 120_000, "mig": False}
P100 = {"name": "Tesla P100-PCIE-16GB", "energy_mj": None, "power_mw": 50_000, "mig": None}
K10 = {"name": "Tesla K10.G1.8GB", "energy_mj": None, "power_mw": None, "mig": None}


@pytest.fixture(autouse=True)
def fresh_fake():
    fake.GPUS = []
    fake.INIT_ERROR = None
    fake.calls.clear()
    fake._initialised = 0
    yield


def source(**kw) -> NvmlSource:
    return NvmlSource(module="fake_pynvml", **kw)


def test_energy_counter_gpu_one_domain_per_gpu():
    fake.GPUS = [dict(H200), dict(H200, name="NVIDIA H200 #2", energy_mj=5_000)]
    src = source()
    res = src.probe()
    assert res.status is Status.AVAILABLE
    assert res.detail == "gpu0 NVIDIA H200: energy counter; gpu1 NVIDIA H200 #2: energy counter"
    assert fake._initialised == 0  # probe shut NVML down again
    assert [(d.id, d.kind, d.parent) for d in src.domains()] == [("gpu0", "gpu", None), ("gpu1", "gpu", None)]
    meter = Meter(src)
    meter.begin("w")
    fake.GPUS[0]["energy_mj"] += 2_500   # 2.5 J
    fake.GPUS[1]["energy_mj"] += 40_000  # 40 J
    m = meter.end("w")
    src.close()
    assert m.energy_j == {"gpu0": 2.5, "gpu1": 40.0} and m.total_j == 42.5 and m.quality == "measured"
    assert "nvmlDeviceGetPowerUsage" not in fake.calls  # the counter is used, not sampled power
    assert fake.calls[-1] == "nvmlShutdown"


def test_pre_volta_gpu_integrates_sampled_power():
    fake.GPUS = [dict(P100)]
    src = source(sample_interval_s=0.01)
    res = src.probe()
    assert res.status is Status.AVAILABLE
    assert "no energy counter (pre-Volta); power sampled every 0.01 s" in res.detail
    try:
        a = src.read()
        deadline = time.monotonic() + 10
        while fake.calls.count("nvmlDeviceGetPowerUsage") < 8 and time.monotonic() < deadline:
            time.sleep(0.01)
        b = src.read()
        assert src.resolution_s == 0.01
    finally:
        src.close()
    # a constant 50 W integrates exactly over the sampled span
    assert (b.joules["gpu0"] - a.joules["gpu0"]) / (b.timestamp_s - a.timestamp_s) == pytest.approx(50.0)
    assert fake.calls.count("nvmlDeviceGetPowerUsage") >= 8  # the background sampler ran


def test_mig_and_unsupported_gpus_are_explained():
    fake.GPUS = [dict(H200, mig=True), dict(K10)]
    src = source()
    res = src.probe()
    assert res.status is Status.AVAILABLE
    assert res.detail == (
        "gpu0 NVIDIA H200: energy counter (MIG enabled: this is the whole GPU's energy; NVML has no "
        "per-instance power); gpu1 Tesla K10.G1.8GB: NVML reports neither energy nor power for it")
    assert [d.id for d in src.domains()] == ["gpu0"]  # no domain for the GPU that reports nothing


def test_only_unsupported_gpus_is_absent():
    fake.GPUS = [dict(K10)]
    res = source().probe()
    assert res.status is Status.ABSENT and "neither energy nor power" in res.detail


@pytest.mark.parametrize("code, status, words", [
    (fake.NVML_ERROR_LIBRARY_NOT_FOUND, Status.ABSENT, "no NVIDIA driver"),
    (fake.NVML_ERROR_DRIVER_NOT_LOADED, Status.ABSENT, "driver not loaded"),
    (fake.NVML_ERROR_NO_PERMISSION, Status.PERMISSION, "refused access"),
])
def test_init_errors(code, status, words):
    fake.INIT_ERROR = code
    res = source().probe()
    assert res.status is status and words in res.detail
    with pytest.raises(EnergySourceError, match="cannot initialise NVML"):
        source().read()


def test_counter_going_backwards_and_lost_gpu_are_gaps():
    fake.GPUS = [dict(H200)]
    src = source()
    meter = Meter(src)
    meter.begin("w")
    fake.GPUS[0]["energy_mj"] += 3_000
    src.read()
    fake.GPUS[0]["energy_mj"] -= 1_000  # a 64-bit millijoule counter never goes down
    assert src.read().gaps == ("gpu0",)
    fake.GPUS[0]["fail"] = fake.NVML_ERROR_GPU_IS_LOST
    assert src.read().gaps == ("gpu0",)
    del fake.GPUS[0]["fail"]
    fake.GPUS[0]["energy_mj"] += 500
    m = meter.end("w")
    src.close()
    assert m.energy_j["gpu0"] == 3.0  # the 3 J before the jump; nothing invented across the outage
    assert m.gap_s["gpu0"] > 0 and not m.complete


def test_sampled_gpu_failure_is_a_gap():
    fake.GPUS = [dict(P100)]
    src = source(sample_interval_s=10)  # no background samples: only reads sample
    a = src.read()
    fake.GPUS[0]["fail"] = fake.NVML_ERROR_GPU_IS_LOST
    b = src.read()
    del fake.GPUS[0]["fail"]
    time.sleep(0.01)
    c = src.read()
    src.close()
    assert b.gaps == ("gpu0",) and c.gaps == ()
    assert c.joules["gpu0"] == a.joules["gpu0"] == 0.0  # the outage is not integrated
    assert c.gap_s["gpu0"] == pytest.approx(c.timestamp_s - a.timestamp_s)


def test_real_nvml_absent_on_this_machine():
    """No fake: the default module (nvidia-ml-py) on a machine without an NVIDIA driver."""
    res = NvmlSource().probe()
    if importlib.util.find_spec("pynvml") is None:
        assert res.status is Status.ABSENT and "ipa-ext[nvml]" in res.hint
    elif not Path("/proc/driver/nvidia").exists():
        assert res.status is Status.ABSENT
        assert res.detail == "NVML library not found (NVML Shared Library Not Found): no NVIDIA driver here"
        assert "libnvidia-ml.so.1" in res.hint
    else:  # pragma: no cover - a machine with an NVIDIA driver
        assert res.status in (Status.AVAILABLE, Status.ABSENT, Status.PERMISSION)


def test_missing_bindings_module():
    res = NvmlSource(module="no_such_nvml_module").probe()
    assert res.status is Status.ABSENT and res.hint == "pip install 'ipa-ext[nvml]' (nvidia-ml-py)"


def test_measure_with_a_gpu_says_which_figure_is_whose(capsys):
    """A tree estimate for the CPU next to a GPU counter: the scope is per domain, and the table says so."""
    from ipa_ext.cli import main

    fake.GPUS = [dict(H200)]
    argv = ["energy", "measure", "--source", "estimate", "--source", "nvml", "-o", "nvml.module=fake_pynvml",
            "-o", "estimate.watts_per_core=10", "-o", "estimate.idle_w=2"]
    assert main([*argv, "--json", "--", "sleep", "0.1"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["scope"] == "mixed"
    assert {d["id"]: d["scope"] for d in rep["domains"]} == {"cpu/active": "process tree of 'sleep 0.1'",
                                                            "gpu0": "whole system"}
    assert main([*argv, "--", "sleep", "0.1"]) == 0
    err = capsys.readouterr().err
    assert "\n Energy while 'sleep 0.1' ran (source: estimate, nvml; mixed):\n" in err
    assert "\n scope: mixed: cpu/active: process tree of 'sleep 0.1'; gpu0: whole system\n" in err
