"""What ``bench`` and ``energy report`` show a reader: repeated policies flagged, energy quality in the
columns, readable plots (identical series visible, envelope downsampling), written paths, rank-normalised
accuracy explained."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import io
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ipa_ext.cli import main
from ipa_ext.report.plotting import PALETTE, envelope, series_styles
from ipa_ext.run.compare import Cell, markdown, mark_same

from support.paths import VIDEO
from support.configs import write_config

HAS_MPL = importlib.util.find_spec("matplotlib") is not None
POLICIES = "ipa,energy-ilp,ms,energy-ilp:delta=1"


def run_main(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    """One small grid: energy-ilp at the config's delta 0 (= ipa), ms and energy-ilp at delta 1 (not)."""
    tmp = tmp_path_factory.mktemp("bench")
    cfg = write_config(tmp, workload={"type": "synthetic", "pattern": "step", "duration_s": 300, "seed": 0})
    out = tmp / "out"
    code, stdout, stderr = run_main("bench", str(cfg), "--policies", POLICIES, "--out", str(out))
    assert code == 0, stderr
    rows = {r["policy"]: r for r in json.loads((out / "results.json").read_text())["results"]}
    return out, stdout, rows


def test_a_policy_that_repeats_another_is_flagged_in_the_results(grid):
    out, _, rows = grid
    # the premise: energy-ilp at delta 1 really decides otherwise on this workload
    assert rows["energy-ilp:delta=1"]["j_per_request"] < rows["ipa"]["j_per_request"]
    assert rows["energy-ilp"]["j_per_request"] == rows["ipa"]["j_per_request"]
    assert {p: r["same_as"] for p, r in rows.items()} == {
        "ipa": None, "energy-ilp": "ipa", "ms": None, "energy-ilp:delta=1": None}
    assert "delta and epsilon are 0" in rows["energy-ilp"]["optimizer_notes"]
    assert rows["energy-ilp:delta=1"]["optimizer_notes"] == ""
    with open(out / "results.csv", newline="") as f:
        by_policy = {r["policy"]: r for r in csv.DictReader(f)}
    assert by_policy["energy-ilp"]["same_as"] == "ipa" and by_policy["ms"]["same_as"] == ""
    md = (out / "results.md").read_text()
    assert "| policy | same as | accuracy % |" in md
    assert "| energy-ilp | = ipa | " in md and "| ms |  | " in md and "| energy-ilp:delta=1 |  | " in md
    assert "**energy-ilp = ipa**: energy-ilp chose the same configuration as ipa in all 30 intervals" in md
    assert "give it a power weight" in md


def test_the_terminal_table_flags_it_too(grid):
    _, stdout, _ = grid
    assert "| energy-ilp | = ipa | " in stdout
    assert "**energy-ilp = ipa**" in stdout and "energy-ilp optimizes IPA's objective" in stdout


def test_energy_columns_name_their_quality(grid):
    _, stdout, rows = grid
    assert "| J/request (estimated) | energy J (estimated) | power W (estimated) |" in stdout
    # a table mixing qualities says it in every energy value instead
    mixed = [dict(rows["ipa"], workload="w"), dict(rows["ms"], workload="w", energy_quality="measured")]
    md = markdown(mixed, {})
    assert "| J/request | energy J | power W |" in md
    assert f"| {rows['ipa']['j_per_request']:.3f} (estimated) |" in md
    assert f"| {rows['ms']['j_per_request']:.3f} (measured) |" in md


def _cell(policy: str, digest: str, **figures) -> Cell:
    summary = {
        "energy": {"j_per_served_request": 1.0, "total_j": 100.0, "mean_power_w": 10.0, "quality": "estimated"},
        "decision_time_s": {"p50": 0.001, "p99": 0.002}, "decisions": 10, "infeasible_decisions": 0,
        "accuracy_pct_mean": 57.7, "slo_violation_pct": 0.5, "requests": {"dropped": 1.0, "late": 2.0, "served": 100.0},
        "mean_cores": 4.0, "core_seconds": 400.0, "carbon_g": None, "latency_s": {"p99": 1.5}, "reconfigurations": 3,
    }
    summary["energy"].update(figures)
    return Cell("w", policy, summary, None, digest, 10)  # type: ignore[arg-type]


def test_same_figures_without_the_same_decisions_is_flagged_as_such():
    cells = [_cell("a", "d1"), _cell("b", "d2"), _cell("c", "d1"), _cell("d", "d3", total_j=101.0)]
    mark_same(cells)
    assert [(c.same_as, c.same_kind) for c in cells] == [
        (None, None), ("a", "figures"), ("a", "decisions"), (None, None)]


@given(st.lists(st.one_of(st.none(), st.floats(-1e6, 1e6)), min_size=1, max_size=300), st.integers(1, 40))
def test_envelope_keeps_min_and_max_of_every_bucket(ys, max_points):
    xs = [0.5 * i for i in range(len(ys))]
    env = envelope(xs, ys, max_points)
    assert len(env.x) <= max_points
    assert env.size == max(1, math.ceil(len(ys) / max_points))
    for b, start in enumerate(range(0, len(ys), env.size)):
        vals = [y for y in ys[start:start + env.size] if y is not None]
        assert env.x[b] == xs[start]
        if vals:
            assert (env.lo[b], env.hi[b]) == (min(vals), max(vals))
            assert min(vals) - 1e-6 <= env.mean[b] <= max(vals) + 1e-6
        else:
            assert env.lo[b] is env.hi[b] is env.mean[b] is None
    assert len(env.x) == math.ceil(len(ys) / env.size)
    if len(ys) <= max_points:  # short series come back as they are
        assert env.lo == env.hi == env.mean == list(ys) and not env.downsampled


def test_a_single_spike_survives_downsampling():
    ys = [75.0] * 38_000
    ys[12_345] = 304.0
    env = envelope(list(range(len(ys))), ys, 1500)
    assert env.downsampled and len(env.x) <= 1500
    assert max(env.hi) == 304.0 and min(env.lo) == 75.0 and max(env.mean) < 100


def test_series_colours_are_distinct_and_never_grey():
    styles = series_styles([f"p{i}" for i in range(len(PALETTE))])
    colours = [s["color"] for s in styles.values()]
    assert len(set(colours)) == len(colours)
    assert not {"#7f7f7f", "gray", "grey", "black", "#000000"} & {c.lower() for c in colours}


def test_identical_series_are_drawn_dashed_and_labelled(grid):
    from ipa_ext.report.summary import safe_name
    from ipa_ext.run.compare import load_results
    from ipa_ext.report.bench_plots import plot_grid, scatter_figure, workload_figure
    from ipa_ext.report.plotting import pyplot

    out, _, rows = grid
    if not HAS_MPL:  # the minimal install: no plots, and bench says why
        assert "matplotlib is not installed" in plot_grid([], out)
        return
    cells = []
    for r in load_results(out / "results.json"):
        d = out / safe_name(r["workload"]) / safe_name(r["policy"])
        cells.append(Cell(r["workload"], r["policy"], json.loads((d / "summary.json").read_text()), d))
    plt = pyplot()
    styles = series_styles([c.policy for c in cells])
    fig = workload_figure(plt, cells[0].workload, cells, styles)
    try:
        power = fig.axes[1]
        lines = {l.get_label(): l for l in power.get_lines()}
        assert "energy-ilp (= ipa)" in lines and "ipa" in lines and "ms" in lines
        assert lines["ipa"].get_linestyle() == "-" and lines["energy-ilp (= ipa)"].get_linestyle() != "-"
        assert lines["energy-ilp (= ipa)"].get_marker() not in (None, "None", "")
        legend = power.get_legend()
        assert legend is not None and legend.get_bbox_to_anchor().x0 > power.get_window_extent().x1 - 1
    finally:
        plt.close(fig)
    fig = scatter_figure(plt, {cells[0].workload: cells}, styles)
    try:
        texts = [t.get_text() for lg in fig.axes[0].artists + [fig.axes[0].get_legend()]
                 for t in getattr(lg, "get_texts", lambda: [])()]
        assert any("ipa = energy-ilp" in t for t in texts), texts
        assert rows["ipa"]["policy"] in texts
    finally:
        plt.close(fig)


def test_energy_report_says_where_it_wrote(shared_data, tmp_path):
    log = str(shared_data / "perf-logs" / "ipa-video-bursty-pkg-ram.txt")
    csv_path, png = tmp_path / "i.csv", tmp_path / "p.png"
    args = ["energy", "report", log, "--csv", str(csv_path)] + (["--plot", str(png)] if HAS_MPL else [])
    code, stdout, stderr = run_main(*args)
    assert code == 0, stderr
    wrote = [str(csv_path)] + ([str(png)] if HAS_MPL else [])
    assert stdout.rstrip().splitlines()[-1] == f"wrote {', '.join(wrote)}"
    assert all(p.exists() for p in map(type(tmp_path), wrote))
    code, stdout, _ = run_main(*args, "--json")
    assert code == 0 and json.loads(stdout)["files"] == dict(zip(("csv", "plot"), wrote))
    code, stdout, _ = run_main("energy", "report", log)
    assert code == 0 and "wrote" not in stdout


def test_long_log_plot_is_an_envelope_that_keeps_the_peak(shared_data):
    from ipa_ext.energy.logs import load_log
    from ipa_ext.energy.report import power_figure, summarise
    from ipa_ext.report.plotting import MAX_POINTS, pyplot

    if not HAS_MPL:
        with pytest.raises(ImportError):
            pyplot()
        return
    log = load_log(shared_data / "perf-logs" / "sam-vit-b-pkg.txt.gz")
    peak = summarise(log)["events"][0]["peak_w"]
    plt = pyplot()
    fig = power_figure(plt, log)
    try:
        ax = fig.axes[0]
        (line,) = ax.get_lines()
        assert len(line.get_xdata()) <= MAX_POINTS < len(log.times_s)
        (band,) = ax.collections
        ys = [y for path in band.get_paths() for _, y in path.vertices]
        assert max(ys) == pytest.approx(peak)
        assert "buckets of" in ax.get_title()
    finally:
        plt.close(fig)


def test_rank_normalised_accuracy_is_explained(tmp_path):
    code, stdout, _ = run_main("optimize", str(VIDEO / "config.yaml"), "--rate", "20")
    assert code == 0
    assert ("accuracy 0 from crop yolov5n 0, classification resnet18 0 (rank-normalised: in each stage the "
            "least accurate variant scores 0, the most accurate 1; summed over 2 stages)") in stdout
    cfg = write_config(tmp_path, normalize_accuracy=False)
    code, stdout, _ = run_main("optimize", str(cfg), "--rate", "20")
    assert code == 0 and "(each stage's accuracy % / 100; summed over 2 stages)" in stdout
    assert "rank-normalised" not in stdout
    cfg = write_config(tmp_path, workload={"type": "synthetic", "pattern": "steady", "duration_s": 60, "seed": 0})
    code, stdout, _ = run_main("simulate", str(cfg), "--out", str(tmp_path / "s"), "--no-seconds")
    assert code == 0
    line = next(l for l in stdout.splitlines() if l.startswith("mean accuracy"))
    assert "(objective term 0.000, rank-normalised: in each stage the least accurate variant scores 0" in line


def test_grams_per_request_appear_with_a_carbon_section_and_only_then(grid, tmp_path):
    _, stdout, rows = grid
    assert all(r["carbon_g_per_request"] is None for r in rows.values())
    assert "gCO2/request" not in stdout
    cfg = write_config(tmp_path, workload={"type": "synthetic", "pattern": "step", "duration_s": 120, "seed": 0},
                       carbon={"intensity_g_per_kwh": 400})
    out = tmp_path / "out"
    code, stdout, stderr = run_main("bench", str(cfg), "--policies", "ipa,ms", "--out", str(out), "--no-plots")
    assert code == 0, stderr
    carbon_rows = json.loads((out / "results.json").read_text())["results"]
    for r in carbon_rows:
        # grams per served request = joules per served request x 400 g/kWh / 3.6e6 J/kWh
        assert r["carbon_g_per_request"] == pytest.approx(r["j_per_request"] * 400 / 3.6e6, rel=1e-9)
    head = next(line for line in stdout.splitlines() if line.startswith("| policy"))
    assert "| gCO2/request (estimated) |" in head
    ms = next(line for line in stdout.splitlines() if line.startswith("| ms |"))
    assert f"{carbon_rows[1]['carbon_g_per_request']:.3g}" in ms
