"""``ipa-ext energy probe`` and ``ipa-ext energy measure`` as a user runs them."""

from __future__ import annotations

import csv
import json
import sys

import pytest

from ipa_ext.energy.select import create

from conftest import VIDEO, assert_one_line_error, run_cli

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
    assert dom["cpu0/package"]["power_w"] == pytest.approx(5.0 / rep["duration_s"], rel=0.05)
    with open(out_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert sum(float(r["energy_j"]) for r in rows if r["domain"] == "cpu0/package") == 5.0
    assert len({r["time_s"] for r in rows}) >= 6  # 50 ms intervals over about 0.4 s
    again = json.loads(run_cli("energy", "report", str(out_csv), "--json").stdout)
    assert again["total_j"] == 5.0 and again["quality"] == "measured"


def test_measure_prints_like_perf_stat_and_passes_the_exit_code(tmp_path):
    proc = run_cli("energy", "measure", "--source", "estimate", "-o", "watts_per_core=10", "-o", "idle_w=2",
                   "--", sys.executable, "-c", BUSY)
    assert proc.returncode == 7
    err = proc.stderr
    assert "Energy counter stats for" in err and "(source: estimate; estimated)" in err
    assert "seconds time elapsed" in err and " J total (cpu), " in err
    assert "J   cpu/active" in err and "(in cpu)" in err
    assert "the command exited with status 7" in err


def test_measure_estimate_json_is_labelled_estimated():
    proc = run_cli("energy", "measure", "--source", "estimate", "-o", "watts_per_core=10", "-o", "idle_w=0",
                   "--json", "--", sys.executable, "-c", BUSY)
    assert proc.returncode == 7
    rep = json.loads(proc.stdout)
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
    idle = next(d for d in rep["domains"] if d["id"] == "cpu/idle")
    assert idle["power_w"] == pytest.approx(100.0)


@pytest.mark.parametrize("port", ["99999", "-1"])
def test_serve_port_out_of_range_is_one_line(port):
    proc = run_cli("energy", "serve", "--source", "estimate", f"--port={port}")
    assert_one_line_error(proc, f"--port: must be 0..65535, got {port}")
    assert proc.returncode == 2
