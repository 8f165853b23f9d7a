"""The local backend under faults: a killed server is restarted and counted while the load goes on; bad
set-ups are one error line with exit 2; and no server process outlives a run that ends normally, by error,
by SIGINT or by SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from support.serve_extra import require_serve

pytestmark = pytest.mark.slow  # real model servers, real requests in real time

require_serve()

from ipa_ext.cli import main  # noqa: E402
from ipa_ext.inference.cache import zoo_model  # noqa: E402
from ipa_ext.serving.pipeline import LocalPipeline  # noqa: E402
from ipa_ext.serving.stage import VariantModel  # noqa: E402

from support.local_project import alive, replica_children, write_project  # noqa: E402


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("ipa-ext: step")]
    assert len(lines) == 1 and lines[0].startswith("ipa-ext: error: "), err
    return lines[0]


def test_a_killed_server_is_restarted_counted_and_the_load_goes_on(cache):
    model = zoo_model("resnet18", {"input_size": 32, "width": 0.25}, cache_dir=cache).path
    pipe = LocalPipeline(["cls"], {"cls": {"r18": VariantModel(model, 32, "resnet@32")}}, {}, drop_limit_s=5,
                         max_batch_time_s=0.0, usable_cores=sorted(os.sched_getaffinity(0)))
    try:
        pipe.start({"cls": ("r18", 1, 1, 1)})
        pipe.start_load([20] * 8, spread="uniform", seed=0, duration_s=None, timeout_s=10)
        time.sleep(2)
        victim = pipe.server_pids()[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while not pipe.load_finished() and time.monotonic() < deadline:
            time.sleep(0.2)
        iv = pipe.interval()
    finally:
        pipe.close()
    assert iv.restarts == 1 and pipe.stages["cls"].restarts == 1
    served = [d for d in iv.done if d.status == "served"]
    assert len(iv.done) == iv.arrivals == 160
    assert max(d.arrival_s for d in served) > 6  # requests after the restart were served
    assert not alive(victim) and replica_children() == []


@pytest.mark.parametrize("kind", ["cores", "model", "port"])
def test_bad_set_ups_are_one_line_and_exit_2(tmp_path, cache, capsys, kind):
    cls_cpu, extra = 1, ""
    if kind == "cores":
        cls_cpu = len(os.sched_getaffinity(0)) + 1
    busy = socket.socket()
    if kind == "port":
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        extra = f", router_port: {busy.getsockname()[1]}"
    config = write_project(tmp_path, cache, cls_cpu=cls_cpu, extra=extra)
    if kind == "cores":  # profiled on a bigger machine
        with open(tmp_path / "profiles.csv", "a") as f:
            f.write(f"cls,r34,{cls_cpu},1,0.05,6\n")
    if kind == "model":
        (tmp_path / "bad.onnx").write_bytes(b"not a model")
        text = (tmp_path / "pipeline.yaml").read_text().replace("zoo: resnet34, width: 0.125", "model: bad.onnx")
        (tmp_path / "pipeline.yaml").write_text(text)
    try:
        code = main(["adapt", str(config), "--out", str(tmp_path / "out"), "--quiet"])
    finally:
        busy.close()
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert {"cores": "cores per replica", "model": "bad.onnx", "port": "router_port"}[kind] in line
    assert replica_children() == []


def test_an_error_mid_run_leaves_no_server(tmp_path, cache, capsys):
    config = write_project(tmp_path, cache)
    config.write_text(config.read_text().replace("threshold: 1", "threshold: 1000"))  # fails at step 1
    code = main(["adapt", str(config), "--out", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "threshold" in one_error_line(err)
    assert replica_children() == []


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_and_its_servers(tmp_path, cache, sig, code):
    config = write_project(tmp_path, cache, seconds=[5] * 600)
    proc = subprocess.Popen([sys.executable, "-m", "ipa_ext", "adapt", str(config), "--out", str(tmp_path / "o"),
                             "--quiet"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 90
        servers: list[int] = []
        while len(servers) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            servers = replica_children(proc.pid)
        assert len(servers) == 2, proc.stderr.read() if proc.poll() is not None else "servers did not start"
        time.sleep(1)
        proc.send_signal(sig)
        assert proc.wait(timeout=60) == code
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    deadline = time.monotonic() + 10
    while any(alive(p) for p in servers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in servers)
    assert (tmp_path / "o" / "summary.json").is_file()
