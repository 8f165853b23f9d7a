"""``ipa-ext energy report`` on the real perf logs, ipa-ext's own CSV, and broken logs."""

from __future__ import annotations

import csv
import gzip
import importlib.util
import json
import struct
from collections import defaultdict

import pytest

from ipa_ext.energy.logs import load_log
from ipa_ext.errors import InputError

from support.cli import assert_one_line_error, run_cli

LOGS = ["ipa-video-bursty-pkg-ram.txt", "ipa-video-fluctuating-pkg-ram.txt", "sam-vit-b-pkg.txt.gz"]


def independent_sums(path):
    """Joules per event and interval count, summed with nothing but str.split."""
    opener = gzip.open if str(path).endswith(".gz") else open
    sums, times, peak = defaultdict(float), [], defaultdict(float)
    with opener(path, "rt") as fh:
        for line in fh:
            if not line.strip() or line.startswith("#"):
                continue
            t, joules, unit, event = line.split()[:4]
            assert unit == "Joules"
            sums[event] += float(joules)
            if not times or times[-1] != float(t):
                prev = times[-1] if times else 0.0
                times.append(float(t))
            peak[event] = max(peak[event], float(joules) / (float(t) - prev))
    return sums, times, peak


@pytest.mark.parametrize("name", LOGS)
def test_report_totals_match_an_independent_sum(shared_data, name, tmp_path):
    path = shared_data / "perf-logs" / name
    sums, times, peak = independent_sums(path)
    out_csv = tmp_path / "intervals.csv"
    proc = run_cli("energy", "report", str(path), "--json", "--csv", str(out_csv))
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["format"] == "perf-human" and rep["quality"] == "measured" and rep["complete"]
    assert rep["intervals"]["count"] == len(times)
    assert rep["duration_s"] == pytest.approx(times[-1])
    by_event = {e["event"]: e for e in rep["events"]}
    assert set(by_event) == set(sums)
    for event, joules in sums.items():
        assert by_event[event]["energy_j"] == pytest.approx(joules, rel=1e-12)
        assert by_event[event]["mean_w"] == pytest.approx(joules / times[-1], rel=1e-12)
        assert by_event[event]["peak_w"] == pytest.approx(peak[event], rel=1e-12)
    # package and DRAM do not overlap: the total is their sum
    assert rep["total_j"] == pytest.approx(sum(sums.values()), rel=1e-12)
    with open(out_csv) as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(times) * len(sums)
    assert sum(float(r["energy_j"]) for r in rows) == pytest.approx(sum(sums.values()), rel=1e-12)
    # ipa-ext reads its own CSV back to the same totals
    again = json.loads(run_cli("energy", "report", str(out_csv), "--json").stdout)
    assert again["format"] == "ipa-ext-csv" and again["total_j"] == pytest.approx(rep["total_j"], rel=1e-12)


def test_report_table_and_plot(shared_data, tmp_path):
    png = tmp_path / "power.png"
    proc = run_cli("energy", "report", str(shared_data / "perf-logs" / LOGS[0]), "--plot", str(png))
    if importlib.util.find_spec("matplotlib") is None:  # the minimal install: no plot extra
        assert_one_line_error(proc, "--plot: plotting needs matplotlib: pip install 'ipa-ext[plot]'")
        return
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "power/energy-pkg/  124302.72  87.20" in out
    assert "146855.15 J total (power/energy-pkg/ + power/energy-ram/" in out
    assert "1426 intervals" in out and "1 irregular" in out
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", data[16:24]) == (1000, 400)


def test_final_partial_interval_is_irregular_not_an_outlier(shared_data):
    log = load_log(shared_data / "perf-logs" / LOGS[0])
    assert log.durations_s[-1] == pytest.approx(1425.501793712 - 1425.325486769)
    assert log.series[0].energy_j[-1] == 13.21


def test_csv_perf_log_with_not_counted(tmp_path):
    p = tmp_path / "perf.csv"
    p.write_text("# started on Sat\n\n"
                 "1.000,70.00,Joules,power/energy-pkg/,1000,100.00,,\n"
                 "1.000,50.00,Joules,power/energy-cores/,1000,100.00,,\n"
                 "2.000,<not counted>,Joules,power/energy-pkg/,0,0.00,,\n"
                 "2.000,40.00,Joules,power/energy-cores/,1000,100.00,,\n"
                 "3.000,80.00,Joules,power/energy-pkg/,1000,100.00,,\n"
                 "3.000,60.00,Joules,power/energy-cores/,1000,100.00,,\n")
    rep = json.loads(run_cli("energy", "report", str(p), "--json").stdout)
    ev = {e["event"]: e for e in rep["events"]}
    assert rep["format"] == "perf-csv"
    assert ev["power/energy-pkg/"]["energy_j"] == 150.0 and ev["power/energy-pkg/"]["gap_intervals"] == 1
    assert ev["power/energy-pkg/"]["mean_w"] == 75.0  # over the 2 s it covers
    assert ev["power/energy-cores/"]["parent"] == "cpu/package"
    assert rep["total_j"] == 150.0  # cores are inside the package: not added
    assert rep["complete"] is False


# ---------------------------------------------------------------- bad input


def test_empty_log_is_one_line_error(tmp_path):
    p = tmp_path / "empty.txt"
    p.write_text("")
    assert_one_line_error(run_cli("energy", "report", str(p)), str(p), "no perf stat interval lines")


def test_header_only_log_is_one_line_error(tmp_path):
    p = tmp_path / "hdr.txt"
    p.write_text("# started on Fri Nov 29 03:10:31 2024\n\n#           time             counts   unit events\n")
    assert_one_line_error(run_cli("energy", "report", str(p)), "no perf stat interval lines")


def test_corrupt_line_in_the_middle_names_the_line(shared_data, tmp_path):
    lines = (shared_data / "perf-logs" / LOGS[0]).read_text().splitlines(keepends=True)
    lines[10] = "     5.000974081              7#.23 Joules power/energy-pkg/\n"
    p = tmp_path / "corrupt.txt"
    p.write_text("".join(lines))
    proc = run_cli("energy", "report", str(p))
    assert_one_line_error(proc, f"{p}: line 11: not a perf stat line")


@pytest.mark.parametrize("bad", [
    "     5.000974081             -12.50 Joules power/energy-pkg/\n",
    "5.000974081,-12.50,Joules,power/energy-pkg/,1000,100.00,,\n",
])
def test_a_negative_count_is_named_not_taken(shared_data, tmp_path, bad):
    lines = (shared_data / "perf-logs" / LOGS[0]).read_text().splitlines(keepends=True)
    if "," in bad:  # the same log in perf's CSV form would be all CSV; a lone CSV line is its own log
        lines = ["5.000974081,1.50,Joules,power/energy-pkg/,1000,100.00,,\n", bad,
                 "6.000974081,1.50,Joules,power/energy-pkg/,1000,100.00,,\n"]
        where = "line 2"
    else:
        lines[10] = bad
        where = "line 11"
    p = tmp_path / "negative.txt"
    p.write_text("".join(lines))
    assert_one_line_error(run_cli("energy", "report", str(p)), f"{p}: {where}: ", "count '-12.50' is negative")


def test_truncated_log_keeps_the_data_and_says_so(shared_data, tmp_path):
    text = (shared_data / "perf-logs" / LOGS[0]).read_text()
    cut = text[: text.index("power/energy-ram/", len(text) // 2) + 8]  # inside an event name
    p = tmp_path / "truncated.txt"
    p.write_text(cut)
    proc = run_cli("energy", "report", str(p), "--json")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["truncated"] and not rep["complete"]
    assert any("cut short" in w for w in rep["warnings"])
    assert any("lacks power/energy-ram/" in w for w in rep["warnings"])
    kept, _, _ = independent_sums_text(cut.rsplit("\n", 1)[0] + "\n")
    ev = {e["event"]: e["energy_j"] for e in rep["events"]}
    assert ev == pytest.approx(dict(kept), rel=1e-12)  # every complete line counted, nothing invented
    assert "warning: " in proc.stderr and "cut short" in proc.stderr


def independent_sums_text(text):
    sums = defaultdict(float)
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            f = line.split()
            sums[f[3]] += float(f[1])
    return sums, None, None


def test_truncated_gzip_keeps_what_was_decompressed(shared_data, tmp_path):
    data = (shared_data / "perf-logs" / LOGS[2]).read_bytes()
    p = tmp_path / "cut.txt.gz"
    p.write_bytes(data[: len(data) // 3])
    proc = run_cli("energy", "report", str(p), "--json")
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["truncated"] and any("truncated" in w for w in rep["warnings"])
    assert 1000 < rep["intervals"]["count"] < 38384


def test_time_going_backwards_is_an_error(tmp_path):
    p = tmp_path / "back.txt"
    p.write_text("  1.0  10.0 Joules power/energy-pkg/\n  2.0  10.0 Joules power/energy-pkg/\n"
                 "  1.5  10.0 Joules power/energy-pkg/\n")
    assert_one_line_error(run_cli("energy", "report", str(p)), "line 3: time goes backwards")


def test_summary_without_intervals_is_an_error(tmp_path):
    p = tmp_path / "summary.txt"
    p.write_text("\n Performance counter stats for 'system wide':\n\n"
                 "             12.34 Joules power/energy-pkg/\n\n       1.001 seconds time elapsed\n")
    assert_one_line_error(run_cli("energy", "report", str(p)), "line 4: no interval timestamp (was perf run with -I?)")


def test_binary_file_and_missing_file(tmp_path):
    p = tmp_path / "bin.dat"
    p.write_bytes(b"\x00\xff\xfe\x80" * 10)
    assert_one_line_error(run_cli("energy", "report", str(p)), "not a text log")
    assert_one_line_error(run_cli("energy", "report", str(tmp_path / "nope.txt")), "nope.txt: no such file")


def test_ipa_ext_csv_errors(tmp_path):
    p = tmp_path / "log.csv"
    p.write_text("time_s,interval_s,source,event,domain,parent,energy_j,power_w,quality,gap_s\n"
                 "1.0,1.0,rapl,cpu0/package,cpu0/package,,abc,1,measured,0\n")
    assert_one_line_error(run_cli("energy", "report", str(p)), "line 2: time_s, interval_s and energy_j must be numbers")
    p.write_text("time_s,interval_s,source\n1,1,x\n")
    assert_one_line_error(run_cli("energy", "report", str(p)), "header: missing column(s) event, domain")
    with pytest.raises(InputError, match="quality must be measured or estimated"):
        p.write_text("time_s,interval_s,source,event,domain,parent,energy_j,power_w,quality,gap_s\n"
                     "1.0,1.0,rapl,d,d,,1,1,guessed,0\n")
        load_log(p)
