"""``local.stages``: a stage served by an external V2 server given by URL. Here the external server is a
separately started instance of the project's own replica server (as docs/local.md shows): the run sends that
stage's requests to it, never starts, reconfigures or stops it, and serves the other stage itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.request

import pytest

from support.serve_extra import require_serve

pytestmark = pytest.mark.slow  # real model servers, real requests in real time

require_serve()

from ipa_ext.cli import main  # noqa: E402
from ipa_ext.inference.cache import zoo_model  # noqa: E402

from support.local_project import alive, replica_children, write_project  # noqa: E402

SECONDS = [2] * 5 + [20] * 10  # the step makes the loop decide a new configuration for the external stage


@pytest.fixture()
def external(tmp_path):
    """``python -m ipa_ext.serving.replica --name resnet18 --model FILE --port 0``, started by hand."""
    model = zoo_model("resnet18", {"input_size": 32, "width": 0.25}, cache_dir=tmp_path / "ext").path
    proc = subprocess.Popen([sys.executable, "-m", "ipa_ext.serving.replica", "--name", "resnet18", "--model",
                             str(model), "--input-size", "32", "--port", "0"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)
    try:
        ready = json.loads(proc.stdout.readline())
        assert ready["event"] == "ready", ready
        yield proc, ready["port"]
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def successes(port: int) -> float:
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    line = next(x for x in text.splitlines() if x.startswith('model_infer_request_success_total{model="resnet18"}'))
    return float(line.split()[-1])


def test_a_stage_served_by_an_external_v2_server(tmp_path, capsys, external):
    proc, port = external
    stages = f", stages: {{cls: {{url: 'http://127.0.0.1:{port}', model: resnet18, input_size: 32}}}}"
    config = write_project(tmp_path, tmp_path / "models", seconds=SECONDS, extra=stages)
    out = tmp_path / "out"
    code = main(["adapt", str(config), "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    summary = json.loads((out / "summary.json").read_text())
    lines = [json.loads(x) for x in (out / "adaptation.jsonl").read_text().splitlines()]

    # every request went through the local det replica and then the external server
    req = summary["requests"]
    assert req["arrived"] == sum(SECONDS) == req["served"] and req["dropped"] == 0
    assert successes(port) == sum(SECONDS)

    # the run never owned it: not among the servers it started, its decisions for cls logged, not applied
    pids = {p for x in lines for p in x["backend"]["server_pids"]}
    assert pids and proc.pid not in pids and all(len(x["backend"]["server_pids"]) == 1 for x in lines)
    changes = [x["backend"]["reconfiguration"] for x in lines if "reconfiguration" in x["backend"]]
    assert any(c.get("cls") == {"external": True} for c in changes)
    assert summary["backend_report"]["restarts"] == {"det": 0}

    # one replica on this machine's cores: the ipa-ext process had a spare core of its own, apart from it
    cores = sorted(os.sched_getaffinity(0))
    driver = summary["backend_report"]["driver"]
    if len(cores) > 1:
        assert driver["pinned"] and driver["cores"] == [cores[-1]] and not driver["shared_cores"]
        assert all(x["backend"]["cores_used"][str(cores[-1])] == 0 for x in lines)
        assert not summary["backend_report"]["oversubscribed"]

    # it is still serving; the run's own servers are gone
    assert proc.poll() is None and successes(port) == sum(SECONDS)
    assert not any(alive(p) for p in pids) and replica_children() == [proc.pid]


def error_line(tmp_path, capsys, stages: str) -> str:
    config = write_project(tmp_path, tmp_path / "models", seconds=[1] * 3, extra=stages)
    code = main(["adapt", str(config), "--out", str(tmp_path / "out")])
    _, err = capsys.readouterr()
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    return err


def test_an_external_url_that_does_not_answer_is_one_error_line(tmp_path, capsys):
    err = error_line(tmp_path, capsys, ", stages: {cls: {url: 'http://127.0.0.1:9', model: resnet18}}")
    assert "config.yaml: local.stages.cls: cannot use the V2 server at http://127.0.0.1:9" in err
    assert replica_children() == []


def test_an_external_server_without_the_model_is_one_error_line(tmp_path, capsys, external):
    proc, port = external
    err = error_line(tmp_path, capsys, f", stages: {{cls: {{url: 'http://127.0.0.1:{port}', model: nope}}}}")
    assert f"local.stages.cls: cannot use the V2 server at http://127.0.0.1:{port} (model 'nope')" in err
    assert "has no model 'nope' (status 404)" in err and replica_children() == [proc.pid]
