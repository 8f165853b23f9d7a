"""The perf source: the real perf binary on this machine (expectations from the host's facts), perf's output
formats, and its failure modes."""

from __future__ import annotations

import sys
import textwrap
import time

import pytest

from ipa_ext.energy import EnergySourceError, Status
from ipa_ext.energy.meter import Meter
from ipa_ext.energy.perfstat import parse_csv_line, parse_human_line, parse_line
from ipa_ext_plugins.energy.perf import PerfSource, pmu_events

from support.hostfacts import PerfHost, perf_host

# ---------------------------------------------------------------- formats (lines as perf prints them)


def test_csv_interval_lines():
    # recorded from `perf stat -a -x, -I 300 -e cycles,instructions,power/energy-psys/` on this VM
    r = parse_csv_line("     0.300365990,0.00,Joules,power/energy-psys/,300505562,100.00,,")
    assert (r.time_s, r.value, r.unit, r.event, r.status) == (0.30036599, 0.0, "Joules", "power/energy-psys/", "ok")
    r = parse_csv_line("     0.300365990,<not supported>,,cycles,0,100.00,,")
    assert (r.value, r.status, r.event) == (None, "not supported", "cycles")
    r = parse_csv_line("2.001,<not counted>,Joules,power/energy-ram/,0,0.00,,")
    assert (r.time_s, r.value, r.status) == (2.001, None, "not counted")


def test_csv_summary_line_has_no_time():
    r = parse_csv_line("<not supported>,Joules,power/energy-psys/u,0,100.00,,")
    assert r.time_s is None and r.event == "power/energy-psys/u" and r.status == "not supported"
    assert parse_csv_line("12.50,Joules,power/energy-pkg/,1001,100.00,,").value == 12.5


def test_human_interval_lines():
    # the format of ../shared/data/perf-logs (perf stat -I 1000, no -x)
    r = parse_human_line("     1.000107406              74.55 Joules power/energy-pkg/                    \n")
    assert (r.time_s, r.value, r.unit, r.event) == (1.000107406, 74.55, "Joules", "power/energy-pkg/")
    r = parse_human_line("     3.0   1,234.56 Joules power/energy-pkg/      (50.00%)")
    assert r.value == 1234.56
    r = parse_human_line("     2.0   <not counted>      Joules power/energy-ram/")
    assert (r.value, r.status) == (None, "not counted")
    r = parse_human_line("     1.0        123      cycles      #    2.1 GHz")
    assert (r.unit, r.event, r.value) == ("", "cycles", 123.0)
    assert parse_human_line("#           time             counts   unit events") is None
    assert parse_human_line("       1.002345 seconds time elapsed") is None


@pytest.mark.parametrize("line", [
    "  1425.501793712",                        # cut after the time
    "  1425.501793712              13.21 Joules",  # cut before the event
    "hello world",
    "  1.0  12x.5 Joules power/energy-pkg/",
])
def test_bad_lines_raise(line):
    with pytest.raises(ValueError):
        parse_line(line, "human")


@pytest.mark.parametrize("line", ["1.0,74.5", "1.0,abc,Joules,power/energy-pkg/,1,100.00,,", "1.0,nan,Joules,x,1,1,,"])
def test_bad_csv_lines_raise(line):
    with pytest.raises(ValueError):
        parse_csv_line(line)


# ---------------------------------------------------------------- the real perf binary on this machine
# Machines of this kind differ: a 'power' PMU whose energy-psys reads 0 J, or no 'power' PMU at all.
# Each test reads the host's facts (hostfacts.py: sysfs, /proc and the real perf's own output) and
# asserts the one status ipa-ext must report for them.


def _offers(facts: PerfHost) -> str:
    if not facts.power_pmu:
        return " (this kernel has no 'power' PMU)"
    return f" (the power PMU here offers: {', '.join(pmu_events() or []) or 'none'})"


def _assert_no_energy_events(facts: PerfHost, src: PerfSource, res) -> None:
    where = "the kernel has no 'power' PMU" if not facts.power_pmu else "the 'power' PMU offers no energy events"
    assert res.detail == (f"{where}: this is a virtual machine" if facts.vm else where), res
    assert src.events == [] and src.domains() == []
    with pytest.raises(EnergySourceError, match=r"^perf: no energy events to count"):
        src.read()


def test_real_perf_on_this_machine_reports_what_the_host_implies():
    facts = perf_host()
    src = PerfSource(interval_ms=100)
    res = src.probe()
    expected = facts.expected_default()
    assert res.status is expected, (facts, res)
    if expected is not Status.ABSENT or facts.installed:
        assert sorted(src.events) == sorted(f"power/{e}/" for e in facts.energy_events)
    if not facts.energy_events:  # no power PMU (only power:* tracepoints), or one without energy events
        _assert_no_energy_events(facts, src, res)
        return
    events = ", ".join(src.events)
    if expected is Status.PERMISSION:
        assert f"perf_event_paranoid={facts.paranoid}" in res.detail and "CAP_PERFMON" in res.hint
        return
    assert expected in (Status.VIRTUALISED, Status.AVAILABLE), res
    try:
        first = src.read()
        time.sleep(0.35)
        later = src.read()
    finally:
        src.close()
    assert later.timestamp_s > first.timestamp_s and later.gaps == () and later.quality == "measured"
    assert set(later.joules) == {d.id for d in src.domains()} and len(src.records) >= 3
    if expected is Status.VIRTUALISED:  # energy-psys counts, but the hypervisor passes nothing through
        vm = " on a virtual machine" if facts.vm else ""
        assert res.detail == (f"perf counts {events} but every interval reads 0 J{vm}: the hypervisor "
                              f"does not pass RAPL through{_offers(facts)}")
        assert "use '--source estimate'" in res.hint
        assert set(first.joules.values()) == set(later.joules.values()) == {0.0}
        assert all(r.value == 0.0 for r in src.records)
    else:
        assert res.detail == f"perf counts {events} every 100 ms"
        assert all(later.joules[k] >= first.joules[k] for k in later.joules) and sum(later.joules.values()) > 0


def test_real_perf_energy_pkg_is_an_unknown_event_where_the_pmu_lacks_it():
    facts = perf_host()
    run = facts.run(["power/energy-pkg/", "power/energy-ram/"])
    src = PerfSource(events="energy-pkg,energy-ram")
    res = src.probe()
    expected = facts.expected(run)
    assert res.status is expected, (facts, run, res)
    if {"energy-pkg", "energy-ram"} <= set(facts.energy_events) or not facts.installed:
        return  # known events: the status above is the whole claim
    # unknown here: perf exits non-zero and ipa-ext quotes perf's reason, not its 'event syntax error' line
    assert expected is Status.ABSENT and run.returncode != 0
    prefix = f"perf does not know event(s) power/energy-pkg/, power/energy-ram/{_offers(facts)}: "
    assert res.detail.startswith(prefix), res
    why = res.detail[len(prefix):]
    assert why in run.reason_lines and not why.startswith("event syntax error"), (why, run.stderr)
    with pytest.raises(EnergySourceError, match=r"^perf: absent: perf does not know event\(s\) power/energy-pkg/"):
        src.read()
    src.close()


def test_real_perf_nonexistent_event():
    src = PerfSource(events="power/energy-nonexistent/")
    res = src.probe()
    assert res.status is Status.ABSENT
    assert res.detail.startswith("perf does not know event(s) power/energy-nonexistent/")
    assert "perf list" in res.hint


def test_real_perf_as_an_unprivileged_user():
    """As root the probe runs as nobody through the source's perf prefix (setpriv, no capabilities);
    as another user it runs as that user. With perf_event_paranoid > 0 perf falls back to user-only
    counting, which cannot see energy: a permission problem, where the PMU has energy events at all."""
    facts = perf_host(as_nobody=True)
    src = PerfSource(perf=list(facts.perf))
    res = src.probe()
    expected = facts.expected_default()
    assert res.status is expected, (facts, res)
    if not facts.energy_events:  # nothing to be refused: the host has no energy events for anyone
        _assert_no_energy_events(facts, src, res)
    elif not facts.privileged:
        assert expected is Status.PERMISSION
        assert f"perf_event_paranoid={facts.paranoid}" in res.detail
        assert "kernel.perf_event_paranoid=0" in res.hint and "CAP_PERFMON" in res.hint
    else:  # perf_event_paranoid <= 0: nobody counts system-wide like root
        assert expected is perf_host().expected_default()


# ---------------------------------------------------------------- a host without a 'power' PMU, on any host

MUST_NOT_RUN = [sys.executable, "-c", "raise SystemExit('perf must not run without energy events')"]
NO_PMU_PERF = textwrap.dedent("""
    import sys
    # perf 6.1 when the PMU an event names does not exist (recorded from
    # 'perf stat -a -x, -e nopmu/energy-pkg/ sleep 0.1'; the PMU here is 'power')
    sys.stderr.write(
        "event syntax error: 'power/energy-pkg/'\\n"
        "                     \\\\___ Cannot find PMU `power'. Missing kernel support?\\n"
        "Run 'perf list' for a list of valid events\\n\\n"
        " Usage: perf stat [<options>] [<command>]\\n\\n"
        "    -e, --event <event>   event selector. use 'perf list' to list available events\\n")
    sys.exit(129)
""")


def _cpuinfo(tmp_path, vm: bool):
    info = tmp_path / ("cpuinfo-vm" if vm else "cpuinfo")
    info.write_text("model name\t: Some CPU\nflags\t\t: fpu sse2" + (" hypervisor" if vm else "") + "\n")
    return str(info)


def test_no_power_pmu_is_virtualised_on_a_vm_and_absent_elsewhere(tmp_path):
    """The real probe path over a sysfs event_source root without 'power' (only tracepoints, as on
    some machines of this kind), and one whose 'power' PMU offers no energy events."""
    (tmp_path / "devices" / "tracepoint").mkdir(parents=True)
    root = str(tmp_path / "devices")
    src = PerfSource(pmu_root=root, cpuinfo=_cpuinfo(tmp_path, vm=True), perf=MUST_NOT_RUN)
    res = src.probe()
    assert (res.status, res.detail) == (Status.VIRTUALISED, "the kernel has no 'power' PMU: this is a virtual machine")
    assert "'--source estimate'" in res.hint
    with pytest.raises(EnergySourceError, match=r"^energy source 'perf' has no domains to measure; virtualised: "
                                                r"the kernel has no 'power' PMU"):
        Meter(src).snapshot()
    res = PerfSource(pmu_root=root, cpuinfo=_cpuinfo(tmp_path, vm=False), perf=MUST_NOT_RUN).probe()
    assert (res.status, res.detail) == (Status.ABSENT, "the kernel has no 'power' PMU")
    assert "CONFIG_PERF_EVENTS_INTEL_RAPL" in res.hint
    (tmp_path / "devices" / "power" / "events").mkdir(parents=True)
    (tmp_path / "devices" / "power" / "events" / "cpu_clk.scale").write_text("1\n")
    res = PerfSource(pmu_root=root, cpuinfo=_cpuinfo(tmp_path, vm=True), perf=MUST_NOT_RUN).probe()
    assert res.detail == "the 'power' PMU offers no energy events: this is a virtual machine"


def test_explicit_events_without_a_power_pmu_quote_perfs_reason(tmp_path):
    (tmp_path / "devices").mkdir()
    script = tmp_path / "perf.py"
    script.write_text(NO_PMU_PERF)
    src = PerfSource(events="energy-pkg", pmu_root=str(tmp_path / "devices"), cpuinfo=_cpuinfo(tmp_path, vm=True),
                     perf=[sys.executable, str(script)])
    res = src.probe()
    assert res.status is Status.ABSENT
    assert res.detail == ("perf does not know event(s) power/energy-pkg/ (this kernel has no 'power' PMU): "
                          "Cannot find PMU `power'. Missing kernel support?")
    assert "perf list power" in res.hint


def test_missing_perf_binary():
    res = PerfSource(perf="/nonexistent/perf").probe()
    assert res.status is Status.ABSENT and "linux-perf" in res.hint
    with pytest.raises(EnergySourceError, match="cannot run '/nonexistent/perf'"):
        PerfSource(perf="/nonexistent/perf", events="energy-pkg").read()


# ---------------------------------------------------------------- intervals perf cannot produce here

FAKE_PERF = textwrap.dedent("""
    import signal, sys, time
    # a stand-in for perf on hardware we lack: checks its arguments, replays recorded stderr
    args = sys.argv[2:]
    assert args[:5] == ["stat", "-a", "-x,", "-I", "50"], args
    assert args[5:] == ["-e", "power/energy-pkg/,power/energy-ram/,power/energy-cores/"], args
    signal.signal(signal.SIGINT, lambda *a: sys.exit(0))
    for line in open(sys.argv[1]):
        sys.stderr.write(line); sys.stderr.flush()
        time.sleep(0.002)
    time.sleep(60)
""")


def test_not_counted_intervals_are_gaps_and_groups_are_applied_whole(tmp_path):
    script = tmp_path / "perf.py"
    script.write_text(FAKE_PERF)
    out = tmp_path / "stderr.txt"
    out.write_text(textwrap.dedent("""\
        0.050,10.00,Joules,power/energy-pkg/,50000000,100.00,,
        0.050,2.00,Joules,power/energy-ram/,50000000,100.00,,
        0.050,6.00,Joules,power/energy-cores/,50000000,100.00,,
        0.100,11.00,Joules,power/energy-pkg/,50000000,100.00,,
        0.100,<not counted>,Joules,power/energy-ram/,0,0.00,,
        0.100,7.00,Joules,power/energy-cores/,50000000,100.00,,
        0.150,12.00,Joules,power/energy-pkg/,50000000,100.00,,
        0.150,2.50,Joules,power/energy-ram/,50000000,100.00,,
        0.150,<not supported>,Joules,power/energy-cores/,0,100.00,,
        WARNING: a line perf might print
    """))
    src = PerfSource(events="energy-pkg,energy-ram,energy-cores", interval_ms=50,
                     perf=[sys.executable, str(script), str(out)])
    assert {d.id: d.parent for d in src.domains()} == {"cpu/package": None, "cpu/dram": None, "cpu/core": "cpu/package"}
    try:
        deadline = time.monotonic() + 10
        r = src.read()
        # the reader thread takes perf's lines as they come: wait for the last one (the warning)
        while ((r.joules.get("cpu/package", 0) < 33.0 or "WARNING: a line perf might print" not in src.messages)
               and time.monotonic() < deadline):
            time.sleep(0.01)
            r = src.read()
    finally:
        src.close()
    assert r.joules == {"cpu/package": 33.0, "cpu/dram": 4.5, "cpu/core": 13.0}
    assert r.gap_s == pytest.approx({"cpu/dram": 0.05, "cpu/core": 0.05})
    assert "WARNING: a line perf might print" in src.messages
    m = Meter(PerfSource(events="energy-pkg", perf=[sys.executable, "-c", "pass"]))
    assert m.resolution_s == 0.1


def test_perf_that_exits_at_once_is_one_clear_error(tmp_path):
    src = PerfSource(events="energy-pkg", perf=[sys.executable, "-c",
                     "import sys; sys.stderr.write('Error:\\nAccess to performance monitoring and observability "
                     "operations is limited.\\n'); sys.exit(255)"])
    with pytest.raises(EnergySourceError) as info:
        src.read()
    msg = str(info.value)
    assert "\n" not in msg
    assert msg == ("perf: permission: perf was refused: Access to performance monitoring and observability "
                   "operations is limited.; system-wide energy events need root or CAP_PERFMON, or "
                   "'sudo sysctl -w kernel.perf_event_paranoid=0'")
