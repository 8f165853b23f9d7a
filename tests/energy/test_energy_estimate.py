"""The estimate source and CPU-time readers: system, process tree and cgroup v2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ipa_ext.energy import EnergySourceError, Status
from ipa_ext.energy.cputime import CLK_TCK, CommandCpu, cgroup_cpu_s, process_tree_cpu_s, system_cpu
from ipa_ext.errors import InputError
from ipa_ext_plugins.energy.estimate import DEFAULT_TDP_PER_CPU_W, EstimateSource, lookup_tdp

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < {s}: pass\n"


def fake_proc(tmp_path, user=1000, system=500, idle=9000, cpus=4):
    (tmp_path / "stat").write_text(
        f"cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\n"
        + "".join(f"cpu{i} 0 0 0 0 0 0 0 0 0 0\n" for i in range(cpus))
        + "intr 1 2 3\nctxt 99\n")
    return tmp_path


def test_system_cpu_from_proc_stat(tmp_path):
    s = system_cpu(fake_proc(tmp_path, user=300, system=100, idle=700))
    assert s.busy_s == pytest.approx(400 / CLK_TCK) and s.idle_s == pytest.approx(700 / CLK_TCK) and s.cpus == 4


def test_config_values_give_exact_estimates(tmp_path):
    proc = fake_proc(tmp_path, user=1000, system=0)
    src = EstimateSource(watts_per_core=10.0, idle_w=20.0, proc=str(proc))
    assert src.probe().detail.startswith("estimated, not measured: whole system CPU time × 10 W per CPU + 20 W idle floor")
    a = src.read()
    fake_proc(tmp_path, user=1000 + 3 * CLK_TCK, system=CLK_TCK)  # 4 CPU seconds later
    b = src.read()
    assert b.quality == "estimated"
    assert b.joules["cpu/active"] - a.joules["cpu/active"] == pytest.approx(40.0)
    assert b.joules["cpu/idle"] - a.joules["cpu/idle"] == pytest.approx(20.0 * (b.timestamp_s - a.timestamp_s))
    assert b.joules["cpu"] == pytest.approx(b.joules["cpu/active"] + b.joules["cpu/idle"])
    assert {d.id: d.parent for d in src.domains()} == {"cpu": None, "cpu/active": "cpu", "cpu/idle": "cpu"}


def test_tdp_table_and_default(tmp_path):
    (tmp_path / "p").mkdir()
    proc = fake_proc(tmp_path / "p", cpus=40)
    info = tmp_path / "cpuinfo"
    info.write_text("model name\t: Intel(R) Xeon(R) Gold 6230 CPU @ 2.10GHz\n")
    m = EstimateSource(proc=str(proc), cpuinfo=str(info)).model()
    assert m.watts_per_cpu == pytest.approx(125 / 40 * 0.7) and m.idle_w == pytest.approx(125 * 0.3)
    assert m.basis.startswith("TDP 125 W over 40 CPUs, from the TDP table for Intel(R) Xeon(R) Gold 6230")
    assert m.basis.endswith("idle_fraction 0.3 of it is the idle floor")
    assert lookup_tdp("Intel(R) Core(TM) i7-8700K CPU") is None  # 8700K is not the 8700
    info.write_text("model name\t: Some Unknown CPU\n")
    m = EstimateSource(proc=str(proc), cpuinfo=str(info)).model()
    assert m.watts_per_cpu == pytest.approx(DEFAULT_TDP_PER_CPU_W * 0.7)
    assert "not in the TDP table" in m.basis
    m = EstimateSource(tdp_w=200, cpus=8, idle_fraction=0.5, proc=str(proc), cpuinfo=str(info)).model()
    assert (m.watts_per_cpu, m.idle_w) == (12.5, 100.0)
    assert m.basis == "TDP 200 W from config tdp_w over 8 CPUs; idle_fraction 0.5 of it is the idle floor"


def test_bad_options_are_config_errors(host):
    from ipa_ext.errors import ConfigError

    with pytest.raises(ConfigError, match="idle_fraction"):
        host.registry.create("energy source", "estimate", {"idle_fraction": 1.5})
    with pytest.raises(ConfigError, match=r"unknown option 'wats' \(known: watts_per_core, idle_w"):
        host.registry.create("energy source", "estimate", {"wats": 3})


def test_process_tree_cpu_time_follows_children_and_reaped_grandchildren():
    code = ("import subprocess, sys, time\n"
            f"subprocess.run([sys.executable, '-c', {BUSY.format(s=0.3)!r}])\n"  # reaped: in our cstime
            f"p = subprocess.Popen([sys.executable, '-c', {BUSY.format(s=0.3)!r}])\n"
            "p.wait(); print('done', flush=True); time.sleep(30)\n")
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout.readline().strip() == "done"
        cpu = process_tree_cpu_s(parent.pid)
    finally:
        parent.kill()
        parent.wait()
    assert cpu >= 0.55  # both children's 0.3 s, counted once each
    with pytest.raises(ProcessLookupError):
        process_tree_cpu_s(parent.pid)


GATED = "import sys, time\nsys.stdin.readline()\n" + BUSY.format(s=0.4) + "print('done', flush=True)\ntime.sleep(30)\n"
"""Burns 0.4 CPU s after a line on stdin, then says done: no wall-clock guesses in the tests."""


def test_estimate_of_a_process_tree_and_its_end():
    child = subprocess.Popen([sys.executable, "-c", GATED], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        src = EstimateSource(watts_per_core=10.0, idle_w=0.0, pid=child.pid)
        assert "process tree of pid" in src.probe().detail
        a = src.read()
        child.stdin.write("go\n")
        child.stdin.flush()
        assert child.stdout.readline().strip() == "done"
        b = src.read()
    finally:
        child.kill()
        child.wait()
    c = src.read()  # the tree is gone: its CPU time stops growing, no error
    assert b.joules["cpu/active"] - a.joules["cpu/active"] >= 10.0 * 0.38  # 0.4 CPU s at 10 W, jiffy rounding
    assert c.joules["cpu/active"] == b.joules["cpu/active"] and c.gaps == ()
    assert EstimateSource(pid=child.pid).probe().status is Status.ABSENT


def test_an_attributed_estimate_is_the_trees_active_energy_only(tmp_path):
    """A process tree is charged its CPU seconds × W per CPU; the idle floor is the machine's, left out."""
    cpu = [0.0]
    src = EstimateSource(watts_per_core=10.0, idle_w=5.0, proc=str(fake_proc(tmp_path)))
    assert src.scope == "whole system" and src.excluded_power_w() == {}
    assert src.attribute_to(lambda: cpu[0], "process tree of 'x'")
    assert src.scope == "process tree of 'x'" and src.excluded_power_w() == {"cpu/idle": 5.0}
    assert [(d.id, d.parent) for d in src.domains()] == [("cpu/active", None)]
    assert "process tree of 'x' CPU time × 10 W per CPU (the machine's 5 W idle floor" in src.probe().detail
    a = src.read()
    cpu[0] = 1.5
    b = src.read()
    assert a.joules == {"cpu/active": 0.0} and b.joules == {"cpu/active": 15.0}
    with pytest.raises(EnergySourceError, match="after the first read"):
        src.attribute_to(lambda: 0.0, "late")
    given = EstimateSource(watts_per_core=10.0, idle_w=5.0, pid=1)
    assert not given.attribute_to(lambda: 0.0, "x") and given.scope == "process tree of pid 1"
    assert [d.id for d in given.domains()] == ["cpu/active"] and given.excluded_power_w() == {"cpu/idle": 5.0}


def test_command_cpu_counts_the_tree_then_its_rusage_and_never_goes_down():
    import os

    c = CommandCpu()
    assert c() == 0.0  # not started yet
    child = subprocess.Popen([sys.executable, "-c", GATED], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    c.started(child.pid)
    child.stdin.write("go\n")
    child.stdin.flush()
    assert child.stdout.readline().strip() == "done"
    live = c()
    assert live >= 0.38  # 0.4 CPU s, jiffy rounding
    child.kill()
    _, _, rusage = os.wait4(child.pid, 0)
    child.returncode = -9
    assert c() == live  # gone from /proc: the last value stays
    c.finished(rusage)
    assert c() == max(live, rusage.ru_utime + rusage.ru_stime) >= live


def test_cgroup_v2_cpu_stat(tmp_path):
    (tmp_path / "cpu.stat").write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    assert cgroup_cpu_s(tmp_path) == 2.5
    (tmp_path / "cpu.stat").write_text("user_usec 1\n")
    with pytest.raises(InputError, match="cpu.stat: usage_usec: no usage_usec line"):
        cgroup_cpu_s(tmp_path)
    with pytest.raises(InputError, match="cannot read"):
        cgroup_cpu_s(tmp_path / "gone")


def test_real_system_is_always_available_and_estimated():
    src = EstimateSource()
    res = src.probe()
    assert res.status is Status.AVAILABLE and res.detail.startswith("estimated, not measured")
    assert src.read().quality == "estimated" and src.quality == "estimated"
