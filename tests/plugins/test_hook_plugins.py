"""Every hook, exercised end to end by a throwaway plugin the config names.

Each plugin below is a real module file loaded through ``plugins.load``; the
component it registers is then used by the CLI or the adapter loop, and the
test checks it changed the outcome.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

from ipa_ext.config.config import load_config
from ipa_ext.host import load_plugins
from ipa_ext.run.runner import execute, prepare

from support.cli import run_cli
from support.paths import VIDEO

PREDICTOR_PLUGIN = """
from ipa_ext import hookimpl
from ipa_ext.predictors import Predictor

class Constant(Predictor):
    def __init__(self, rate=7.0):
        self.rate = float(rate)

    def predict(self, history_rps):
        return self.rate

@hookimpl
def register_predictors(register):
    register("constant", Constant)
"""

OBJECTIVE_PLUGIN = """
from ipa_ext import hookimpl
from ipa_ext.objectives import Objective

class Replicas(Objective):
    name = "replicas"
    weight = "zeta"
    sense = -1
    unit = "replicas"

    def stage_value(self, problem, option, rate_rps):
        return float(option.replicas)

@hookimpl
def register_objectives(register):
    register("replicas", Replicas)
"""

OPTIMIZER_PLUGIN = """
from ipa_ext import hookimpl
from ipa_ext.optimizers import Optimizer

class Fastest(Optimizer):
    \"\"\"Per stage the lowest-latency option: feasible whenever anything is (no power cap).\"\"\"

    def solve(self, problem, rate_rps, current, k):
        per_stage = problem.options(rate_rps, current)
        if any(not o for o in per_stage):
            return [], {}
        ev = problem.evaluate_options([min(o, key=lambda x: x.latency_s) for o in per_stage], rate_rps)
        return ([ev] if ev.feasible else []), {"picked": "fastest"}

@hookimpl
def register_optimizers(register):
    register("fastest", Fastest)
"""

BACKEND_PLUGIN = """
import threading
from ipa_ext import hookimpl
from ipa_ext.backends import Backend, IntervalOutcome

class FixedLoad(Backend):
    \"\"\"A constant arrival rate for a fixed duration; remembers every applied configuration.\"\"\"

    def __init__(self, rate_rps=12.0, duration_s=60.0):
        self.rate = float(rate_rps)
        self.duration = float(duration_s)
        self.applied = []

    def start(self, context):
        self.t = 0.0
        self.config = context.initial

    def now_s(self):
        return self.t

    def finished(self):
        return self.t >= self.duration

    def observe_rates(self, duration_s):
        return [self.rate] * int(min(duration_s, self.t))

    def current_configuration(self):
        return self.config

    def apply(self, config):
        self.applied.append(config)
        self.config = config
        return tuple(True for _ in config)

    def advance(self, duration_s, stop=None):
        start = self.t
        self.t = min(self.duration, self.t + duration_s)
        n = self.rate * (self.t - start)
        zero = {s: 0.0 for s in ("crop", "classification")}
        return IntervalOutcome(start, self.t, n, n, 0.0, 0.0, 0.0, zero, zero)

@hookimpl
def register_backends(register):
    register("fixed-load", FixedLoad)
"""


def config_with(tmp_path: Path, plugin_name: str, plugin_src: str, extra: str) -> Path:
    (tmp_path / f"{plugin_name}.py").write_text(textwrap.dedent(plugin_src))
    base = (VIDEO / "config.yaml").read_text()
    base = base.replace("pipeline: pipeline.yaml", f"pipeline: {VIDEO / 'pipeline.yaml'}")
    base = base.replace("profiles: profiles.csv", f"profiles: {VIDEO / 'profiles.csv'}")
    cfg = tmp_path / "config.yaml"
    cfg.write_text(base + f"\nplugins:\n  load: [./{plugin_name}.py]\n" + extra)
    return cfg


def patch_section(cfg: Path, key: str, new_block: str) -> None:
    """Replace a top-level YAML section (key and its indented lines) with ``new_block``."""
    lines = cfg.read_text().splitlines(keepends=True)
    out, skipping = [], False
    for line in lines:
        if line.startswith(f"{key}:"):
            skipping = True
            out.append(new_block)
            continue
        if skipping and (line.startswith(" ") or not line.strip()):
            continue
        skipping = False
        out.append(line)
    cfg.write_text("".join(out))


def test_register_predictors_plugin_drives_the_loop(tmp_path):
    cfg = config_with(tmp_path, "constpred", PREDICTOR_PLUGIN, "")
    patch_section(cfg, "predictor", "predictor:\n  name: constant\n  options: {rate: 7}\n  backup: constant\n"
                                    "  backup_options: {rate: 7}\n")
    out = tmp_path / "run"
    proc = run_cli("simulate", str(cfg), "--out", str(out), "--quiet")
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(l) for l in (out / "adaptation.jsonl").read_text().splitlines()]
    predicted = {l["predicted_rps"] for l in lines if l.get("predicted_rps") is not None}
    assert predicted == {7.0}


def test_register_objectives_plugin_adds_a_weighted_term(tmp_path):
    cfg = config_with(tmp_path, "replobj", OBJECTIVE_PLUGIN, "")
    cfg.write_text(cfg.read_text().replace("  alpha: 2\n", "  alpha: 20\n"))   # accuracy pays for replicas
    plain = json.loads(run_cli("optimize", str(cfg), "--rate", "40", "--json").stdout)
    assert plain["terms"]["replicas"] == sum(s["replicas"] for s in plain["stages"])
    assert plain["weighted_terms"]["replicas"] == 0
    cfg.write_text(cfg.read_text().replace("  delta: 0\n", "  delta: 0\n  zeta: 5\n"))
    heavy = json.loads(run_cli("optimize", str(cfg), "--rate", "40", "--json").stdout)
    assert heavy["weights"]["zeta"] == 5
    assert heavy["terms"]["replicas"] < plain["terms"]["replicas"]
    assert heavy["weighted_terms"]["replicas"] == 5 * heavy["terms"]["replicas"]


def test_register_optimizers_plugin_is_chosen_by_name(tmp_path):
    cfg = config_with(tmp_path, "fastopt", OPTIMIZER_PLUGIN, "")
    proc = run_cli("optimize", str(cfg), "--rate", "20", "--optimizer", "fastest", "--json")
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert d["optimizer"] == "fastest" and d["info"] == {"picked": "fastest"}
    problem = load_config(cfg).build_problem(load_plugins(load_config(cfg).plugins_load, base_dir=tmp_path))
    fastest = sum(min(o.latency_s for o in opts) for opts in problem.options(20))
    assert d["latency_s"] == fastest


def test_register_backends_plugin_runs_the_adapter_loop(tmp_path):
    cfg = config_with(tmp_path, "fixedload", BACKEND_PLUGIN, "backend: {name: fixed-load, options: {rate_rps: 12, duration_s: 60}}\n")
    config = load_config(cfg)
    host = load_plugins(config.plugins_load, base_dir=config.base_dir)
    prepared = prepare(config, host)
    result, backend, _ = execute(prepared, None, log_path=tmp_path / "log.jsonl", handle_signals=False)
    assert backend.now_s() == 60 and backend.applied
    # every applied configuration sustains the observed 12 rps
    for cfg_applied in backend.applied:
        ev = prepared.problem.evaluate(cfg_applied, 12)
        assert all(o.capacity_rps >= 12 for o in ev.options)
    lines = (tmp_path / "log.jsonl").read_text().splitlines()
    assert len(lines) >= 6
