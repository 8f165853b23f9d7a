"""Hostile inputs found by fuzzing, each as a regular test through the CLI (in-process):
one line ``ipa-ext: error: FILE: FIELD: what is wrong`` and exit code 2, never a crash."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipa_ext.cli import EXIT_BUG, EXIT_CODES, main

from support.cli import cli, one_error_line
from support.paths import ROOT

VIDEO = ROOT / "examples" / "video"
SHARED = (ROOT.parent / "shared" / "data").resolve()
HUGE = str(10**400)
BASE = f"pipeline: {VIDEO / 'pipeline.yaml'}\nprofiles: {VIDEO / 'profiles.csv'}\n"


@pytest.mark.parametrize("extra, field, problem", [
    (f"threshold: {HUGE}\n", "threshold", "expected a number up to 1.8e+308, got an integer of about 401 digits"),
    (f"predictor: {{name: max, margin_pct: {HUGE}}}\n", "predictor.margin_pct",
     "expected a number up to 1.8e+308, got an integer of about 401 digits"),
    ("predictor: {name: max, margin_pct: 1.0e+300}\n", "predictor.margin_pct", "must be <= 1000000"),
    ("workload: {type: synthetic, duration_s: null}\n", "workload.duration_s", "expected a number, got null"),
    ("carbon: {intensity_g_per_kwh: null}\n", "carbon.intensity_g_per_kwh", "expected a number, got null"),
    ("weights: {delta: null}\n", "weights.delta", "expected a number, got null"),
    ("weights: {alpha: true}\n", "weights.alpha", "expected a number, got true"),
    ("sla_factor: .nan\n", "sla_factor", "expected a finite number, got .nan"),
    ("scaling_cap: 1.0e+12\n", "scaling_cap", "must be <= 1000000"),
    ("adaptation: {num_candidates: 1.5}\n", "adaptation.num_candidates", "must be a whole number"),
])
def test_bad_numbers_in_a_config_name_file_and_field(tmp_path, capsys, extra, field, problem):
    c = tmp_path / "c.yaml"
    c.write_text(BASE + extra)
    code, _, err = cli(capsys, "validate", c)
    assert code == 2
    one_error_line(err, f"{c}: {field}: {problem}")


def test_a_huge_variant_accuracy_names_the_pipeline_file(tmp_path, capsys):
    pipe = tmp_path / "pipeline.yaml"
    pipe.write_text((VIDEO / "pipeline.yaml").read_text().replace("accuracy: 45.7", f"accuracy: {HUGE}"))
    c = tmp_path / "c.yaml"
    c.write_text(f"pipeline: pipeline.yaml\nprofiles: {VIDEO / 'profiles.csv'}\n")
    code, _, err = cli(capsys, "validate", c)
    assert code == 2
    one_error_line(err, f"{pipe}: stages[0].variants.yolov5n.accuracy: expected a number up to")


def test_a_huge_ipa_monitoring_duration_names_the_ipa_file(tmp_path, capsys):
    ipa = tmp_path / "video-1.yaml"
    text = (SHARED / "ipa-configs" / "video-1.yaml").read_text()
    ipa.write_text("\n".join(f"monitoring_duration: {HUGE}" if ln.startswith("monitoring_duration:") else ln
                             for ln in text.splitlines()))
    c = tmp_path / "c.yaml"
    c.write_text(f"from_ipa: video-1.yaml\n{BASE}")
    for argv in (["validate", c], ["validate", ipa]):
        code, _, err = cli(capsys, *argv)
        assert code == 2
        one_error_line(err, f"{ipa}: monitoring_duration: expected a number up to")


def _tiny_throughput_profiles(tmp_path: Path) -> Path:
    lines = (VIDEO / "profiles.csv").read_text().splitlines()
    header = next(ln for ln in lines if ln.startswith("stage,")).split(",")
    col = header.index("throughput_rps")
    out, done = [], False
    for ln in lines:
        cells = ln.split(",")
        if not done and cells[:2] == ["crop", "yolov5n"] and cells[2:4] == ["1", "1"]:
            cells[col], done = "5e-324", True
        out.append(",".join(cells))
    assert done
    p = tmp_path / "profiles.csv"
    p.write_text("\n".join(out) + "\n")
    return p


def test_a_throughput_near_zero_is_never_chosen(tmp_path, capsys):
    """5e-324 rps makes rate/throughput overflow; such a choice needs more replicas than any cap."""
    from ipa_ext.config.config import load_config
    from ipa_ext.host import load_plugins
    from ipa_ext.problem.problem import MAX_SCALING_CAP, replicas_needed

    assert replicas_needed(10, 5e-324) == MAX_SCALING_CAP + 1
    prof = _tiny_throughput_profiles(tmp_path)
    c = tmp_path / "c.yaml"
    c.write_text((VIDEO / "config.yaml").read_text().replace("profiles.csv", str(prof))
                 .replace("pipeline.yaml", str(VIDEO / "pipeline.yaml")).replace("duration_s: 1200", "duration_s: 30"))
    problem = load_config(c).build_problem(load_plugins())
    crop = problem.stage_options(0, 10.0)
    assert crop and not any((o.variant, o.cpu, o.batch) == ("yolov5n", 1.0, 1) for o in crop)
    code, _, err = cli(capsys, "optimize", c, "--rate", "10")
    assert code == 0, err
    code, _, err = cli(capsys, "simulate", c, "--quiet", "--no-seconds", "--out", tmp_path / "o")
    assert code == 0, err


def test_an_alias_bomb_is_refused_in_one_short_line(tmp_path, capsys):
    levels = "\n".join(f" - &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10))
    c = tmp_path / "c.yaml"
    c.write_text(BASE + "threshold:\n - &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + levels + "\n")
    assert c.stat().st_size < 2000
    code, _, err = cli(capsys, "validate", c)
    assert code == 2
    line = one_error_line(err, f"{c}: aliases expand it by", "an alias bomb")
    assert len(line) < 300


@pytest.mark.parametrize("text, problem", [
    ("[" * 100 + "]" * 100, "nested deeper than 64 levels"),
    ("a: &r [*r]\n", "a recursive alias"),
    ("a: 1" + "0" * 5000 + "\n", "an integer of 5001 digits is too long"),
    ("a: !!float abc\n", "not a valid float"),
    ("a: {[1]: 2}\n", "a key must be a scalar (a name or a number)"),
    ("a: 1\na: 2\n", "duplicate key 'a'"),
    ("\x1f", "unacceptable character #x001f"),
])
def test_yaml_inputs_are_bounded_and_errors_are_one_line(tmp_path, capsys, text, problem):
    c = tmp_path / "c.yaml"
    c.write_text(text)
    code, _, err = cli(capsys, "validate", c)
    assert code == 2
    one_error_line(err, str(c), problem)


def test_timestamps_stay_strings(tmp_path, capsys):
    c = tmp_path / "c.yaml"
    c.write_text(BASE + "threshold: 2001-12-14\n")
    code, _, err = cli(capsys, "validate", c)
    assert code == 2
    one_error_line(err, "threshold: expected a number, got '2001-12-14'")


def test_a_bomb_in_an_option_value_is_refused(tmp_path, capsys):
    bomb = "[&a [1,1,1,1,1,1,1,1,1,1]" + "".join(f", &a{i} [{','.join(['*a' if i == 1 else f'*a{i - 1}'] * 10)}]"
                                                  for i in range(1, 8)) + "]"
    code, _, err = cli(capsys, "optimize", VIDEO / "config.yaml", "--rate", "10", "--optimizer", f"ilp:solver={bomb}")
    assert code == 2
    one_error_line(err, "aliases expand it by")


def test_long_values_are_quoted_briefly(tmp_path, capsys):
    c = tmp_path / "c.yaml"
    c.write_text(BASE + f"threshold: [{', '.join(['123456789'] * 5000)}]\n")
    code, _, err = cli(capsys, "validate", c)
    assert code == 2
    line = one_error_line(err, "threshold: expected a number, got [123456789, ")
    assert line.endswith("...") and len(line) < 100 + len(str(c)) + 80


def test_usage_errors_do_not_repeat_the_program_name(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    one_error_line(err, "ipa-ext: error: the following arguments are required: COMMAND (see ipa-ext --help)")
    with pytest.raises(SystemExit):
        main(["validate"])
    one_error_line(capsys.readouterr().err,
                   "ipa-ext: error: validate: the following arguments are required: config")


def test_a_bad_workloads_value_names_the_workloads_option(capsys):
    code, _, err = cli(capsys, "bench", VIDEO / "config.yaml", "--policies", "ilp", "--workloads", "nosuch")
    assert code == 2
    one_error_line(err, "ipa-ext: error: --workloads: no such workload name or file 'nosuch'")


def test_validate_prints_an_upstream_config_as_yaml(capsys):
    code, out, err = cli(capsys, "validate", SHARED / "ipa-configs" / "video-1.yaml")
    assert code == 0, err
    assert "  normalize_accuracy: true\n" in out
    assert "  baseline_mode: null\n" in out
    assert "  weights: {alpha: 2, beta: 1, gamma: 1.0e-06}\n" in out
    assert "True" not in out and "None" not in out and "{'" not in out


def test_a_trace_value_beyond_64_bits_gives_its_line_and_position(tmp_path, capsys):
    t = tmp_path / "trace.txt"
    t.write_text("5 6\n7 99999999999999999999999 8\n")
    code, _, err = cli(capsys, "simulate", VIDEO / "config.yaml", "--trace", t, "--quiet", "--out", tmp_path / "o")
    assert code == 2
    one_error_line(err, f"{t}: line 2, value 4 (second 3): '99999999999999999999999' is larger than a 64-bit count")


def test_an_unexpected_exception_is_a_bug_report_line_with_its_own_code(monkeypatch, capsys):
    from ipa_ext.cli import validate_cmd

    def broken(args):
        raise ZeroDivisionError("x" * 10_000)

    monkeypatch.setattr(validate_cmd, "run", broken)
    code, _, err = cli(capsys, "validate", VIDEO / "config.yaml")
    assert code == EXIT_BUG == 70 and 70 in EXIT_CODES
    line = err.strip()
    assert "\n" not in line and len(line) < 600
    assert line.startswith("ipa-ext: internal error: ZeroDivisionError: xxx")
    assert "please report it" in line and "--debug" in line
    with pytest.raises(ZeroDivisionError):
        main(["--debug", "validate", str(VIDEO / "config.yaml")])


# --------------------------------------------------------------------------- found by tests/fuzz


@pytest.mark.parametrize("extra, field, problem", [
    ("weights: {alpha: 1.7e+308}\n", "weights.alpha", "must be <= 1e+15, got 1.7e+308"),
    ("weights: {beta: -1.0e+16}\n", "weights.beta", "must be >= -1e+15"),
    ("sla_factor: 5.0e-324\n", "sla_factor", "the SLA derived from sla_factor 4.94066e-324"),
    ("threshold: !!int ''\n", "line 3, column 12", "malformed YAML: not a valid int: ''"),
    ("threshold: !!bool x\n", "line 3, column 12", "malformed YAML: not a valid bool: 'x'"),
])
def test_more_bad_settings_name_file_and_field(tmp_path, capsys, extra, field, problem):
    c = tmp_path / "c.yaml"
    c.write_text(BASE + extra)
    code, _, err = cli(capsys, "optimize", c, "--rate", "10")
    assert code == 2
    one_error_line(err, f"{c}: {field}: {problem}")


def test_a_model_beyond_what_a_milp_solver_represents_is_refused_plainly(tmp_path, capsys):
    c = tmp_path / "c.yaml"
    c.write_text(BASE + "weights: {gamma: 1.0e+15}\nbatching_cap: 8\n")
    code, _, err = cli(capsys, "optimize", c, "--rate", "10")
    assert code == 2
    one_error_line(err, "weights: the ilp model needs an objective coefficient of", "beyond the 1e+15")
    code, _, err = cli(capsys, "optimize", c, "--rate", "10", "--optimizer", "brute-force")
    assert code in (0, 1), err


def test_a_huge_sla_still_simulates(tmp_path, capsys):
    c = tmp_path / "c.yaml"
    c.write_text((VIDEO / "config.yaml").read_text().replace("pipeline.yaml", str(VIDEO / "pipeline.yaml"))
                 .replace("profiles.csv", str(VIDEO / "profiles.csv")).replace("duration_s: 1200", "duration_s: 30")
                 + "sla_s: 1.0e+15\n")
    code, _, err = cli(capsys, "simulate", c, "--quiet", "--no-seconds", "--out", tmp_path / "o")
    assert code == 0, err


@pytest.mark.parametrize("argv, needles", [
    (["--damping", "99999999999999999999"], ["damping_factor: must be <= 9223372036854775807"]),
    (["--workload", "x" * 300], ["--workload: no such workload name or file 'xxx", "..."]),
])
def test_bad_simulate_arguments(tmp_path, capsys, argv, needles):
    t = tmp_path / "trace.txt"
    t.write_text("5 6 7 8 9 10")
    extra = ["--trace", t, "--window", "0-5"] if "--damping" in argv else []
    code, _, err = cli(capsys, "simulate", VIDEO / "config.yaml", *extra, *argv, "--quiet", "--out", tmp_path / "o")
    assert code == 2
    one_error_line(err, *needles)


def test_a_log_name_the_system_refuses_is_an_input_error(capsys):
    code, _, err = cli(capsys, "energy", "report", "x" * 300)
    assert code == 2
    one_error_line(err, "cannot read: File name too long")


def test_a_q_learning_option_that_would_overflow_is_refused(capsys):
    code, _, err = cli(capsys, "optimize", VIDEO / "config.yaml", "--rate", "10", "--optimizer",
                       "q-learning:episodes=5:penalty=1.0e+300")
    assert code == 2
    one_error_line(err, "penalty must be <= 1e+15, got 1.0e+300")


def test_an_infeasible_decision_has_its_error_line_also_with_json(capsys):
    code, out, err = cli(capsys, "optimize", VIDEO / "config.yaml", "--rate", "1e9", "--json")
    assert code == 1 and '"feasible": false' in out
    one_error_line(err, "no feasible configuration")


def test_an_ipa_predictor_type_that_is_not_a_name(tmp_path, capsys):
    ipa = tmp_path / "video-1.yaml"
    text = (SHARED / "ipa-configs" / "video-1.yaml").read_text()
    ipa.write_text("\n".join("predictor_type: []" if ln.startswith("predictor_type:") else ln
                             for ln in text.splitlines()))
    code, _, err = cli(capsys, "validate", ipa)
    assert code == 2
    one_error_line(err, f"{ipa}: predictor_type: expected a name, got []")


@pytest.mark.parametrize("extra", [f"optimizer: {'x' * 5000}\n",
                                   f"optimizer: {{name: ilp, options: {{{'x' * 1000}: 1}}}}\n"])
def test_a_long_name_is_quoted_briefly(tmp_path, capsys, extra):
    c = tmp_path / "c.yaml"
    c.write_text(BASE + extra)
    code, _, err = cli(capsys, "validate", c)
    assert code == 2
    assert len(one_error_line(err, "'xxxxxxxx", "...")) < 400


def test_a_long_perf_count_is_quoted_briefly(tmp_path, capsys):
    log = tmp_path / "perf.txt"
    log.write_text("     1.000107406   " + "9" * 5000 + " Joules power/energy-pkg/\n" * 2)
    code, _, err = cli(capsys, "energy", "report", log)
    assert code == 2
    assert len(one_error_line(err, f"{log}: line 1:")) < 400


def test_usage_errors_quote_values_briefly(capsys):
    with pytest.raises(SystemExit):
        main(["x" * 3000])
    line = one_error_line(capsys.readouterr().err, "invalid choice: 'xxxx", "...'")
    assert len(line) < 500


def test_yaml_merge_keys_work_and_own_keys_override():
    from ipa_ext.config.yamlsafe import load_text

    doc = "base: &b {cpu: 1, batch: 2}\nx: {<<: *b, batch: 4}\n"
    assert load_text(doc)["x"] == {"cpu": 1, "batch": 4}
    assert load_text(doc, unique_keys=False)["x"] == {"cpu": 1, "batch": 4}


@pytest.mark.parametrize("option, problem", [
    ("estimate.cpus=" + HUGE, "cpus: expected a number up to 1.8e+308"),
    ("estimate.cpus=.inf", "cpus: expected a finite number, got .inf"),
    ("estimate.idle_fraction=1", "idle_fraction must be in [0, 1)"),
    ("rapl.max_power_w=" + HUGE, "max_power_w: expected a number up to 1.8e+308"),
    ("perf.probe_s=1.0e+300", "probe_s must be <= 60"),
])
def test_bad_energy_source_options_are_config_errors(capsys, option, problem):
    source = option.split(".")[0]
    code, _, err = cli(capsys, "energy", "probe", "--source", source, "-o", option)
    assert code == 2
    one_error_line(err, "--source-option:", problem)


@pytest.mark.parametrize("text", [
    "1e400,0.00,Joules,power/energy-pkg/,1000,100.00,,\n2.0,1.00,Joules,power/energy-pkg/,1000,100.00,,\n",
    f"     {'9' * 400}.1   1.00 Joules power/energy-pkg/\n     2.0   1.00 Joules power/energy-pkg/\n",
])
def test_a_perf_timestamp_that_is_not_finite_is_an_input_error(tmp_path, capsys, text):
    log = tmp_path / "perf.log"
    log.write_text(text)
    code, _, err = cli(capsys, "energy", "report", log)
    assert code == 2
    one_error_line(err, f"{log}: line 1: not a perf stat line (time ", "is not a finite number of seconds")


def test_a_long_file_path_is_named_briefly(tmp_path, capsys):
    c = tmp_path / "c.yaml"
    c.write_text(f"pipeline: {'x' * 3000}.yaml\n")
    code, _, err = cli(capsys, "validate", c)
    assert code == 2
    assert len(one_error_line(err, "xxxxx...xxxxx", ".yaml: cannot read")) < 400


def test_long_stage_names_are_listed_briefly(tmp_path, capsys):
    pipe = tmp_path / "pipeline.yaml"
    pipe.write_text((VIDEO / "pipeline.yaml").read_text().replace("name: crop", f"name: {'x' * 3000}"))
    c = tmp_path / "c.yaml"
    c.write_text(f"pipeline: pipeline.yaml\nprofiles: {VIDEO / 'profiles.csv'}\n")
    code, _, err = cli(capsys, "validate", c)
    assert code == 2
    assert len(one_error_line(err, "unknown stage 'crop' (pipeline stages: xxxx", "...")) < 500


INITIAL = ("initial: {crop: {variant: yolov5n, cpu: 1, batch: 1, replicas: 1}, "
           "classification: {variant: resnet18, cpu: 1, batch: 1, replicas: 1}}\n")


@pytest.mark.parametrize("text, shown_name, what", [
    (f'pipeline: "a\\0b.yaml"\nprofiles: {VIDEO / "profiles.csv"}\n', "a\\0b.yaml", "file"),
    (f'pipeline: {VIDEO / "pipeline.yaml"}\nprofiles: "a\\0b.csv"\n', "a\\0b.csv", "file"),
    (BASE + 'carbon: {trace: "a\\0b.csv"}\n', "a\\0b.csv", "carbon trace"),
    (BASE + INITIAL + 'workload: {type: twitter, trace: "a\\0b.txt"}\n', "a\\0b.txt", "trace file"),
])
def test_a_nul_in_a_file_name_is_one_line_naming_it_escaped(tmp_path, capsys, text, shown_name, what):
    """Found by fuzzing: the OS refuses such a name with a ValueError, which escaped as an internal error (70)."""
    c = tmp_path / "c.yaml"
    c.write_text("optimizer: ilp\n" + text)
    code, _, err = cli(capsys, "simulate", c, "--quiet", "--out", tmp_path / "o")
    assert code == 2, err
    one_error_line(err, f"{tmp_path / shown_name}: {what} name holds a NUL character, which no file name can")
    assert "\0" not in err
