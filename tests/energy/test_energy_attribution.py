"""Kepler-style attribution: stages by CPU-time share, idle and unattributed apart, parts adding up."""

from __future__ import annotations

import math
import subprocess
import sys
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipa_ext.energy.attribution import StageAttributor, attribute, cgroup_counter, process_tree_counter
from ipa_ext.energy.meter import Meter
from ipa_ext.errors import InputError
from ipa_ext_plugins.energy.rapl import RaplSource

from ipa_ext.testing.powercap import server_tree

cpu_times = st.dictionaries(st.sampled_from(["crop", "classify", "detect", "audio"]),
                            st.floats(0, 1e4, allow_nan=False, allow_subnormal=False), max_size=4)


@given(st.floats(0, 1e7, allow_subnormal=False), st.floats(0.001, 1e4), cpu_times,
       st.floats(0, 1e3, allow_subnormal=False), st.floats(0, 1e4, allow_subnormal=False) | st.none())
def test_parts_add_up_to_the_measured_total(total_j, interval_s, cpu, idle_w, extra_cpu):
    machine = None if extra_cpu is None else sum(cpu.values()) + extra_cpu
    a = attribute(total_j, interval_s, cpu, idle_power_w=idle_w, total_cpu_s=machine)
    assert math.fsum(a.parts().values()) == pytest.approx(total_j, rel=1e-9, abs=1e-9)
    assert a.idle_j == pytest.approx(min(total_j, idle_w * interval_s))
    assert all(s.energy_j >= 0 for s in a.stages.values()) and a.unattributed_j >= -1e-6 * max(1, total_j)
    active = total_j - a.idle_j
    denom = machine if machine is not None and machine >= sum(cpu.values()) else sum(cpu.values())
    for name, s in a.stages.items():
        share = cpu[name] / denom if denom else 0.0
        assert s.share == share and s.energy_j == pytest.approx(active * share, rel=1e-9, abs=1e-9)


def test_kepler_split_with_idle_and_unattributed():
    # 100 J over 2 s with a 10 W idle floor; the machine was busy 4 CPU s, stages used 3
    a = attribute(100.0, 2.0, {"crop": 1.0, "classify": 2.0}, idle_power_w=10.0, total_cpu_s=4.0,
                  requests={"crop": 40, "classify": 0})
    assert a.idle_j == 20.0 and a.active_j == 80.0
    assert a.stages["crop"].energy_j == 20.0 and a.stages["classify"].energy_j == 40.0
    assert a.unattributed_j == 20.0
    assert a.parts() == {"crop": 20.0, "classify": 40.0, "idle": 20.0, "unattributed": 20.0}
    assert a.stages["crop"].j_per_request == 0.5
    assert a.stages["classify"].j_per_request is None  # served nothing: no per-request figure
    assert a.stages["crop"].share == 0.25


def test_idle_larger_than_total_is_capped_and_noted():
    a = attribute(5.0, 1.0, {"crop": 1.0}, idle_power_w=10.0)
    assert a.idle_j == 5.0 and a.stages["crop"].energy_j == 0.0 and a.unattributed_j == 0.0
    assert "idle capped" in a.notes[0]


def test_stage_time_above_machine_time_is_scaled_and_noted():
    a = attribute(10.0, 1.0, {"a": 3.0, "b": 1.0}, total_cpu_s=3.5)
    assert a.stages["a"].energy_j == 7.5 and a.unattributed_j == 0.0
    assert "shares are taken over the stages' sum" in a.notes[0]


@pytest.mark.parametrize("kwargs, where", [
    ({"total_j": -1.0}, "total_j"),
    ({"interval_s": float("nan")}, "interval_s"),
    ({"stage_cpu_s": {"a": -2.0}}, "stage_cpu_s.a"),
    ({"requests": {"a": 1.5}}, "requests.a"),
])
def test_bad_numbers_name_the_field(kwargs, where):
    args = {"total_j": 1.0, "interval_s": 1.0, "stage_cpu_s": {"a": 1.0}, **kwargs}
    with pytest.raises(InputError, match=f"^{where}: "):
        attribute(args.pop("total_j"), args.pop("interval_s"), args.pop("stage_cpu_s"), **args)


def test_stage_attributor_per_interval_from_cgroups(tmp_path):
    """What the adapter loop does each interval: meter + cgroup v2 cpu.stat per stage."""
    fake = server_tree(tmp_path / "powercap", sockets=1, psys=False)
    cg = {}
    for stage in ("crop", "classify"):
        cg[stage] = tmp_path / "cgroup" / stage
        cg[stage].mkdir(parents=True)
    usage = {"crop": 0, "classify": 0}
    machine = [100.0]

    def set_cpu(crop_s: float, classify_s: float, machine_s: float) -> None:
        usage["crop"] += int(crop_s * 1e6)
        usage["classify"] += int(classify_s * 1e6)
        machine[0] += machine_s
        for s in cg:
            (cg[s] / "cpu.stat").write_text(f"usage_usec {usage[s]}\nuser_usec 0\nsystem_usec 0\n")

    set_cpu(0, 0, 0)
    meter = Meter(RaplSource(str(tmp_path / "powercap"), poll=False))
    att = StageAttributor(meter, {s: cgroup_counter(p) for s, p in cg.items()},
                          idle_power_w=0.0, system_cpu_s=lambda: machine[0])
    assert sorted(att.domains) == ["cpu0/dram", "cpu0/package"]  # the CPU roots; cores would be inside
    fake.set("0", 90_000_000)   # 90 J package
    fake.set("0:2", 10_000_000)  # 10 J dram
    set_cpu(1.0, 3.0, 5.0)
    a = att.step(requests={"crop": 10, "classify": 30})
    assert a.total_j == 100.0
    assert a.stages["crop"].energy_j == pytest.approx(20.0)
    assert a.stages["classify"].energy_j == pytest.approx(60.0)
    assert a.unattributed_j == pytest.approx(20.0)
    assert a.stages["classify"].j_per_request == pytest.approx(2.0)
    # next interval: a stage's cgroup disappears (its pod was moved): flagged, energy unattributed
    fake.set("0", 140_000_000)
    set_cpu(0.0, 1.0, 2.0)
    (cg["crop"] / "cpu.stat").unlink()
    b = att.step()
    assert b.total_j == pytest.approx(50.0)
    assert b.stages["crop"].energy_j == 0.0 and b.stages["classify"].energy_j == pytest.approx(25.0)
    assert b.unattributed_j == pytest.approx(25.0)
    assert any("'crop': CPU time unreadable" in n for n in b.notes)


def test_stage_attributor_with_real_process_trees_and_lowest_power_idle(tmp_path):
    fake = server_tree(tmp_path, sockets=1, psys=False)
    gated = ("import sys, time\nsys.stdin.readline()\nt = time.process_time()\n"
             "while time.process_time() - t < 0.3: pass\nprint('done', flush=True)\ntime.sleep(30)\n")
    procs = [subprocess.Popen([sys.executable, "-c", gated], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    try:
        meter = Meter(RaplSource(str(tmp_path), poll=False))
        att = StageAttributor(meter, {"a": process_tree_counter(procs[0].pid),
                                      "b": process_tree_counter(procs[1].pid)})
        for p in procs:
            p.stdin.write("go\n")
            p.stdin.flush()
        fake.set("0", 50_000_000)
        for p in procs:
            assert p.stdout.readline().strip() == "done"
        first = att.step()
        fake.set("0", 60_000_000)
        time.sleep(0.05)
        second = att.step()
    finally:
        for p in procs:
            p.kill()
            p.wait()
    # Kepler without an idle measurement: idle power is the lowest interval power seen so far
    assert first.idle_j == pytest.approx(first.total_j)  # only one interval seen: all of it is idle
    assert second.idle_j <= second.total_j
    assert math.fsum(second.parts().values()) == pytest.approx(second.total_j)
    assert first.stages["a"].cpu_s >= 0.28 and first.stages["b"].cpu_s >= 0.28  # each burnt 0.3 CPU s
