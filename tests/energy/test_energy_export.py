"""Prometheus export: the collector, and ``ipa-ext energy serve`` scraped over real HTTP."""

from __future__ import annotations

import subprocess
import time
import urllib.request

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from ipa_ext.energy.attribution import attribute
from ipa_ext.energy.export import EnergyMetrics
from ipa_ext.energy.meter import Meter
from ipa_ext_plugins.energy.rapl import RaplSource

from ipa_ext.testing.powercap import server_tree

from support.cli import child_env, cli_command
from support.metrics import samples


def key(name, source, domain, stage="", quality="measured"):
    return (name, tuple(sorted({"source": source, "domain": domain, "stage": stage, "quality": quality}.items())))


def test_collector_counts_measurements_and_attributions(tmp_path):
    fake = server_tree(tmp_path, sockets=1, psys=False)
    meter = Meter(RaplSource(str(tmp_path), poll=False))
    metrics = EnergyMetrics()
    reg = CollectorRegistry()
    reg.register(metrics)
    meter.begin("i1")
    fake.set("0", 3_000_000)
    metrics.observe(meter.end("i1"))
    meter.begin("i2")
    fake.set("0", 5_000_000)
    metrics.observe(meter.end("i2"))
    a = attribute(2.0, 1.0, {"crop": 1.0, "classify": 1.0}, idle_power_w=0.5, total_cpu_s=4.0)
    metrics.observe_attribution(a, "rapl", "cpu0/package")
    got = samples(generate_latest(reg).decode())
    assert got[key("ipa_ext_energy_joules_total", "rapl", "cpu0/package")] == 5.0
    assert got[key("ipa_ext_energy_joules_total", "rapl", "cpu0/package", "crop")] == pytest.approx(0.375)
    assert got[key("ipa_ext_energy_joules_total", "rapl", "cpu0/package", "idle")] == 0.5
    assert got[key("ipa_ext_energy_joules_total", "rapl", "cpu0/package", "unattributed")] == pytest.approx(0.75)
    assert got[key("ipa_ext_power_watts", "rapl", "cpu0/package", "classify")] == pytest.approx(0.375)
    with pytest.raises(ValueError):
        metrics.add("rapl", "cpu0/package", -1.0)


def test_serve_over_real_http(tmp_path):
    fake = server_tree(tmp_path / "powercap", sockets=1, psys=False)
    proc = subprocess.Popen(  # a real server process, stopped by SIGTERM as a service manager would
        [*cli_command(), "energy", "serve", "--port", "0", "--interval", "100", "--duration", "60",
         "--source", "rapl", "-o", f"sysfs_root={tmp_path / 'powercap'}", "-o", "poll=false"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=child_env())
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving http://127.0.0.1:"), line + proc.stderr.read()
        url = line.split()[1]

        def scrape() -> dict:
            with urllib.request.urlopen(url, timeout=10) as resp:
                assert resp.status == 200
                assert resp.headers["Content-Type"].startswith("text/plain")
                return samples(resp.read().decode())

        k = key("ipa_ext_energy_joules_total", "rapl", "cpu0/package")
        deadline = time.monotonic() + 20
        got = scrape()
        while k not in got and time.monotonic() < deadline:
            time.sleep(0.05)
            got = scrape()
        assert got[k] == 0.0
        fake.set("0", 7_500_000)  # 7.5 J drawn
        fake.set("0:2", 1_000_000)
        dram = key("ipa_ext_energy_joules_total", "rapl", "cpu0/dram")
        while (got[k] < 7.5 or got[dram] < 1.0) and time.monotonic() < deadline:
            time.sleep(0.05)
            got = scrape()
        assert got[k] == 7.5 and got[dram] == 1.0
        assert key("ipa_ext_power_watts", "rapl", "cpu0/package") in got
        assert {dict(lbl)["quality"] for (_, lbl) in got} == {"measured"}
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
