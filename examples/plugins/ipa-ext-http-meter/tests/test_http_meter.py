"""The http-meter source against a simulated device server, and through ipa-ext's host and meter."""

from __future__ import annotations

import socket

import pytest

from ipa_ext.energy import Status
from ipa_ext.energy.meter import Meter
from ipa_ext.energy.source import EnergySourceError

from ipa_ext_http_meter import HttpMeter, register_energy_sources


def test_reads_cumulative_joules_per_outlet(pdu):
    src = HttpMeter(url=pdu.url, outlets=["1", "2"])
    assert src.probe().status is Status.AVAILABLE
    assert [d.id for d in src.domains()] == ["pdu/outlet1", "pdu/outlet2"]
    first = src.read()
    assert first.joules == {"pdu/outlet1": 100.0 * 3600, "pdu/outlet2": 5.0 * 3600}
    assert first.quality == "measured"
    pdu.outlets["1"] += 0.5
    assert src.read().joules["pdu/outlet1"] - first.joules["pdu/outlet1"] == pytest.approx(0.5 * 3600)


def test_counter_reset_is_a_gap_not_negative_energy(pdu):
    src = HttpMeter(url=pdu.url, outlets=["1"])
    a = src.read()
    pdu.outlets["1"] = 0.25          # the device rebooted and counts again from zero
    b = src.read()
    assert b.gaps == ("pdu/outlet1",) and b.gap_s["pdu/outlet1"] >= 0
    assert b.joules["pdu/outlet1"] == pytest.approx(a.joules["pdu/outlet1"] + 0.25 * 3600)


def test_meter_window_over_the_device(pdu):
    meter = Meter([HttpMeter(url=pdu.url, outlets=["1", "2"])])
    meter.begin("job")
    pdu.outlets["1"] += 0.01
    pdu.outlets["2"] += 0.02
    m = meter.end("job")
    assert m.energy_j["pdu/outlet1"] == pytest.approx(36.0)
    assert m.total_j == pytest.approx(36.0 + 72.0)
    assert m.quality == "measured"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_device_and_bad_documents(pdu):
    down = HttpMeter(url=f"http://127.0.0.1:{free_port()}/x", timeout_s=0.5)
    res = down.probe()
    assert res.status is Status.ABSENT and "cannot reach" in res.detail and res.hint
    with pytest.raises(EnergySourceError, match="cannot reach"):
        down.read()
    pdu.status = 403
    assert HttpMeter(url=pdu.url).probe().status is Status.PERMISSION
    pdu.status = 200
    pdu.body = b"<html>not json</html>"
    with pytest.raises(EnergySourceError, match="unexpected document"):
        HttpMeter(url=pdu.url).read()
    pdu.body = None
    with pytest.raises(EnergySourceError, match="outlet\\(s\\) 9 not reported"):
        HttpMeter(url=pdu.url, outlets=["9"]).read()
    assert HttpMeter().probe().status is Status.ABSENT


def test_discovered_through_the_entry_point(ipa_ext_host, pdu):
    rec = ipa_ext_host.record("http_meter")
    assert rec.status == "loaded" and rec.registered == {"energy source": ["http-meter"]}
    src = ipa_ext_host.registry.create("energy source", "http-meter", {"url": pdu.url})
    assert src.read().joules["pdu/outlet2"] == 5.0 * 3600


def test_bad_options_are_config_errors(ipa_ext_host):
    from ipa_ext.errors import ConfigError

    with pytest.raises(ConfigError, match="timeout_s must be > 0"):
        ipa_ext_host.registry.create("energy source", "http-meter", {"timeout_s": 0})
    with pytest.raises(ConfigError, match=r"unknown option 'ur' \(known: url,"):
        ipa_ext_host.registry.create("energy source", "http-meter", {"ur": "x"})


def test_register_plugin_fixture_adds_and_removes(register_plugin, ipa_ext_host):
    import types

    mod = types.ModuleType("pdu_copy")
    mod.register_energy_sources = register_energy_sources
    # same component name as the installed entry point: rejected, naming both plugins
    rec = register_plugin(mod, name="pdu-copy")
    assert rec.status == "failed" and "http_meter" in rec.error
