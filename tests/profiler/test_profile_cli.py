"""``ipa-ext profile`` as a user runs it: real pinned onnxruntime workers on tiny zoo models, the profile
file they write (header, rows, resuming, Ctrl-C), and every kind of bad input as one error line."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.cli import cli, default_sigint, one_error_line
from support.local_project import PIPELINE  # the same tiny two-stage pipeline the local backend's tests run
from support.serve_extra import require_serve

require_serve()

import onnx  # noqa: E402
import onnxruntime as ort  # noqa: E402
from onnx import TensorProto, helper  # noqa: E402

from ipa_ext.profiler.run import Request, prepare  # noqa: E402
from ipa_ext.profiler.writer import COLUMNS  # noqa: E402

pytestmark = pytest.mark.slow  # real onnxruntime workers timing tiny models

CONFIG = """\
pipeline: pipeline.yaml
profiles: profiles.csv
sla_s: 2
threshold: 1
energy: {sources: [estimate]}
"""
FAST = ["--seconds-per-row", "0.05", "--min-batches", "3", "--warmup", "1", "--idle-seconds", "0.05",
        "--cpus", "1", "--batches", "1,2"]
USABLE = sorted(os.sched_getaffinity(0))


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("models"))


@pytest.fixture()
def project(tmp_path) -> Path:
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "config.yaml").write_text(CONFIG)
    return tmp_path


def read_profile(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    lines = path.read_text().splitlines()
    comments = [line for line in lines if line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(line for line in lines if not line.startswith("#")))))
    return comments, rows


def profile(capsys, project: Path, cache: str, *extra: str):
    return cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, "--quiet", *FAST, *extra)


def test_a_measured_profile_has_every_row_and_the_optimizer_reads_it(capsys, project, cache):
    code, out, err = profile(capsys, project, cache)
    assert code == 0, err
    comments, rows = read_profile(project / "profiles.csv")
    assert [(r["stage"], r["variant"], r["cpu"], r["batch"]) for r in rows] == [
        (s, v, "1", b) for s, v in (("det", "y5n"), ("cls", "r18"), ("cls", "r34")) for b in ("1", "2")]
    assert list(rows[0]) == list(COLUMNS)
    for r in rows:
        lat, p50, batches = float(r["latency_s"]), float(r["latency_p50_s"]), int(r["batches"])
        assert batches >= 3 and float(r["latency_max_s"]) >= lat >= p50 >= float(r["latency_min_s"]) > 0
        # one replica's throughput is its requests over its timed seconds
        assert float(r["throughput_rps"]) == pytest.approx(int(r["batch"]) * batches / float(r["timed_s"]), rel=1e-3)
        assert r["energy_quality"] == "estimated" and r["replicas"] == "1"
        assert float(r["power_w"]) >= float(r["idle_w"]) > 0 and float(r["energy_j_per_request"]) >= 0
    code, out, err = cli(capsys, "optimize", str(project / "config.yaml"), "--rate", "5")
    assert code == 0, err
    assert "det" in out and "cls" in out


def test_the_header_names_machine_runtime_settings_and_model_hashes(capsys, project, cache):
    assert profile(capsys, project, cache, "--latency-percentile", "95")[0] == 0
    comments, _ = read_profile(project / "profiles.csv")
    fields = dict(line[2:].split(": ", 1) for line in comments[1:] if not line.startswith("# model "))
    assert comments[0].startswith("# ipa-ext profile 1")
    cpu_model = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                     if line.startswith("model name"))
    assert cpu_model in fields["machine"] and f"{os.cpu_count()} logical CPUs" in fields["machine"]
    assert "GiB memory" in fields["machine"] and len(fields["machine-id"]) == 16
    assert fields["onnxruntime"] == ort.__version__
    assert fields["latency"] == "p95" and fields["replicas"] == "1" and fields["device"].startswith("cpu")
    assert "estimate (estimated" in fields["energy"] and "idle" in fields["energy"]
    models = {line.split(":")[0][len("# model "):]: line for line in comments if line.startswith("# model ")}
    assert set(models) == {"det/y5n", "cls/r18", "cls/r34"}
    for built in Path(cache).glob("resnet18-32-*.onnx"):
        sha = hashlib.sha256(built.read_bytes()).hexdigest()
        if sha in models["cls/r18"]:
            break
    else:
        pytest.fail(f"no cached resnet18 file has the header's hash: {models['cls/r18']}")
    assert "(zoo resnet18 input_size=32 width=0.25)" in models["cls/r18"]


def test_workers_are_pinned_to_the_requested_cores(project, cache):
    """Each row's worker reports the affinity it runs with; with two replicas the core sets are disjoint."""
    cpus = "1,2" if len(USABLE) >= 2 else "1"
    job = prepare(Request(project / "config.yaml", variants="r18", cpus=cpus, batches="1",
                          seconds_per_row=0.02, min_batches=2, warmup=1, idle_seconds=0.0, cache_dir=cache))
    progress = job.run()
    job.close()
    assert [m.affinity for m in progress.rows] == [(tuple(USABLE[:c]),) for c in job.plan.cpus]
    if len(USABLE) >= 2:
        job = prepare(Request(project / "config.yaml", variants="r18", cpus="1", batches="2", replicas=2,
                              seconds_per_row=0.02, min_batches=2, warmup=1, idle_seconds=0.0, cache_dir=cache,
                              out=project / "replicas.csv"))
        progress = job.run()
        job.close()
        row = progress.rows[0]
        assert row.affinity == ((USABLE[0],), (USABLE[1],))
        assert row.row["replicas"] == 2
        assert row.row["throughput_total_rps"] == pytest.approx(2 * row.row["throughput_rps"])


def test_a_worker_and_all_its_threads_run_only_on_its_cores(cache):
    """Read the affinity from outside the worker: the process and every onnxruntime thread."""
    from ipa_ext.inference import zoo_model
    from ipa_ext.profiler.handle import Worker

    model = zoo_model("resnet18", {"input_size": 32, "width": 0.25}, cache_dir=cache)
    cores = USABLE[-1:] if len(USABLE) < 2 else USABLE[:2]
    w = Worker(model.path, cores, threads=len(cores), input_size=None)
    try:
        w.prepare(2, 1)
        w.prepared()  # the session has run, so its thread pool exists
        tasks = list(Path(f"/proc/{w.pid}/task").iterdir())
        assert len(tasks) >= len(cores)
        for task in tasks:
            assert os.sched_getaffinity(int(task.name)) == set(cores)
        assert w.affinity == tuple(cores)
    finally:
        w.close()
    assert w.proc.returncode == 0


def test_resuming_measures_only_the_missing_rows(capsys, project, cache):
    assert profile(capsys, project, cache, "--variants", "r18")[0] == 0
    _, first = read_profile(project / "profiles.csv")
    code, out, err = profile(capsys, project, cache, "--json")
    doc = json.loads(out)
    assert code == 0 and doc["skipped"] == 2
    assert [(r["variant"], r["batch"]) for r in doc["measured"]] == [("y5n", 1), ("y5n", 2), ("r34", 1), ("r34", 2)]
    _, rows = read_profile(project / "profiles.csv")
    assert [r for r in rows if r["variant"] == "r18"] == first  # kept as they were
    code, out, err = profile(capsys, project, cache, "--json")
    assert json.loads(out)["measured"] == [] and json.loads(out)["skipped"] == 6


def test_a_changed_model_file_is_measured_again(capsys, project, cache):
    assert profile(capsys, project, cache)[0] == 0
    (project / "pipeline.yaml").write_text(PIPELINE.replace("width: 0.125", "width: 0.25"))
    code, out, err = cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, "--json", *FAST)
    assert code == 0, err
    assert [(r["variant"], r["batch"]) for r in json.loads(out)["measured"]] == [("r34", 1), ("r34", 2)]
    comments, _ = read_profile(project / "profiles.csv")
    assert any("cls/r34" in line and "width=0.25" in line for line in comments)


def test_another_machine_or_setting_is_refused_unless_restarted(capsys, project, cache):
    assert profile(capsys, project, cache, "--variants", "r18")[0] == 0
    path = project / "profiles.csv"
    text = path.read_text()
    machine_id = next(line for line in text.splitlines() if line.startswith("# machine-id: "))
    path.write_text(text.replace(machine_id, "# machine-id: 0000000000000000"))
    code, _, err = profile(capsys, project, cache, "--variants", "r18")
    assert code == 2
    assert one_error_line(err).startswith(f"ipa-ext: error: {path}: --out: was measured with machine-id "
                                          "'0000000000000000'")
    code, _, err = profile(capsys, project, cache, "--variants", "r18", "--latency-percentile", "90", "--restart")
    assert code == 0, err
    code, _, err = profile(capsys, project, cache, "--variants", "r18")
    assert code == 2 and "latency 'p90', this run has 'p99'" in one_error_line(err)
    other = project / "derived.csv"
    other.write_text("stage,variant,cpu,batch,latency_s,throughput_rps\ncls,r18,1,1,0.1,10\n")
    code, _, err = profile(capsys, project, cache, "--out", str(other))
    assert code == 2 and "was not written by 'ipa-ext profile'" in one_error_line(err)


def test_ctrl_c_keeps_every_complete_row_and_a_rerun_measures_the_rest(project, cache, capsys):
    out = project / "profiles.csv"
    env = {**os.environ, "CI": "true"}
    cmd = [sys.executable, "-m", "ipa_ext", "profile", str(project / "config.yaml"), "--cache-dir", cache,
           "--seconds-per-row", "1.0", "--min-batches", "2", "--warmup", "1", "--idle-seconds", "0",
           "--cpus", "1", "--batches", "1,2,4,8"]
    # 12 rows of at least 1 s each: the interrupt after the second row lands mid-grid even when
    # a loaded machine starves this polling loop for several seconds.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=default_sigint)
    seen: list[int] = []
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline:
            if out.exists():
                _, rows = read_profile(out)  # every snapshot is a whole file: header, full rows
                assert all(None not in r and all(v is not None for v in r.values()) for r in rows)
                seen.append(len(rows))
                if len(rows) >= 2:
                    break
            time.sleep(0.02)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "ipa-ext: interrupted:" in err and "Traceback" not in err
    _, kept = read_profile(out)
    assert 2 <= len(kept) < 12
    assert not list(project.glob(".profiles.csv.*.tmp"))
    code, stdout, err = cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, "--json",
                            "--seconds-per-row", "0.02", "--min-batches", "2", "--warmup", "1",
                            "--idle-seconds", "0", "--cpus", "1", "--batches", "1,2,4,8")
    assert code == 0, err
    doc = json.loads(stdout)
    assert doc["skipped"] == len(kept) and len(doc["measured"]) == 12 - len(kept)
    _, final = read_profile(out)
    assert len(final) == 12 and [r for r in final if r in kept] == kept


def test_monotonicity_violations_are_reported(capsys, project, cache):
    assert profile(capsys, project, cache, "--variants", "r18", "--batches", "1,2,4")[0] == 0
    path = project / "profiles.csv"
    comments, rows = read_profile(path)
    rows[2]["throughput_rps"] = str(float(rows[1]["throughput_rps"]) / 2)  # batch 4 slower than batch 2
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    path.write_text("\n".join(comments) + "\n" + buf.getvalue())
    code, out, err = cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, *FAST,
                         "--variants", "r18", "--batches", "1,2,4")
    assert code == 0
    assert "wrote" in out and "0 row(s) measured" in out and "3 already there" in out
    assert "ipa-ext: warning: cls/r18 cpu 1: throughput falls with a larger batch: batch 2" in err
    assert "(-50.0%)" in err
    code, out, _ = cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, *FAST,
                       "--variants", "r18", "--batches", "1,2,4", "--json")
    checks = json.loads(out)["checks"]
    assert any(c["kind"] == "throughput-batch" and c["change"] == pytest.approx(-0.5) for c in checks)


def test_a_pipeline_file_works_as_config(capsys, project, cache):
    code, out, err = cli(capsys, "profile", str(project / "pipeline.yaml"), "--cache-dir", cache, "--quiet", *FAST,
                         "--variants", "cls/r18", "--out", str(project / "p.csv"))
    assert code == 0, err
    assert len(read_profile(project / "p.csv")[1]) == 2


# --------------------------------------------------------------------------- bad input


def relu_flatten_model(path: Path) -> Path:
    """A model with free H and W that only runs at 8x8 (its MatMul wants 3*8*8 features)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4])
    w = helper.make_tensor("w", TensorProto.FLOAT, [192, 4], [0.01] * 768)
    graph = helper.make_graph([helper.make_node("Flatten", ["x"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["y"])],
                              "flat", [x], [y], [w])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


@pytest.mark.parametrize("variant,field,message", [
    ("{name: mine, accuracy: 1, model: missing.onnx}", "stages[0].variants.mine.model", "missing.onnx: file not found"),
    ("{name: mine, accuracy: 1, model: corrupt.onnx}", "stages[0].variants.mine.model", "not a readable ONNX model"),
    ("{name: mine, accuracy: 1, model: flat.onnx}", "stages[0].variants.mine.input_size", "give input_size"),
    ("{name: mine, accuracy: 1, model: flat.onnx, input_size: 16}", "stages[0].variants.mine.input_size",
     "onnxruntime cannot run it on a batch of 1 at input size 16"),
    ("{name: mine, accuracy: 1, model: fixed.onnx, input_size: 64}", "stages[0].variants.mine.input_size",
     "does not take input_size 64"),
    ("{name: mine, accuracy: 1, zoo: resnet19}", "stages[0].variants.mine.zoo", "unknown zoo model 'resnet19'"),
])
def test_bad_models_are_one_line_naming_file_and_field(capsys, tmp_path, cache, variant, field, message):
    (tmp_path / "corrupt.onnx").write_bytes(b"\x08\x07 this is not protobuf \xff\xff")
    relu_flatten_model(tmp_path / "flat.onnx")
    from ipa_ext.inference import zoo_model

    fixed = zoo_model("resnet18", {"input_size": 32, "width": 0.25}, cache_dir=cache).path
    (tmp_path / "fixed.onnx").write_bytes(fixed.read_bytes())
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text(f"stages:\n  - name: s\n    variants:\n      - {variant}\n")
    code, _, err = cli(capsys, "profile", str(pipeline), "--cache-dir", cache, "--quiet", *FAST)
    assert code == 2
    line = one_error_line(err)
    assert line.startswith(f"ipa-ext: error: {pipeline}: {field}: "), line
    assert message in line


def test_a_model_runs_at_its_own_input_size(capsys, tmp_path, cache):
    relu_flatten_model(tmp_path / "flat.onnx")
    pipeline = tmp_path / "pipeline.yaml"
    pipeline.write_text("stages:\n  - name: s\n    variants:\n      - {name: mine, accuracy: 1, model: flat.onnx, "
                        "input_size: 8}\n")
    code, _, err = cli(capsys, "profile", str(pipeline), "--cache-dir", cache, "--quiet", *FAST)
    assert code == 0, err


@pytest.mark.parametrize("argv,field,message", [
    (["--cpus", "64"], "--cpus", "64 cores asked for; this machine lets ipa-ext use"),
    (["--cpus", "1,x"], "--cpus", "expected whole numbers"),
    (["--batches", "0"], "--batches", "must be >= 1"),
    (["--replicas", "64"], "--replicas", "64 replicas of 1 cores need 64 CPUs"),
    (["--stages", "nope"], "--stages", "unknown stage 'nope'"),
    (["--variants", "r50"], "--variants", "unknown variant 'r50'"),
    (["--latency-percentile", "0"], "--latency-percentile", "must be in (0, 100]"),
    (["--seconds-per-row", "-1"], "--seconds-per-row", "must be >= 0"),
    (["--out", "p.yaml"], "--out", "the profiler writes CSV"),
])
def test_bad_options_are_one_line(capsys, project, cache, argv, field, message):
    code, _, err = cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, "--quiet", *FAST, *argv)
    line = one_error_line(err)
    assert code == 2 and f" {field}: " in line and message in line, line


def test_a_variant_without_a_model_is_named(capsys, project, cache):
    (project / "pipeline.yaml").write_text(PIPELINE + "      - {name: r50, accuracy: 76}\n")
    code, _, err = cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, *FAST,
                       "--variants", "r50")
    assert code == 2 and "variant cls/r50 names no model" in one_error_line(err)
    code, out, err = cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, *FAST,
                         "--variants", "r18,r34")
    assert code == 0, err
    code, out, err = cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, *FAST,
                         "--stages", "cls")
    assert code == 0 and "skipping 1 variant(s) that name no model: cls/r50" in err


# --------------------------------------------------------------------------- GPU (no GPU here: fakes)


def test_gpu_without_the_cuda_provider_says_what_to_install(capsys, project, cache, monkeypatch):
    from ipa_ext.profiler import device

    monkeypatch.setattr(device, "available_providers", lambda: ["CPUExecutionProvider"])
    code, _, err = cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, *FAST,
                       "--device", "gpu")
    line = one_error_line(err)
    assert code == 2 and line.startswith("ipa-ext: error: --device: no GPU provider: onnxruntime offers "
                                         "CPUExecutionProvider, not CUDAExecutionProvider")
    assert "pip install onnxruntime-gpu" in line


@pytest.mark.skipif("CUDAExecutionProvider" in ort.get_available_providers(), reason="a real GPU provider is here")
def test_a_gpu_worker_that_falls_back_to_the_cpu_is_an_error(capsys, project, cache, monkeypatch):
    """The parent believes a CUDA provider exists (faked); the real worker's session falls back to the CPU."""
    from ipa_ext.profiler import device

    monkeypatch.setattr(device, "available_providers", lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"])
    code, _, err = cli(capsys, "profile", str(project / "config.yaml"), "--cache-dir", cache, "--quiet", *FAST,
                       "--device", "gpu", "--variants", "r18")
    line = one_error_line(err)
    assert code == 2 and "--device: the GPU provider did not load in the worker" in line
    assert not (project / "profiles.csv").exists()
