"""The ILP optimizers and the pareto sweep through the command line."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from support.cli import assert_one_line_error, run_cli
from support.paths import VIDEO
from support.configs import write_minimal_config
from support.optimizers import SOLVERS, brute

CONFIG = str(VIDEO / "config.yaml")


def powerless_profiles(tmp_path: Path) -> Path:
    """The video profiles without their power columns."""
    lines = [l for l in (VIDEO / "profiles.csv").read_text().splitlines() if not l.startswith("#")]
    out = tmp_path / "profiles.csv"
    out.write_text("\n".join(",".join(l.split(",")[:6]) for l in lines) + "\n")
    return out


def test_example_uses_ilp_by_default():
    proc = run_cli("optimize", CONFIG, "--rate", "20")
    assert proc.returncode == 0, proc.stderr
    assert "optimizer ilp" in proc.stdout and "note:" not in proc.stdout


def test_energy_ilp_shows_power_next_to_ipa_terms():
    proc = run_cli("optimize", CONFIG, "--rate", "30", "--optimizer", "energy-ilp", "--delta", "0.05")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "optimizer energy-ilp" in out
    power = [l for l in out.splitlines() if l.startswith("power ")]
    assert len(power) == 1 and power[0].endswith("W (estimated from profiles)")
    objective = [l for l in out.splitlines() if l.startswith("objective ")][0]
    for term in ("alpha 2 x accuracy", "beta 1 x cost", "gamma 1e-06 x batch", "delta 0.05 x power"):
        assert term in objective, (term, objective)
    watts = float(power[0].split()[1])
    assert f"power {watts:.4g} W" in objective


def test_ilp_says_it_ignores_delta_and_scores_without_it():
    proc = run_cli("optimize", CONFIG, "--rate", "30", "--delta", "0.5", "--power-cap", "30")
    assert proc.returncode == 0, proc.stderr
    assert "note: ilp optimizes IPA's objective and ignores delta 0.5, power_cap_w 30; use energy-ilp" in proc.stdout
    assert "delta 0 x power" in proc.stdout and "<= power_cap_w" not in proc.stdout
    d = json.loads(run_cli("optimize", CONFIG, "--rate", "30", "--delta", "0.5", "--json").stdout)
    assert d["weights"]["delta"] == 0 and d["weighted_terms"]["power"] == 0
    assert d["info"]["notes"][0].startswith("ilp optimizes IPA's objective")
    e = json.loads(run_cli("optimize", CONFIG, "--rate", "30", "--delta", "0.5", "--power-cap", "33",
                           "--optimizer", "energy-ilp", "--json").stdout)
    assert e["weights"]["delta"] == 0.5 and e["terms"]["power"] <= 33 < d["terms"]["power"]


@pytest.mark.parametrize("solver", SOLVERS)
def test_json_output_is_clean_with_every_solver(solver):
    """HiGHS prints a banner on first use; it must not reach stdout."""
    proc = run_cli("optimize", CONFIG, "--rate", "20", "--json", env={"IPA_EXT_SOLVER": solver})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("{")
    assert json.loads(proc.stdout)["info"]["solver"] == solver


def test_solver_option_in_config(tmp_path):
    for solver in SOLVERS:
        c = write_minimal_config(tmp_path, "", optimizer=f"{{name: ilp, options: {{solver: {solver}}}}}")
        d = json.loads(run_cli("optimize", str(c), "--rate", "20", "--json").stdout)
        assert d["info"]["solver"] == solver
    c = write_minimal_config(tmp_path, "", optimizer="{name: ilp, options: {solver: gurobi}}")
    assert_one_line_error(run_cli("optimize", str(c), "--rate", "20"), "optimizer.options", "solver must be one of")
    c = write_minimal_config(tmp_path, "", optimizer="{name: ilp, options: {no_such_option: 1}}")
    assert_one_line_error(run_cli("validate", str(c)), "optimizer.options", "no_such_option")


def test_bad_solver_environment_is_one_line():
    proc = run_cli("optimize", CONFIG, "--rate", "20", env={"IPA_EXT_SOLVER": "glpk"})
    assert_one_line_error(proc, "IPA_EXT_SOLVER: must be one of cbc, highs, got 'glpk'")


def test_infeasible_rate_with_ilp(tmp_path):
    c = write_minimal_config(tmp_path, "scaling_cap: 2\n", optimizer="ilp")
    assert_one_line_error(run_cli("optimize", str(c), "--rate", "400"),
                          "no feasible configuration: rate 400 rps exceeds the capacity of every variant",
                          "scaling_cap 2")


def test_power_cap_without_power_profiles(tmp_path):
    prof = powerless_profiles(tmp_path)
    c = tmp_path / "c.yaml"
    c.write_text(f"pipeline: {VIDEO / 'pipeline.yaml'}\nprofiles: {prof}\noptimizer: energy-ilp\npower_cap_w: 50\n")
    assert_one_line_error(run_cli("optimize", str(c), "--rate", "20"),
                          "power_cap_w: a power cap needs power_w or energy_j_per_request")
    assert_one_line_error(run_cli("pareto", str(c), "--rate", "20", "--out", str(tmp_path)),
                          "profiles: the profiles have no power fields")


# --------------------------------------------------------------------------- pareto


def test_pareto_writes_the_frontier(tmp_path, video_config, host):
    deltas = "0,0.02,0.05,0.1,0.2,0.5,1"
    proc = run_cli("pareto", CONFIG, "--rate", "20", "--alpha", "10", "--deltas", deltas, "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    data = json.loads((tmp_path / "pareto-video-20rps.json").read_text())
    rows = list(csv.DictReader((tmp_path / "pareto-video-20rps.csv").open()))
    points = data["points"]
    assert [p["delta"] for p in points] == [float(x) for x in deltas.split(",")]
    assert data["power_quality"] == "estimated" and data["weights"]["alpha"] == 10
    assert [float(r["power_w"]) for r in rows] == [p["power_w"] for p in points]
    # an exact optimizer's power never rises with delta
    powers = [p["power_w"] for p in points]
    assert powers == sorted(powers, reverse=True) and powers[0] > powers[-1]
    # frontier flags: recomputed independently from (accuracy, power)
    for p in points:
        beaten = any(q["accuracy"] >= p["accuracy"] and q["power_w"] <= p["power_w"]
                     and (q["accuracy"] > p["accuracy"] or q["power_w"] < p["power_w"]) for q in points)
        assert p["on_frontier"] is (not beaten)
    # each point is the exact optimum at its delta
    for p in points[::3]:
        w = {**video_config.settings.weights, "alpha": 10.0, "delta": p["delta"]}
        problem = video_config.build_problem(host, weights=w)
        assert p["objective"] == pytest.approx(brute(problem, 20).best.objective, rel=1e-9)
    for line in ("delta", "accuracy", "power_w", "frontier", "wrote"):
        assert line in proc.stdout


def test_pareto_json_and_bad_input(tmp_path):
    proc = run_cli("pareto", CONFIG, "--rate", "20", "--deltas", "0,1", "--json", "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["points"]) == 2
    assert_one_line_error(run_cli("pareto", CONFIG, "--rate", "20", "--deltas", "0,x"), "--deltas", "'0,x'")
    assert_one_line_error(run_cli("pareto", CONFIG, "--rate", "20", "--deltas", "-1"), "--deltas", ">= 0")
    assert_one_line_error(run_cli("pareto", CONFIG, "--deltas", "1"), "rate_rps", "--rate")
    assert_one_line_error(run_cli("pareto", CONFIG, "--rate", "20", "--optimizer", "ilp"), "ilp ignores delta")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert_one_line_error(run_cli("pareto", CONFIG, "--rate", "20", "--deltas", "0", "--out", str(blocker)),
                          "cannot write results", str(blocker))


def test_carbon_from_a_trace_at_a_time(tmp_path):
    trace = tmp_path / "carbon.csv"
    trace.write_text("time_s,g_per_kwh\n0,100\n3600,700\n")
    c = tmp_path / "c.yaml"
    c.write_text(f"pipeline: {VIDEO / 'pipeline.yaml'}\nprofiles: {VIDEO / 'profiles.csv'}\n"
                 f"optimizer: energy-ilp\ncarbon: {{trace: {trace}}}\nweights: {{alpha: 2, beta: 1, epsilon: 1000}}\n")
    for at, intensity in (("10", 100), ("4000", 700)):
        d = json.loads(run_cli("optimize", str(c), "--rate", "20", "--at", at, "--json").stdout)
        assert d["terms"]["carbon"] == pytest.approx(d["terms"]["power"] * intensity / 3.6e6)
        assert d["weighted_terms"]["carbon"] == pytest.approx(1000 * d["terms"]["carbon"])
    text = run_cli("optimize", str(c), "--rate", "20", "--at", "4000").stdout
    assert "gCO2/s" in [l for l in text.splitlines() if l.startswith("power ")][0]
    assert_one_line_error(run_cli("optimize", CONFIG, "--rate", "20", "--at", "5"), "carbon", "--at needs a carbon")


def test_optimize_takes_optimizer_options_on_the_command_line():
    plain = json.loads(run_cli("optimize", CONFIG, "--rate", "30", "--optimizer", "energy-ilp", "--json").stdout)
    proc = run_cli("optimize", CONFIG, "--rate", "30", "--optimizer", "energy-ilp:delta=0.5:solver=cbc", "--json")
    assert proc.returncode == 0, proc.stderr
    heavy = json.loads(proc.stdout)
    # The option reached the optimizer: it scores power with delta 0.5 and draws less of it.
    assert plain["weights"]["delta"] == 0 and heavy["weights"]["delta"] == 0.5
    assert heavy["terms"]["power"] < plain["terms"]["power"]
    assert_one_line_error(run_cli("optimize", CONFIG, "--rate", "30", "--optimizer", "ilp:solver=nope"),
                          "--optimizer", "solver must be one of")
    assert_one_line_error(run_cli("optimize", CONFIG, "--rate", "30", "--optimizer", "ilp:solver"),
                          "expected NAME:key=value")


def test_flags_override_the_config_optimizers_options_of_the_same_name(tmp_path):
    cfg = write_minimal_config(tmp_path, optimizer="{name: energy-ilp, options: {delta: 0.5, power_cap_w: 10}}")
    # the config's 10 W cap is infeasible at 30 rps; the flag's 100 W and delta 0.1 are used instead
    assert_one_line_error(run_cli("optimize", str(cfg), "--rate", "30"), "power_cap_w 10")
    proc = run_cli("optimize", str(cfg), "--rate", "30", "--delta", "0.1", "--power-cap", "100", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["weights"]["delta"] == 0.1 and d["terms"]["power"] <= 100
    # the same option in --optimizer and in its flag must agree
    assert_one_line_error(run_cli("optimize", str(cfg), "--rate", "30", "--optimizer", "energy-ilp:delta=0.2",
                                  "--delta", "0.1"), "--optimizer: delta is 0.2 here and 0.1 in its own flag")


def test_a_bad_option_in_the_config_names_the_file(tmp_path):
    cfg = write_minimal_config(tmp_path, optimizer="{name: ilp, options: {time_limit_s: 0}}")
    assert_one_line_error(run_cli("optimize", str(cfg), "--rate", "20"),
                          f"{cfg}: optimizer.options: optimizer 'ilp': time_limit_s must be > 0")


def test_pareto_picks_its_optimizer_by_declared_properties_not_names(tmp_path):
    from ipa_ext import hookimpl
    from ipa_ext.config.config import load_config
    from ipa_ext.errors import ConfigError
    from ipa_ext.host import load_plugins
    from ipa_ext.optimizers import Optimizer
    from ipa_ext.cli.pareto_cmd import sweep_optimizer

    class Blind(Optimizer):
        ignored_weights = ("delta",)

        def __init__(self, solver: str = "auto") -> None:
            self.solver = solver

        def solve(self, problem, rate, current, k):
            return [], {}

    class Plugin:
        @hookimpl
        def register_optimizers(self, register):
            register("blind", Blind)

    text = (VIDEO / "config.yaml").read_text().replace("optimizer: ilp", "optimizer: {name: ilp, options: {solver: cbc}}")
    assert "solver: cbc" in text
    for name in ("pipeline.yaml", "profiles.csv"):
        (tmp_path / name).write_text((VIDEO / name).read_text())
    (tmp_path / "config.yaml").write_text(text)
    config = load_config(tmp_path / "config.yaml")
    host = load_plugins()
    host.add_plugin(Plugin(), "blind-plugin")
    assert sweep_optimizer(host, config, "energy-ilp").solver == "cbc"  # it takes every ilp option
    with pytest.raises(ConfigError, match="blind ignores delta"):
        sweep_optimizer(host, config, "blind")
    assert sweep_optimizer(host, config, "brute-force").max_combinations == 5_000_000  # not ilp's options
