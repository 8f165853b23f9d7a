"""The rapl source on fake powercap trees, plus the real "absent or virtualised" path of this machine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ipa_ext.energy import Status
from ipa_ext.energy.hostinfo import is_virtual_machine
from ipa_ext.energy.meter import Meter
from ipa_ext_plugins.energy.rapl import RaplSource

from ipa_ext.testing.powercap import RANGE_UJ, FakePowercap, server_tree


def test_domains_of_a_two_socket_server_with_containment_parents(tmp_path):
    server_tree(tmp_path)
    src = RaplSource(str(tmp_path), poll=False)
    assert src.probe().status is Status.AVAILABLE
    doms = {d.id: (d.kind, d.parent) for d in src.domains()}
    assert doms == {
        "psys": ("psys", None),
        "cpu0/package": ("package", "psys"), "cpu1/package": ("package", "psys"),
        "cpu0/core": ("core", "cpu0/package"), "cpu1/core": ("core", "cpu1/package"),
        "cpu0/uncore": ("uncore", "cpu0/package"), "cpu1/uncore": ("uncore", "cpu1/package"),
        # DRAM is a sysfs child of the package but not inside its counter
        "cpu0/dram": ("dram", "psys"), "cpu1/dram": ("dram", "psys"),
    }


def test_without_psys_packages_and_dram_are_the_roots(tmp_path):
    fake = server_tree(tmp_path, sockets=2, psys=False)
    src = RaplSource(str(tmp_path), poll=False)
    meter = Meter(src)
    meter.begin("w")
    fake.set("0", 10_000_000)   # package 0: 10 J
    fake.set("0:0", 6_000_000)  # its cores: 6 J, inside the 10 J
    fake.set("1", 7_000_000)
    fake.set("0:2", 2_000_000)  # dram 0
    m = meter.end("w")
    assert m.energy_j["cpu0/core"] == 6.0
    assert m.total_j == 10.0 + 7.0 + 2.0  # packages + dram, cores not added again


def test_overlapping_zones_are_never_summed_psys_is_the_total(tmp_path):
    fake = server_tree(tmp_path)
    src = RaplSource(str(tmp_path), poll=False)
    meter = Meter(src)
    meter.begin("w")
    fake.set("2", 30_000_000)  # psys: 30 J for the whole platform
    fake.set("0", 12_000_000)
    fake.set("1", 11_000_000)
    fake.set("0:2", 3_000_000)
    m = meter.end("w")
    assert m.total_j == 30.0


def test_amd_rapl_and_multi_die_names(tmp_path):
    fake = FakePowercap(tmp_path, prefix="amd-rapl")
    fake.zone("0", "package-0-die-0")
    fake.zone("1", "package-0-die-1")
    fake.zone("0:0", "core")
    src = RaplSource(str(tmp_path), poll=False)
    assert {d.id for d in src.domains()} == {"cpu0-die0/package", "cpu0-die1/package", "cpu0-die0/core"}


def test_mmio_interface_is_not_counted_twice(tmp_path):
    server_tree(tmp_path, sockets=1, psys=False)
    FakePowercap(tmp_path, prefix="intel-rapl-mmio").zone("0", "package-0")
    assert [d.id for d in RaplSource(str(tmp_path), poll=False).domains()] == [
        "cpu0/core", "cpu0/dram", "cpu0/package", "cpu0/uncore"]


def test_unwraps_one_wrap_between_reads(tmp_path):
    fake = FakePowercap(tmp_path)
    fake.zone("0", "package-0", energy_uj=RANGE_UJ - 1_000_000)
    src = RaplSource(str(tmp_path), poll=False)
    a = src.read()
    fake.set("0", 2_000_000)  # wrapped: 1 J to the top, 2 J after
    b = src.read()
    assert b.joules["cpu0/package"] - a.joules["cpu0/package"] == pytest.approx(3.0)
    assert b.gaps == ()


def test_several_wraps_between_reads_are_counted_by_the_poller(tmp_path):
    """A 10 J counter wrapping three times between two reads: each poller tick sees one step."""
    range_uj = 10_000_000
    fake = FakePowercap(tmp_path)
    fake.zone("0", "package-0", energy_uj=0, range_uj=range_uj)
    now = [100.0]
    # 100 W at most: the counter wraps in 0.1 s at the earliest, so the poller ticks every 25 ms
    src = RaplSource(str(tmp_path), max_power_w=100.0, poll=False, clock=lambda: now[0])
    a = src.read()
    assert src.poll_interval_s == pytest.approx(0.025)
    raw = 0
    for _ in range(14):  # 14 ticks × 2.25 J (90 W) = 31.5 J: the counter wraps three times
        raw = (raw + 2_250_000) % range_uj
        fake.set("0", raw)
        now[0] += 0.025
        src.poll_once()
    now[0] += 0.001
    b = src.read()
    assert b.joules["cpu0/package"] - a.joules["cpu0/package"] == pytest.approx(31.5)
    assert b.gaps == () and src.polls == 14
    # without the poller the same 31.5 J between two reads cannot be recovered, and says so
    lone = RaplSource(str(tmp_path), max_power_w=100.0, poll=False, clock=lambda: now[0])
    c = lone.read()
    now[0] += 14 * 0.025
    fake.set("0", (raw + 31_500_000) % range_uj)
    d = lone.read()
    assert d.joules["cpu0/package"] == c.joules["cpu0/package"]
    assert d.gap_s["cpu0/package"] == pytest.approx(0.35)
    assert "wrap time" in lone.problems()["cpu0/package"]


def test_background_poller_runs_faster_than_the_wrap_time(tmp_path):
    range_uj = 40_000_000
    fake = FakePowercap(tmp_path)
    fake.zone("0", "package-0", energy_uj=0, range_uj=range_uj)
    # wrap time 40 J / 100 W = 0.4 s: the poller reads every 0.1 s
    src = RaplSource(str(tmp_path), max_power_w=100.0)
    try:
        a = src.read()
        assert src.poll_interval_s == pytest.approx(0.1)
        raw = 0
        for _ in range(9):  # 9 × 10 J = 90 J, two wraps, without a read() in between
            polls = src.polls
            raw = (raw + 10_000_000) % range_uj
            fake.set("0", raw)
            deadline = time.monotonic() + 10
            while src.polls < polls + 2 and time.monotonic() < deadline:
                time.sleep(0.005)
            assert src.polls >= polls + 2, "the poller stopped"
        b = src.read()
    finally:
        src.close()
    assert b.joules["cpu0/package"] - a.joules["cpu0/package"] == pytest.approx(90.0)
    assert b.gaps == ()


def test_file_vanishing_between_reads_is_a_flagged_gap(tmp_path):
    fake = server_tree(tmp_path, sockets=1, psys=False)
    src = RaplSource(str(tmp_path), poll=False)
    meter = Meter(src)
    meter.begin("w")
    fake.set("0", 5_000_000)
    src.read()
    fake.path("0").unlink()  # the zone went away
    r = src.read()
    assert "cpu0/package" in r.gaps
    assert r.joules["cpu0/package"] == 5.0  # what was measured is kept
    assert "cpu0/package" in src.problems()
    fake.set("0", 9_000_000)  # back, with a value we cannot vouch for
    m = meter.end("w")
    assert m.energy_j["cpu0/package"] == 5.0
    assert m.gap_s["cpu0/package"] > 0 and not m.complete
    assert "cpu0/core" not in m.gap_s


def test_counter_going_backwards_without_wrapping_is_a_flagged_gap(tmp_path):
    fake = server_tree(tmp_path, sockets=1, psys=False)
    src = RaplSource(str(tmp_path), poll=False)
    meter = Meter(src)
    meter.begin("w")
    fake.set("0", 5_000_000)
    src.read()
    fake.set("0", 4_000_000)  # down by 1 J; a wrap would be 262 kJ in a few ms
    r = src.read()
    assert r.gaps == ("cpu0/package",)
    assert "backwards without wrapping" in src.problems()["cpu0/package"]
    fake.set("0", 4_500_000)
    m = meter.end("w")
    assert m.energy_j["cpu0/package"] == pytest.approx(5.5)  # 5 J before, 0.5 J after; never 262 kJ
    assert "cpu0/package" in m.gap_s


def test_probe_reports_absent_root(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("flags\t\t: fpu vme sse2 hypervisor\n")
    # a sysfs_root that is not there is a wrong option, whatever the machine
    res = RaplSource(str(tmp_path / "nothing"), cpuinfo=str(cpuinfo)).probe()
    assert res.status is Status.ABSENT and "not a folder" in res.detail and "sysfs_root" in res.hint
    (tmp_path / "nothing").mkdir()  # an empty powercap folder: no RAPL driver, or a VM
    cpuinfo.write_text("flags\t\t: fpu vme sse2\n")
    res = RaplSource(str(tmp_path / "nothing"), cpuinfo=str(cpuinfo)).probe()
    assert res.status is Status.ABSENT and "modprobe intel_rapl_msr" in res.hint
    cpuinfo.write_text("flags\t\t: fpu vme sse2 hypervisor\n")
    res = RaplSource(str(tmp_path / "nothing"), cpuinfo=str(cpuinfo)).probe()
    assert res.status is Status.VIRTUALISED and "estimate" in res.hint


def test_this_machine_real_sysfs():
    """The real default path: what this machine's /sys/class/powercap says, without a fake."""
    res = RaplSource().probe()
    root = Path("/sys/class/powercap")
    zones = [p for p in root.glob("*-rapl:*")] if root.is_dir() else []
    if not zones:
        expected = Status.VIRTUALISED if is_virtual_machine() else Status.ABSENT
        assert res.status is expected, res
        assert "no intel-rapl or amd-rapl zones" in res.detail
    else:  # pragma: no cover - a machine with RAPL
        assert res.status in (Status.AVAILABLE, Status.PERMISSION), res


def test_eacces_gives_the_cve_2020_8694_hint(tmp_path):
    """energy_uj readable only by its owner, as since CVE-2020-8694, read by someone who may not.

    As root the probe runs without CAP_DAC_OVERRIDE (setpriv drops it), so the
    kernel really refuses the read with EACCES; as another user, mode 000 does.
    """
    server_tree(tmp_path, sockets=1, psys=False)
    code = (
        "import json, sys; from ipa_ext_plugins.energy.rapl import RaplSource;"
        "r = RaplSource(sys.argv[1]).probe();"
        "print(json.dumps({'status': r.status.value, 'detail': r.detail, 'hint': r.hint}))"
    )
    files = list(tmp_path.glob("*/energy_uj"))
    assert len(files) == 4
    if os.geteuid() == 0:
        for p in files:
            os.chown(p, 65534, 65534)
            p.chmod(0o400)
        cmd = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", sys.executable, "-c", code, str(tmp_path)]
    else:
        for p in files:
            p.chmod(0o000)
        cmd = [sys.executable, "-c", code, str(tmp_path)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["status"] == "permission"
    assert res["detail"] == "permission denied reading energy_uj of cpu0/core, cpu0/dram, cpu0/package, cpu0/uncore"
    assert "CVE-2020-8694" in res["hint"] and f"chmod o+r {tmp_path}/intel-rapl:*/energy_uj" in res["hint"]
