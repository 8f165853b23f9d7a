"""ipa_ext.upstream (what patched IPA calls) and the patches in upstream_patches/.

Without ``IPA_SRC`` the conversion code is tested against hand-built objects
that have the attributes of IPA's ``Pipeline``/``Task``/``Model``/``Profile``.
With ``IPA_SRC`` pointing at a checkout of reconfigurable-ml-pipeline/ipa at
e1f08dd, the patches are checked with ``git apply --check`` and IPA's own
``Optimizer`` runs an ipa-ext method on a small pipeline.
"""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
import time
import types
from pathlib import Path
from types import SimpleNamespace as NS

import pytest

from ipa_ext import upstream
from ipa_ext.model import StageConfig

from support.paths import ROOT

PATCHES = sorted((ROOT / "upstream_patches").glob("*.patch"))
IPA_SRC = os.environ.get("IPA_SRC")


# --------------------------------------------------------------------------- fakes


def ipa_like(pipeline, *, accuracy_method="sum", normalize=True, sla_factor=5, mode="base",
             threshold=4, initial=None, baseline=None):
    """Objects with the attributes IPA's optimizer reads, built from an ipa-ext pipeline."""
    tasks = []
    for i, stage in enumerate(pipeline.stages):
        models = []
        for v in stage.variants:
            for cpu in stage.cpus(v.name):
                profs = [NS(batch=b, latency=stage.profile(v.name, cpu, b).latency_s,
                            throughput=stage.profile(v.name, cpu, b).throughput_rps)
                         for b in stage.batches(v.name, cpu)]
                models.append(NS(name=v.name, accuracy=v.accuracy / 100,
                                 resource_allocation=NS(cpu=int(cpu)), profiles=profs))
        init = initial[i]
        tasks.append(NS(name=stage.name, available_model_profiles=models, active_variant=init.variant,
                        active_allocation=NS(cpu=init.cpu), initial_allocation=NS(cpu=init.cpu),
                        replicas=init.replicas, batch=init.batch, threshold=threshold))
    # IPA's Task.sla, computed independently: per variant the smallest-batch latency at
    # its last (largest) cpu allocation * sla_factor; mean * 5; summed over tasks.
    sla = 0.0
    for t in tasks:
        per = []
        for name in {m.name for m in t.available_model_profiles}:
            last = [m for m in t.available_model_profiles if m.name == name][-1]
            per.append(min(last.profiles, key=lambda p: p.batch).latency * sla_factor)
        sla += sum(per) / len(per) * 5
    ipa_pipeline = NS(inference_graph=tasks, accuracy_method=accuracy_method,
                      normalize_accuracy=normalize, sla_factor=sla_factor, sla=sla)
    return NS(pipeline=ipa_pipeline, allocation_mode=mode, baseline_mode=baseline)


@pytest.fixture()
def fake(video_config):
    return ipa_like(video_config.pipeline, initial=video_config.settings.initial)


def test_pipeline_conversion_round_trips_profiles_and_accuracy(fake, video_config):
    conv = upstream.pipeline_from_ipa(fake.pipeline)
    ours = video_config.pipeline
    assert conv.stage_names == ours.stage_names
    for a, b in zip(conv.stages, ours.stages):
        assert {v.name: pytest.approx(v.accuracy) for v in a.variants} == {v.name: v.accuracy for v in b.variants}
        assert set(a.profiles) == set(b.profiles)
        for key, p in b.profiles.items():
            q = a.profiles[key]
            assert (q.latency_s, q.throughput_rps) == (p.latency_s, p.throughput_rps)
    assert upstream.current_from_ipa(fake.pipeline) == video_config.settings.initial


def test_problem_uses_ipas_sla_and_settings(fake, video_problem):
    p = upstream.problem_from_ipa(fake, scaling_cap=100, batching_cap=8, alpha=2, beta=1, gamma=1e-6,
                                  num_state_limit=3)
    assert p.sla_s == pytest.approx(video_problem.sla_s, rel=1e-12)
    assert (p.settings.allocation_mode, p.settings.threshold, p.settings.num_state_limit) == ("base", 4.0, 3)
    assert [dict(x) for x in p.base_allocations()] == [dict(x) for x in video_problem.base_allocations()]


@pytest.mark.parametrize("rate", [3, 20, 47])
def test_optimize_returns_ipas_result_frame(fake, video_problem, rate):
    pytest.importorskip("pandas", reason="IPA's result format is a pandas DataFrame (test extra)")
    frame = upstream.optimize(fake, "brute-force", scaling_cap=100, alpha=2, beta=1, gamma=1e-6,
                              arrival_rate=rate, num_state_limit=2, batching_cap=8)
    assert list(frame.columns[:5]) == ["task_0_variant", "task_0_cpu", "task_0_gpu", "task_0_batch",
                                       "task_0_replicas"]
    for col in ("accuracy_objective", "resource_objective", "batch_objective", "objective"):
        assert col in frame.columns
    assert "power_w" not in frame.columns   # IPA's profiles carry no power
    ref = video_problem  # same pipeline and settings, loaded from the example config
    from ipa_ext_plugins.optimizers.brute_force import BruteForceOptimizer

    best = BruteForceOptimizer().optimize(ref, rate, None, 2)
    assert frame["objective"].tolist() == pytest.approx([c.objective for c in best.candidates])
    configs = upstream.configs_of(frame, ["crop", "classification"])
    got = tuple(StageConfig(c["variant"], float(c["cpu"]), c["batch"], c["replicas"]) for c in configs[0].values())
    assert got == best.candidates[0].config
    # IPA's adapter reads these four columns of row 0
    row = frame.iloc[0]
    assert row["objective"] == pytest.approx(row["accuracy_objective"] - row["resource_objective"]
                                             - row["batch_objective"])


def test_ipa_ext_config_adds_power_and_energy_weights(fake, tmp_path, monkeypatch, video_config):
    pytest.importorskip("pandas", reason="IPA's result format is a pandas DataFrame (test extra)")
    cfg = tmp_path / "ipa-ext.yaml"
    video = ROOT / "examples" / "video"
    cfg.write_text(f"pipeline: {video / 'pipeline.yaml'}\nprofiles: {video / 'profiles.csv'}\n"
                   "weights: {delta: 0.5}\npower_cap_w: 500\n")
    monkeypatch.setenv(upstream.CONFIG_ENV, str(cfg))
    p = upstream.problem_from_ipa(fake, scaling_cap=100, batching_cap=8, alpha=2, beta=1, gamma=1e-6)
    assert p.pipeline.has_power and p.settings.weight("delta") == 0.5 and p.settings.power_cap_w == 500
    assert p.settings.weight("alpha") == 2   # IPA's own weights still come from IPA
    frame = upstream.optimize(fake, "brute-force", scaling_cap=100, alpha=2, beta=1, gamma=1e-6,
                              arrival_rate=20, num_state_limit=1, batching_cap=8)
    row = frame.iloc[0]
    assert row["power_quality"] == "estimated"
    assert row["power_objective"] == pytest.approx(0.5 * row["power_w"])
    assert row["objective"] == pytest.approx(row["accuracy_objective"] - row["resource_objective"]
                                             - row["batch_objective"] - row["power_objective"])


def test_infeasible_gives_empty_frame(fake):
    pytest.importorskip("pandas", reason="IPA's result format is a pandas DataFrame (test extra)")
    frame = upstream.optimize(fake, "brute-force", scaling_cap=1, alpha=2, beta=1, gamma=1e-6,
                              arrival_rate=500, num_state_limit=1, batching_cap=8)
    # IPA's adapter checks `"objective" in optimal.columns` to detect "no solution"
    assert "objective" not in frame.columns and len(frame) == 0


def test_handles_only_registered_non_ipa_methods():
    assert not upstream.handles("gurobi") and not upstream.handles("brute-force")
    assert not upstream.handles("no-such-method")
    other = [m for m in upstream.available_methods() if m not in upstream.IPA_METHODS]
    assert other and all(upstream.handles(m) for m in other)


def test_interval_energy_records_each_interval_with_quality():
    e = upstream.IntervalEnergyRecorder(["estimate"])
    try:
        time.sleep(0.05)
        first = e.record()
        second = e.record()
    finally:
        e.close()
    assert first["quality"] == "estimated" and first["duration_s"] >= 0.05
    assert first["total_j"] > 0 and {d["id"] for d in first["domains"]} >= {"cpu"}
    assert second["duration_s"] < first["duration_s"]


@pytest.mark.parametrize("bad,needle", [([], "energy_sources"), (["nope"], "unknown energy source 'nope'"),
                                        ([{"options": {}}], "energy_sources[0].name")])
def test_interval_energy_bad_sources(bad, needle):
    with pytest.raises(Exception) as exc:
        upstream.IntervalEnergyRecorder(bad)
    assert needle in str(exc.value)


def test_interval_energy_old_name_still_works():
    """Patch 0002 as applied before the rename calls ``IntervalEnergy``."""
    e = upstream.IntervalEnergy(["estimate"])
    try:
        assert isinstance(e, upstream.IntervalEnergyRecorder) and e.record()["quality"] == "estimated"
    finally:
        e.close()


# --------------------------------------------------------------------------- patches


def test_patches_hold_only_our_lines_and_little_context():
    assert [p.name for p in PATCHES] == [
        "0001-optimizer-ipa-ext-methods-and-optional-gurobi.patch",
        "0002-adapter-energy-per-interval.patch",
    ]
    for p in PATCHES:
        text = p.read_text()
        context = [l for l in text.splitlines() if l.startswith(" ")]
        added = [l for l in text.splitlines() if l.startswith("+") and not l.startswith("+++")]
        removed = [l for l in text.splitlines() if l.startswith("-") and not l.startswith("---")]
        assert added, p.name
        assert len(context) <= 2 * text.count("\n@@"), p.name   # at most one line each side per hunk
        assert len(removed) <= 2, p.name   # only the unconditional gurobipy import goes


needs_ipa = pytest.mark.skipif(not IPA_SRC, reason="set IPA_SRC to a checkout of reconfigurable-ml-pipeline/ipa @ e1f08dd")


@needs_ipa
def test_patches_apply_to_ipa_checkout():
    proc = subprocess.run(["git", "apply", "--check", *map(str, PATCHES)], cwd=IPA_SRC,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.fixture()
def patched_ipa(tmp_path):
    """A patched copy of IPA's optimizer package, importable without its TensorFlow adapter."""
    pytest.importorskip("sklearn", reason="IPA's models.py needs scikit-learn: pip install 'ipa-ext[upstream]'")
    pytest.importorskip("pandas", reason="IPA needs pandas: pip install 'ipa-ext[upstream]'")
    src = Path(IPA_SRC)
    dst = tmp_path / "ipa"
    shutil.copytree(src / "optimizer", dst / "optimizer")
    (dst / "experiments" / "runner").mkdir(parents=True)
    shutil.copy(src / "experiments" / "runner" / "adaptation_runner.py", dst / "experiments" / "runner")
    subprocess.run(["git", "init", "-q"], cwd=dst, check=True)
    proc = subprocess.run(["git", "apply", *map(str, PATCHES)], cwd=dst, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    saved = {k: v for k, v in sys.modules.items() if k == "optimizer" or k.startswith("optimizer.")}
    for k in saved:
        del sys.modules[k]
    pkg = types.ModuleType("optimizer")
    pkg.__path__ = [str(dst / "optimizer")]   # skip __init__, which imports TensorFlow via the adapters
    sys.modules["optimizer"] = pkg
    try:
        yield importlib.import_module("optimizer.models"), importlib.import_module("optimizer.optimizer")
    finally:
        for k in [k for k in sys.modules if k == "optimizer" or k.startswith("optimizer.")]:
            del sys.modules[k]
        sys.modules.update(saved)


@needs_ipa
def test_ipa_optimizer_runs_an_ipa_ext_method(patched_ipa, video_config):
    models, opt = patched_ipa
    assert opt.gp is None or hasattr(opt.gp, "Model")   # importable without a Gurobi licence
    pipe = video_config.pipeline
    keep = {"crop": ("yolov5n", "yolov5s", "yolov5m"), "classification": ("resnet18", "resnet34", "resnet50")}
    tasks = []
    for stage in pipe.stages:
        ms = []
        for v in keep[stage.name]:
            for cpu in stage.cpus(v):
                profs = [models.Profile(batch=b, latency=stage.profile(v, cpu, b).latency_s,
                                        measured_throughput=stage.profile(v, cpu, b).throughput_rps)
                         for b in (1, 2)]
                ms.append(models.Model(name=v, resource_allocation=models.ResourceAllocation(cpu=int(cpu)),
                                       measured_profiles=profs, only_measured_profiles=True,
                                       accuracy=stage.variant(v).accuracy))
        tasks.append(models.Task(name=stage.name, available_model_profiles=ms, active_variant=keep[stage.name][0],
                                 active_allocation=models.ResourceAllocation(cpu=1), replica=1, batch=1,
                                 allocation_mode="base", threshold=4, sla_factor=5, normalize_accuracy=True,
                                 gpu_mode=False))
    ipa_pipeline = models.Pipeline(inference_graph=tasks, gpu_mode=False, sla_factor=5,
                                   accuracy_method="sum", normalize_accuracy=True)
    optimizer = opt.Optimizer(pipeline=ipa_pipeline, allocation_mode="base", complete_profile=False,
                              only_measured_profiles=True, random_sample=False, baseline_mode=None)
    method = next(m for m in ("ilp", "q-learning") if upstream.handles(m))
    args = dict(scaling_cap=4, alpha=2, beta=1, gamma=1e-6, arrival_rate=6, num_state_limit=1, batching_cap=2)
    ours = optimizer.optimize(optimization_method=method, **args)
    best = float(ours["objective"].iloc[0])
    # IPA's own enumeration (its brute_force() cannot rank: all_states stores the objective
    # as a dict), ranked here by the dict's "objective".
    states = optimizer.all_states(check_constraints=True, scaling_cap=4, alpha=2, beta=1, gamma=1e-6,
                                  arrival_rate=6)
    assert best == pytest.approx(max(o["objective"] for o in states["objective"]), rel=1e-9)
    # IPA evaluates the chosen configuration with its own code: feasible, same objective.
    for i, task in enumerate(ipa_pipeline.inference_graph):
        task.model_switch(ours[f"task_{i}_variant"].iloc[0])
        task.re_scale(int(ours[f"task_{i}_replicas"].iloc[0]))
        task.change_batch(int(ours[f"task_{i}_batch"].iloc[0]))
    assert optimizer.constraints(arrival_rate=6)
    assert optimizer.objective(alpha=2, beta=1, gamma=1e-6)["objective"] == pytest.approx(best, rel=1e-9)
    with pytest.raises(ValueError, match="Invalid optimization_method"):
        optimizer.optimize(optimization_method="no-such-method", **args)
