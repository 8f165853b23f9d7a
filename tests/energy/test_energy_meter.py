"""The meter: nested and overlapping windows, resolution flags, gaps, power series, overlapping sources."""

from __future__ import annotations

import math
import threading
import time

import pytest

from ipa_ext.energy import Domain, EnergySource, ProbeResult, Reading, Status
from ipa_ext.energy.meter import IntervalSampler, Meter, WindowError, combine
from ipa_ext.errors import ConfigError
from ipa_ext_plugins.energy.estimate import EstimateSource
from ipa_ext_plugins.energy.rapl import RaplSource

from ipa_ext.testing.powercap import server_tree


class Ramp(EnergySource):
    """A source whose joules are ``power_w`` × time since it was created (a stand-in with a known truth)."""

    name = "ramp"

    def __init__(self, power_w: float = 100.0, resolution_s: float = 0.0, quality: str = "measured") -> None:
        self.power_w = power_w
        self.resolution_s = resolution_s
        self.quality = quality
        self.t0 = time.monotonic()

    def probe(self) -> ProbeResult:
        return ProbeResult(Status.AVAILABLE)

    def domains(self) -> list[Domain]:
        return [Domain("pdu0", "outlet")]

    def read(self) -> Reading:
        t = time.monotonic()
        return Reading(t, {"pdu0": self.power_w * (t - self.t0)}, self.quality)


def test_nested_and_overlapping_windows(tmp_path):
    fake = server_tree(tmp_path, sockets=1, psys=False)
    meter = Meter(RaplSource(str(tmp_path), poll=False))
    energy = 0

    def draw(joules: int) -> None:
        nonlocal energy
        energy += joules * 1_000_000
        fake.set("0", energy)

    meter.begin("outer")
    draw(1)
    with meter.window("inner") as inner:
        draw(2)
        meter.begin("overlap")  # starts inside "inner", ends after it
        draw(4)
    draw(8)
    overlap = meter.end("overlap")
    outer = meter.end("outer")
    assert inner.measurement.energy_j["cpu0/package"] == 6.0
    assert overlap.energy_j["cpu0/package"] == 12.0
    assert outer.energy_j["cpu0/package"] == 15.0
    assert outer.duration_s >= inner.measurement.duration_s
    assert outer.quality == "measured" and outer.complete


def test_windows_from_many_threads_do_not_interfere():
    meter = Meter(Ramp(power_w=50.0))
    results = {}

    def work(i: int) -> None:
        with meter.window(f"t{i}") as w:
            time.sleep(0.02 + 0.01 * (i % 3))
        results[i] = w.measurement

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 8
    for m in results.values():
        # each window's joules match its own covered time at 50 W
        assert m.energy_j["pdu0"] == pytest.approx(50.0 * m.covered_s["ramp"])
        assert m.power_w("pdu0") == pytest.approx(50.0)


def test_window_keys_are_unique_while_open():
    meter = Meter(Ramp())
    meter.begin("a")
    with pytest.raises(WindowError, match="'a' is already open"):
        meter.begin("a")
    meter.end("a")
    with pytest.raises(WindowError, match="'a' is not open"):
        meter.end("a")


def test_window_shorter_than_resolution_is_flagged():
    meter = Meter(Ramp(resolution_s=0.5))
    with meter.window("short") as w:
        pass
    assert w.measurement.below_resolution and w.measurement.resolution_s == 0.5
    with meter.window("long") as w2:
        time.sleep(0.02)
    assert Meter(Ramp(resolution_s=0.01)).resolution_s == 0.01
    assert w2.measurement.below_resolution  # 20 ms < 500 ms still


def test_window_with_an_exception_is_dropped():
    meter = Meter(Ramp())
    with pytest.raises(RuntimeError):
        with meter.window("x"):
            raise RuntimeError("boom")
    meter.begin("x")  # the key is free again


def test_quality_is_never_mixed_silently(tmp_path):
    meter = Meter([EstimateSource(watts_per_core=1, idle_w=1), Ramp()])
    meter.begin("w")
    m = meter.end("w")
    assert m.quality == "mixed"
    assert m.domain_quality == {"cpu": "estimated", "cpu/active": "estimated", "cpu/idle": "estimated",
                                "pdu0": "measured"}
    assert m.as_dict()["quality"] == "mixed"


def test_two_sources_measuring_the_cpu_are_refused(tmp_path):
    server_tree(tmp_path)
    meter = Meter([RaplSource(str(tmp_path), poll=False), EstimateSource()])
    with pytest.raises(ConfigError, match="'rapl' and 'estimate' both measure the CPU"):
        meter.begin("w")


def test_interval_sampling_gives_a_power_series():
    meter = Meter(Ramp(power_w=80.0))
    seen = []
    sampler = IntervalSampler(meter, 0.05, on_interval=seen.append).start()
    deadline = time.monotonic() + 10
    while len(seen) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    series = sampler.stop()
    assert len(series) >= 5 and seen == series[: len(seen)]  # four full intervals and the last partial one
    starts = [m.start_s for m in series]
    assert starts == sorted(starts)
    for a, b in zip(series, series[1:]):  # back to back: no time lost between intervals
        assert b.start_s == pytest.approx(a.start_s + a.duration_s)
    for m in series:
        assert m.power_w("pdu0") == pytest.approx(80.0)
    total = sum(m.energy_j["pdu0"] for m in series)
    covered = sum(m.covered_s["ramp"] for m in series)  # the readings' own timestamps
    assert total == pytest.approx(80.0 * covered)
    wall = series[-1].start_s + series[-1].duration_s - series[0].start_s
    assert covered == pytest.approx(wall, abs=0.05)


def test_interval_sampling_flags_the_interval_with_a_gap(tmp_path):
    fake = server_tree(tmp_path, sockets=1, psys=False)
    src = RaplSource(str(tmp_path), poll=False)
    meter = Meter(src)
    sampler = IntervalSampler(meter, 10.0)
    sampler.start()
    first = sampler._last
    fake.set("0", 2_000_000)
    sampler._take()
    fake.path("0").unlink()
    sampler._take()
    fake.set("0", 3_000_000)
    sampler._take()
    fake.set("0", 4_000_000)
    series = sampler.stop()
    assert first is not None
    assert [m.energy_j["cpu0/package"] for m in series] == [2.0, 0.0, 0.0, 1.0]
    assert ["cpu0/package" in m.gap_s for m in series] == [False, True, True, False]


def test_combined_intervals_are_exactly_their_sum(tmp_path):
    """One window made of a sampler's intervals: the same joules, gaps and span, to the last bit."""
    fake = server_tree(tmp_path, sockets=1, psys=False)
    meter = Meter(RaplSource(str(tmp_path), poll=False))
    sampler = IntervalSampler(meter, 10.0).start()
    for uj in (1_100_001, 1_300_007, None, 2_700_003):
        if uj is None:
            fake.path("0").unlink()
        else:
            fake.set("0", uj)
        sampler._take()
    parts = sampler.stop(final=False)
    whole = combine("run", parts)
    assert whole.energy_j["cpu0/package"] == math.fsum(m.energy_j["cpu0/package"] for m in parts) == 1.100001 + 0.200006
    assert whole.duration_s == parts[-1].start_s + parts[-1].duration_s - parts[0].start_s
    assert whole.start_s == parts[0].start_s and whole.scope == "whole system"
    assert whole.gap_s["cpu0/package"] == math.fsum(m.gap_s.get("cpu0/package", 0.0) for m in parts)
    assert "cpu0/core" not in whole.gap_s
    assert whole.total_j == math.fsum(whole.energy_j[d.id] for d in whole.domains if d.parent is None)
    with pytest.raises(ValueError):
        combine("none", [])


def test_a_source_with_no_domains_is_an_error_not_zero_joules(tmp_path, host):
    from ipa_ext.energy.source import EnergySourceError

    empty = tmp_path / "powercap"
    empty.mkdir()  # a powercap folder without intel-rapl zones, as on a VM
    meter = Meter(host.registry.create("energy source", "rapl", {"sysfs_root": str(empty), "poll": False}))
    with pytest.raises(EnergySourceError, match=r"energy source 'rapl' has no domains to measure; \w+: "
                                                r"no intel-rapl or amd-rapl zones"):
        with meter.window("w"):
            pass
