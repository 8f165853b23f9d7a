"""Workloads: the Twitter trace format, IPA's windows and damping, synthetic patterns, bad traces."""

from __future__ import annotations

import bz2
import hashlib
import io
import json
import tarfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from support.cli import assert_one_line_error, run_cli
from support.paths import VIDEO
from ipa_ext.cli import main
from ipa_ext.errors import ConfigError, InputError
from ipa_ext.workloads import (
    IPA_WINDOWS,
    MAX_DURATION_S,
    SYNTHETIC_PATTERNS,
    from_section,
    load_trace,
    parse_trace,
    resolve,
    synthetic,
    window,
)
from ipa_ext.workloads.builtin import DATA_FILE, cut_windows

CONFIG = str(VIDEO / "config.yaml")


def _tbz2(path: Path, text: str, name: str = "workload.txt") -> Path:
    data = text.encode()
    with tarfile.open(path, "w:bz2") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def test_text_tarball_and_bz2_read_the_same_series(tmp_path):
    text = "3 0 7\n12  5\t9 "
    (tmp_path / "w.txt").write_text(text)
    _tbz2(tmp_path / "w.tbz2", text)
    (tmp_path / "w.txt.bz2").write_bytes(bz2.compress(text.encode()))
    expected = [3, 0, 7, 12, 5, 9]
    for name in ("w.txt", "w.tbz2", "w.txt.bz2"):
        assert load_trace(tmp_path / name).tolist() == expected


@pytest.mark.parametrize(
    "text, needle",
    [
        ("1 2 -3 4", "line 1, value 3 (second 2): '-3' is negative"),
        ("1 2.5 3", "line 1, value 2 (second 1): '2.5' is not an integer"),
        ("4 five 6", "line 1, value 2 (second 1): 'five' is not an integer"),
        ("", "empty trace"),
        ("   \n\t ", "empty trace"),
    ],
)
def test_malformed_traces_name_the_value(text, needle):
    with pytest.raises(InputError) as err:
        parse_trace(text, "t.txt")
    assert needle in str(err.value) and str(err.value).startswith("t.txt: ")


@pytest.mark.parametrize(
    "text, needle",
    [("1 -2", "is negative"), ("1 x", "is not an integer"), ("", "empty trace")],
)
def test_malformed_trace_on_the_command_line_is_one_line(tmp_path, text, needle):
    bad = tmp_path / "bad.txt"
    bad.write_text(text)
    proc = run_cli("simulate", CONFIG, "--workload", str(bad), "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, str(bad), needle)


def test_corrupt_tarball_is_one_line(tmp_path):
    bad = tmp_path / "bad.tbz2"
    bad.write_bytes(b"not bzip2 at all")
    proc = run_cli("simulate", CONFIG, "--workload", str(bad), "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, str(bad), "bzip2")


def test_window_is_end_exclusive_and_damping_divides_as_integers():
    s = np.array([0, 7, 8, 9, 15, 16, 17])
    assert window(s, 1, 4).tolist() == [7, 8, 9]
    assert window(s, 1, 7, 8).tolist() == [0, 1, 1, 1, 2, 2]  # IPA: int(x / 8)
    assert window(s).tolist() == s.tolist()


@pytest.mark.parametrize("start, end, needle", [(5, 3, "start must be before end"), (0, 99, "ends after"),
                                                (-1, 3, ">= 0")])
def test_bad_windows(start, end, needle):
    with pytest.raises(InputError, match=needle):
        window(np.arange(10), start, end)


def test_bad_window_flag_is_one_line(tmp_path):
    (tmp_path / "w.txt").write_text("1 2 3")
    proc = run_cli("simulate", CONFIG, "--workload", str(tmp_path / "w.txt"), "--window", "2-9",
                   "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "ends after the trace's 3 seconds")
    proc = run_cli("simulate", CONFIG, "--workload", str(tmp_path / "w.txt"), "--window", "a-b",
                   "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "--window 'a-b'")
    for flag in (["--damping", "8"], ["--window", "0-10"]):
        proc = run_cli("simulate", CONFIG, "--workload", "steady", *flag, "--out", str(tmp_path / "o"))
        assert_one_line_error(proc, "--workload: --window and --damping select part of a trace",
                              "'steady' is a synthetic workload")


def test_ipa_window_without_trace_is_the_shipped_copy(capsys, tmp_path):
    for name, (start, end, damping) in IPA_WINDOWS.items():
        wl = resolve(name, None, Path("."))
        assert wl.name == f"twitter:{name}" and wl.duration_s == end - start
        assert (wl.params["start_s"], wl.params["end_s"], wl.params["damping_factor"]) == (start, end, damping)
        assert wl.params["trace"].startswith("built-in")
    section = {"type": "twitter", "window": "steady-high"}
    assert from_section(section, Path(".")).rates.tolist() == resolve("steady-high", None, Path(".")).rates.tolist()
    out = tmp_path / "o"
    assert main(["simulate", CONFIG, "--workload", "fluctuating", "--out", str(out), "--quiet", "--no-seconds"]) == 0
    assert json.loads((out / "summary.json").read_text())["workload"]["name"] == "twitter:fluctuating"


def test_a_different_cut_of_a_shipped_window_needs_the_trace(capsys, tmp_path):
    for flag in (["--damping", "2"], ["--window", "0-10"]):
        assert main(["simulate", CONFIG, "--workload", "bursty", *flag, "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--workload: the package ships IPA's window 'bursty' as cut" in err[0], err
    with pytest.raises(ConfigError, match="workload.damping_factor: the package ships IPA's windows as cut"):
        from_section({"type": "twitter", "window": "bursty", "damping_factor": 2}, Path("."))
    with pytest.raises(ConfigError, match="workload.trace: a Twitter workload needs 'window'"):
        from_section({"type": "twitter", "start": 0, "end": 10}, Path("."))


def test_shipped_windows_equal_the_trace_and_record_its_checksum(shared_data):
    path = shared_data / "twitter-trace" / "workload.tbz2"
    data = json.loads(DATA_FILE.read_text(encoding="utf-8"))
    assert data == cut_windows(path)  # every count, bound, damping factor and the provenance
    # the checksum shared/data/README.md documents, and the file's own
    assert data["source"]["sha256"] == "b13052c83c64d169810fe1cfec35cb6b56c96e17c023156a23c9a067e1ac66bd"
    assert data["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert sum(len(w["counts"]) for w in data["windows"].values()) == 3600
    assert set(data["windows"]) == set(IPA_WINDOWS) and "damping_factor" in data["how_cut"]


def test_unknown_workload_name_lists_the_names(tmp_path):
    proc = run_cli("simulate", CONFIG, "--workload", "no-such-thing", "--out", str(tmp_path / "o"))
    assert_one_line_error(proc, "no-such-thing", "steady", "steady-high")


def test_real_trace_matches_its_documented_facts(shared_data):
    path = shared_data / "twitter-trace" / "workload.tbz2"
    trace = load_trace(path)
    # shared/data/README.md: 1,899,061 seconds, min 0, max 388, mean 63.6
    assert len(trace) == 1_899_061
    assert trace.min() == 0 and trace.max() == 388
    assert round(float(trace.mean()), 1) == 63.6
    # an independent read of the same file
    with tarfile.open(path, "r:bz2") as tar:
        member = next(m for m in tar.getmembers() if m.isfile())
        raw = tar.extractfile(member).read().split()  # type: ignore[union-attr]
    assert [int(x) for x in raw[1301160:1301170]] == trace[1301160:1301170].tolist()


def test_ipa_named_windows_from_the_real_trace(shared_data):
    path = shared_data / "twitter-trace" / "workload.tbz2"
    trace = load_trace(path)
    for name, (start, end, damping) in IPA_WINDOWS.items():
        wl = resolve(name, None, Path("."), trace=path)
        raw = trace[start:end]
        expected = raw if damping is None else np.array([int(x / damping) for x in raw])
        assert wl.rates.tolist() == expected.tolist(), name
        assert wl.duration_s == end - start
    assert resolve("bursty", None, Path("."), trace=path).duration_s == 1200  # IPA's 20 minutes
    assert resolve("fluctuating", None, Path("."), trace=path).duration_s == 600  # and 10


@pytest.mark.parametrize("pattern", SYNTHETIC_PATTERNS)
def test_synthetic_patterns_are_seeded(pattern):
    a, b, c = synthetic(pattern, 600, 1), synthetic(pattern, 600, 1), synthetic(pattern, 600, 2)
    assert a.dtype.kind == "i" and len(a) == 600 and a.min() >= 0
    assert a.tolist() == b.tolist()
    assert a.tolist() != c.tolist()


def test_synthetic_shapes():
    n = 2400
    step = synthetic("step", n, 0)
    q = [step[i * n // 4:(i + 1) * n // 4].mean() for i in range(4)]
    assert q[1] > q[0] + 20 and q[3] > q[2] + 20  # 15 -> 45 rps phases
    diurnal = synthetic("diurnal", n, 0)
    assert diurnal[n // 2 - 100:n // 2 + 100].mean() > diurnal[:100].mean() + 30
    steady = synthetic("steady", n, 0, base_rps=30)
    assert abs(steady.mean() - 30) < 1
    bursty = synthetic("bursty", n, 0)
    assert bursty.max() > 2.5 * np.median(bursty)
    fl = synthetic("fluctuating", n, 0, base_rps=10, peak_rps=30)
    assert 10 < fl.mean() < 30


@settings(max_examples=25)
@given(st.lists(st.integers(0, 10_000), min_size=1, max_size=50),
       st.sampled_from([" ", "\n", "\t", "  \n"]))
def test_any_integer_series_round_trips(values, sep):
    assert parse_trace(sep.join(map(str, values))).tolist() == values


@pytest.mark.parametrize(
    "section,needle",
    [
        ({"type": "synthetic", "pattern": "steady", "duration_s": 60, "seed": -1},
         "workload.seed: must be >= 0, got -1"),
        ({"type": "synthetic", "pattern": "steady", "duration_s": 10**12}, "workload.duration_s: must be <= 31622400"),
        ({"type": "static", "loads_to_test": 5, "load_duration": 10**13}, "workload.load_duration: must be at most"),
        ("bursty", "workload: must be a mapping"),
    ],
)
def test_bad_workload_sections_are_one_line_errors(tmp_path, section, needle):
    import yaml

    data = yaml.safe_load(Path(CONFIG).read_text())
    data.update(pipeline=str(VIDEO / "pipeline.yaml"), profiles=str(VIDEO / "profiles.csv"), workload=section)
    c = tmp_path / "c.yaml"
    c.write_text(yaml.safe_dump(data))
    for cmd in (["validate", str(c)], ["simulate", str(c), "--quiet", "--out", str(tmp_path / "o")]):
        assert_one_line_error(run_cli(*cmd), str(c), needle)
    assert not (tmp_path / "o").exists()


def test_synthetic_rejects_negative_seed_and_overlong_duration():
    with pytest.raises(InputError, match="workload.seed"):
        synthetic("steady", 10, -3)
    with pytest.raises(InputError, match="workload.duration_s"):
        synthetic("steady", MAX_DURATION_S + 1)
