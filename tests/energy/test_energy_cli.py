"""``ipa-ext energy probe`` and ``ipa-ext energy measure`` as a user runs them."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import pytest

from ipa_ext.cli import main
from ipa_ext.energy.command import format_command
from ipa_ext.energy.select import create

from support.cli import assert_one_line_error, run_cli
from support.paths import VIDEO

BUSY = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass\nraise SystemExit(7)\n"


def rapl_args(tree):
    return ["--source", "rapl", "-o", f"sysfs_root={tree}", "-o", "poll=false"]


def test_probe_lists_every_source_as_probe_reports_it(host):
    proc = run_cli("energy", "probe", "--json")
    assert proc.returncode == 0, proc.stderr
    rows = {r["source"]: r for r in json.loads(proc.stdout)}
    assert {"rapl", "perf", "nvml", "estimate"} <= set(rows)
    for name in ("rapl", "perf", "nvml", "estimate"):
        src = create(host, name)
        try:
            res = src.probe()
        finally:
            src.close()
        assert rows[name]["status"] == res.status.value, (name, rows[name], res)
        assert rows[name]["plugin"] == name
    assert rows["estimate"]["quality"] == "estimated"
    assert [d["id"] for d in rows["estimate"]["domains"]] == ["cpu", "cpu/active", "cpu/idle"]
    table = run_cli("energy", "probe").stdout
    assert table.splitlines()[0].split() == ["source", "status", "quality", "domains"]
    assert "hint:" in table or all(r["status"] == "available" for r in rows.values())


def test_probe_shows_a_source_that_needs_options_but_rejects_options_given_wrongly(tmp_path):
    # Probing every source: kepler has no url, which is a row of the table, not an error.
    rows = {r["source"]: r for r in json.loads(run_cli("energy", "probe", "--json").stdout)}
    assert rows["kepler"]["status"] == "needs options" and "url" in rows["kepler"]["detail"]
    # Options the user gave that the source refuses are an error naming where they came from.
    assert_one_line_error(run_cli("energy", "probe", "--source", "rapl", "-o", "bogus=1"),
                          "--source-option: energy source 'rapl': unknown option 'bogus' (known: sysfs_root")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"pipeline: {VIDEO / 'pipeline.yaml'}\nprofiles: {VIDEO / 'profiles.csv'}\n"
                   "energy: {sources: [{name: estimate, options: {wats: 3}}]}\n")
    assert_one_line_error(run_cli("energy", "probe", "--config", str(cfg)),
                          f"{cfg}: energy.sources[0].options: energy source 'estimate': unknown option 'wats'")


def test_measure_a_command_with_a_fake_rapl_tree(tmp_path):
    from ipa_ext.testing.powercap import server_tree

    fake = server_tree(tmp_path / "powercap", sockets=1, psys=False)
    counter = fake.path("0")
    cmd = [sys.executable, "-c", f"import time; time.sleep(0.2); open({str(counter)!r}, 'w').write('5000000\\n');"
           "time.sleep(0.2)"]
    out_csv = tmp_path / "intervals.csv"
    proc = run_cli("energy", "measure", *rapl_args(tmp_path / "powercap"), "--json", "--interval", "50",
                   "--csv", str(out_csv), "--", *cmd)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    dom = {d["id"]: d for d in rep["domains"]}
    assert dom["cpu0/package"]["energy_j"] == 5.0 and dom["cpu0/core"]["energy_j"] == 0.0
    assert rep["total_j"] == 5.0 and rep["quality"] == "measured" and rep["complete"]
    assert rep["exit_code"] == 0 and rep["duration_s"] >= 0.4
    assert rep["scope"] == "whole system" and rep["cpu_s"] is None  # counters cannot attribute to the command
    assert dom["cpu0/package"]["power_w"] == pytest.approx(5.0 / rep["duration_s"], rel=0.05)
    with open(out_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert sum(float(r["energy_j"]) for r in rows if r["domain"] == "cpu0/package") == 5.0
    assert {r["scope"] for r in rows} == {"whole system"}
    assert len({r["time_s"] for r in rows}) >= 6  # 50 ms intervals over about 0.4 s
    again = json.loads(run_cli("energy", "report", str(out_csv), "--json").stdout)
    assert again["total_j"] == 5.0 and again["quality"] == "measured"


def measure(capsys, *argv: str) -> tuple[int, str, str]:
    """``ipa-ext energy measure ARGV`` in this process: exit code, stdout, stderr."""
    code = main(["energy", "measure", *argv])
    out, err = capsys.readouterr()
    return code, out, err


ESTIMATE = ("--source", "estimate", "-o", "watts_per_core=10", "-o", "idle_w=2")
"""10 W per busy CPU and a 2 W idle floor: joules follow from CPU seconds and time alone."""


def test_measure_prints_like_perf_stat_and_says_the_scope(capsys):
    code, _, err = measure(capsys, *ESTIMATE, "--", sys.executable, "-c", BUSY)
    assert code == 7
    shown = format_command([sys.executable, "-c", BUSY])
    assert "\\n" in shown and "\n" not in shown  # one line
    assert f"\n Energy of '{shown}' and its child processes (source: estimate; estimated):\n" in err
    assert f"\n scope: process tree of '{shown}'\n" in err
    assert "J   cpu/active" in err and "cpu/idle" not in err.split("seconds time elapsed")[0]
    assert "seconds time elapsed" in err and "CPU seconds of the process tree" in err
    assert " J total (cpu/active), " in err
    assert "ipa-ext: note: not included: cpu/idle (estimate, estimated), 2.00 W × " in err
    assert "the command exited with status 7" in err
    code, _, err = measure(capsys, *ESTIMATE, "--whole-system", "--", "sleep", "0.1")
    assert code == 0
    assert "\n Whole-system energy while 'sleep 0.1' ran (source: estimate; estimated):\n" in err
    assert "\n scope: whole system (every process on the machine and its idle power, not only the command)\n" in err
    assert " J total (cpu), " in err and "J   cpu/idle" in err and "(in cpu)" in err
    assert "not included" not in err and "CPU seconds" not in err


def test_an_idle_command_costs_its_tree_almost_nothing(capsys):
    """sleep burns about a millisecond of CPU: its tree's estimate is that × 10 W, not the machine's."""
    code, out, _ = measure(capsys, *ESTIMATE, "--json", "--", "sleep", "0.5")
    rep = json.loads(out)
    assert code == 0 and rep["scope"] == "process tree of 'sleep 0.5'" and rep["quality"] == "estimated"
    assert [d["id"] for d in rep["domains"]] == ["cpu/active"]
    assert rep["domains"][0]["scope"] == rep["scope"]
    assert 0 <= rep["cpu_s"] < 0.1 and rep["total_j"] == pytest.approx(10 * rep["cpu_s"], abs=1e-9)
    [idle] = rep["excluded"]
    assert (idle["domain"], idle["source"], idle["power_w"], idle["quality"]) == ("cpu/idle", "estimate", 2.0, "estimated")
    assert idle["energy_j"] == pytest.approx(2.0 * rep["duration_s"]) and rep["duration_s"] >= 0.5
    code, out, _ = measure(capsys, *ESTIMATE, "--whole-system", "--json", "--", "sleep", "0.5")
    rep = json.loads(out)
    dom = {d["id"]: d for d in rep["domains"]}
    assert rep["scope"] == "whole system" and rep["excluded"] == [] and rep["cpu_s"] is None
    assert dom["cpu/idle"]["energy_j"] == pytest.approx(2.0 * rep["duration_s"], rel=0.01)
    assert rep["total_j"] == dom["cpu"]["energy_j"] >= dom["cpu/idle"]["energy_j"]


def test_the_tree_counts_children_and_grandchildren_that_exited_and_nothing_else(capsys):
    """Two grandchildren of 0.3 CPU s each have exited (one waited for by sh, one in the background
    then waited for) when the command ends; a busy process outside the tree is not counted."""
    burn = f"{sys.executable} -c '{BUSY.replace('raise SystemExit(7)', '')}'"
    outside = subprocess.Popen([sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 2: pass\n"])
    try:
        code, out, _ = measure(capsys, *ESTIMATE, "--json", "--", "sh", "-c", f"{burn}; {burn} & wait")
    finally:
        outside.kill()
        outside.wait()
    rep = json.loads(out)
    assert code == 0
    assert 0.58 <= rep["cpu_s"] < 0.6 + 0.3  # the two 0.3 s burns, and two interpreters starting
    assert rep["total_j"] == pytest.approx(10 * rep["cpu_s"], abs=1e-9)


def test_json_and_csv_of_one_run_agree_exactly(capsys, tmp_path):
    out_csv = tmp_path / "run.csv"
    code, out, _ = measure(capsys, *ESTIMATE, "--whole-system", "--json", "--csv", str(out_csv), "--interval", "50",
                           "--", sys.executable, "-c", BUSY)
    assert code == 7
    rep = json.loads(out)
    with open(out_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert {r["scope"] for r in rows} == {rep["scope"]} == {"whole system"}
    times = sorted({float(r["time_s"]) for r in rows})
    assert len(times) == len(rep["intervals"]) >= 6 and times[-1] == rep["duration_s"]
    for d in rep["domains"]:
        assert math.fsum(float(r["energy_j"]) for r in rows if r["domain"] == d["id"]) == d["energy_j"], d
        assert math.fsum(i["energy_j"][d["id"]] for i in rep["intervals"]) == d["energy_j"], d
    roots = [d["id"] for d in rep["domains"] if d["parent"] is None]
    assert roots == ["cpu"] and rep["total_j"] == math.fsum(float(r["energy_j"]) for r in rows if r["domain"] == "cpu")
    assert rep["total_j"] > 0


def test_measure_estimate_json_is_labelled_estimated(capsys):
    code, out, _ = measure(capsys, "--source", "estimate", "-o", "watts_per_core=10", "-o", "idle_w=0",
                           "--json", "--", sys.executable, "-c", BUSY)
    assert code == 7
    rep = json.loads(out)
    assert rep["quality"] == "estimated" and rep["exit_code"] == 7
    active = next(d for d in rep["domains"] if d["id"] == "cpu/active")
    assert active["quality"] == "estimated" and active["energy_j"] >= 10 * 0.25  # the command's own 0.3 CPU s


def test_signal_exit_code_like_a_shell():
    proc = run_cli("energy", "measure", "--source", "estimate", "--", "sh", "-c", "kill -TERM $$")
    assert proc.returncode == 128 + 15


def test_measure_errors_are_one_line(tmp_path):
    assert_one_line_error(run_cli("energy", "measure", "--source", "estimate", "--", "no-such-command-x"),
                          "cannot run 'no-such-command-x': command not found")
    assert run_cli("energy", "measure", "--source", "estimate", "--", "no-such-command-x").returncode == 127
    assert_one_line_error(run_cli("energy", "measure", "--source", "estimate"), "CMD: no command given")
    assert_one_line_error(run_cli("energy", "measure", "--source", "nope", "--", "true"),
                          "unknown energy source 'nope' (available: ", "estimate", "rapl")
    proc = run_cli("energy", "measure", *rapl_args(tmp_path / "missing"), "--", "true")
    assert_one_line_error(proc, "energy source rapl: ", "no intel-rapl or amd-rapl zones", "hint:")
    assert proc.returncode == 1
    assert_one_line_error(run_cli("energy", "measure", "-o", "x=1", "--", "true"),
                          "--source-option: 'x=1': name the source")
    assert_one_line_error(run_cli("energy", "measure", "--source", "estimate", "-o", "bogus=1", "--", "true"),
                          "unknown option 'bogus' (known: watts_per_core,")
    assert_one_line_error(run_cli("energy", "measure", "--source", "estimate", "--interval", "0", "--", "true"),
                          "--interval: must be a positive")


def test_measure_with_config_sources(tmp_path, root):
    cfg = tmp_path / "c.yaml"
    cfg.write_text((root / "examples/video/config.yaml").read_text()
                   .replace("pipeline.yaml", str(root / "examples/video/pipeline.yaml"))
                   .replace("profiles.csv", str(root / "examples/video/profiles.csv"))
                   + "energy:\n  sources:\n    - {name: estimate, options: {watts_per_core: 1, idle_w: 100}}\n")
    proc = run_cli("energy", "measure", "--config", str(cfg), "--json", "--", "sleep", "0.2")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["scope"] == "process tree of 'sleep 0.2'"
    assert [(x["domain"], x["power_w"]) for x in rep["excluded"]] == [("cpu/idle", 100.0)]
    proc = run_cli("energy", "measure", "--config", str(cfg), "--whole-system", "--json", "--", "sleep", "0.2")
    rep = json.loads(proc.stdout)
    idle = next(d for d in rep["domains"] if d["id"] == "cpu/idle")
    assert idle["power_w"] == pytest.approx(100.0) and rep["scope"] == "whole system"


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_serve_port_out_of_range_is_one_line(port):
    proc = run_cli("energy", "serve", "--source", "estimate", f"--port={port}")
    assert_one_line_error(proc, f"--port: must be 0..65535, got {port}")
    assert proc.returncode == 2
