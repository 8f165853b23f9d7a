"""The replica server as a client sees it: a separately started process speaking V2 REST on 127.0.0.1,
its metrics, its control endpoint (batch, cores, model swap under load) and its start-up errors."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import socket

import numpy as np
import pytest

from support.serve_extra import require_serve

require_serve()

from ipa_ext.inference.cache import zoo_model  # noqa: E402
from ipa_ext.serving.process import CoreAllocator, ReplicaProcess, ReplicaSpec, ServingError  # noqa: E402
from ipa_ext.serving.router import Router  # noqa: E402
from ipa_ext.serving.v2 import HEADER_LENGTH, decode_outputs, encode, split_body  # noqa: E402

CORES = tuple(sorted(os.sched_getaffinity(0)))


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    cache = tmp_path_factory.mktemp("models")
    r18 = zoo_model("resnet18", {"input_size": 32, "width": 0.25}, cache_dir=cache).path
    r34 = zoo_model("resnet34", {"input_size": 32, "width": 0.125}, cache_dir=cache).path
    return r18, r34


@pytest.fixture()
def server(models):
    rep = ReplicaProcess(ReplicaSpec("cls", models[0], 32, CORES[:1], max_batch_size=4, max_batch_time_s=0.02))
    try:
        yield rep
    finally:
        rep.stop()


def call(port, method, path, body=b"", headers=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body, headers or {})
        resp = conn.getresponse()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), resp.read()
    finally:
        conn.close()


def infer_json(port, data, shape, name="input"):
    body = json.dumps({"id": "r1", "inputs": [{"name": name, "shape": shape, "datatype": "FP32", "data": data}]})
    status, _, raw = call(port, "POST", "/v2/models/cls/infer", body.encode(), {"content-type": "application/json"})
    return status, json.loads(raw)


def test_health_metadata_and_json_inference(server):
    port = server.port
    assert call(port, "GET", "/v2/health/ready")[0] == 200
    assert call(port, "GET", "/v2/health/live")[0] == 200
    status, _, raw = call(port, "GET", "/v2/models/cls")
    meta = json.loads(raw)
    assert status == 200 and meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 3, 32, 32]}]
    assert call(port, "GET", "/v2/models/cls/ready")[0] == 200
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    status, flat = infer_json(port, x.ravel().tolist(), [2, 3, 32, 32])
    assert status == 200 and flat["id"] == "r1" and flat["model_name"] == "cls"
    assert flat["outputs"][0]["shape"] == [2, 1000]
    status, nested = infer_json(port, x.tolist(), [2, 3, 32, 32])  # nested data is the same tensor
    assert np.allclose(nested["outputs"][0]["data"], flat["outputs"][0]["data"], atol=1e-5)


def test_binary_tensors_both_ways(server):
    x = np.random.default_rng(1).standard_normal((3, 3, 32, 32)).astype(np.float32)
    body, headers = encode({"parameters": {"binary_data_output": True}}, [("input", x)], "inputs", binary=True)
    status, rheaders, raw = call(server.port, "POST", "/v2/models/cls/infer", body, headers)
    assert status == 200 and HEADER_LENGTH in rheaders
    head, blob = split_body(raw, rheaders)
    out = decode_outputs(head, blob)
    assert out["logits"].shape == (3, 1000) and out["logits"].dtype == np.float32


@pytest.mark.parametrize("path, body, status", [
    ("/v2/models/nope/infer", b"{}", 404),
    ("/v2/models/cls/infer", b"{not json", 400),
    ("/v2/models/cls/infer", json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 8, 8], "datatype": "FP32",
                                                      "data": [0.0] * 192}]}).encode(), 400),
    ("/v2/models/cls/infer", json.dumps({"inputs": [{"name": "input", "shape": [1, 3, 32, 32], "datatype": "FP32",
                                                      "data": [0.0] * 5}]}).encode(), 400),
    ("/v2/models/cls/infer", json.dumps({"inputs": [{"name": "x", "shape": [1], "datatype": "FP32",
                                                      "data": [0.0]}]}).encode(), 400),
])
def test_bad_requests_get_an_error_status_and_message(server, path, body, status):
    got, _, raw = call(server.port, "POST", path, body, {"content-type": "application/json"})
    assert got == status and json.loads(raw)["error"]


def test_metrics_count_requests_batches_and_queue(server):
    x = np.zeros((1, 3, 32, 32), dtype=np.float32).ravel().tolist()
    for _ in range(3):
        assert infer_json(server.port, x, [1, 3, 32, 32])[0] == 200
    status, _, raw = call(server.port, "GET", "/metrics")
    text = raw.decode()
    assert status == 200
    assert 'model_infer_request_duration_seconds_count{model="cls"} 3.0' in text
    assert 'model_infer_request_success_total{model="cls"} 3.0' in text
    assert 'batch_size_count{model="cls"}' in text and 'batch_request_queue{model="cls"} 0.0' in text


def test_control_changes_batch_cores_and_swaps_the_model_under_load(server, models):
    cores = list(CORES[-1:])
    got = server.control({"max_batch_size": 2, "max_batch_time_s": 0.01, "cores": cores, "threads": 1})
    assert got["max_batch_size"] == 2 and got["affinity"] == cores
    assert sorted(os.sched_getaffinity(server.pid)) == cores

    async def load(n):
        router = Router(["cls"], drop_limit_s=60)
        await router.add_endpoint("cls", "r", server.port, "cls", 32)
        results = await asyncio.gather(*(router.route() for _ in range(n)))
        await router.close()
        return results

    async def swap_during_load():
        task = asyncio.ensure_future(load(60))
        await asyncio.sleep(0.05)
        answer = await asyncio.get_running_loop().run_in_executor(None, server.control, {"model": str(models[1])})
        return answer, await task

    answer, done = asyncio.run(swap_during_load())
    assert answer["model"] == str(models[1]) and answer["load_s"] > 0
    assert [d.status for d in done] == ["served"] * 60
    assert server.spec.model == models[1]


def test_start_up_errors_are_one_message_each(models, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        with pytest.raises(ServingError) as exc:
            ReplicaProcess(ReplicaSpec("cls", models[0], 32, CORES[:1], port=s.getsockname()[1]))
        assert exc.value.stage == "bind" and "cannot listen" in str(exc.value)
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(ServingError) as exc:
        ReplicaProcess(ReplicaSpec("cls", bad, 32, CORES[:1]))
    assert exc.value.stage == "load" and "\n" not in str(exc.value)
    with pytest.raises(ServingError) as exc:
        CoreAllocator(CORES).allocate(len(CORES) + 1)
    assert exc.value.stage == "cores"


def test_cores_are_disjoint_while_they_last():
    alloc = CoreAllocator([0, 1])
    assert alloc.allocate(1) == ((0,), False)
    assert alloc.allocate(1) == ((1,), False)
    assert alloc.allocate(1)[1] is True and alloc.oversubscribed
    alloc.release([0])
    alloc.release([0])
    assert alloc.allocate(2) == ((0, 1), True)


def test_sigterm_drains_and_ends_the_server(models):
    rep = ReplicaProcess(ReplicaSpec("cls", models[0], 32, CORES[:1]))
    rep.stop(timeout_s=10)
    assert rep.proc.returncode == 0


def test_the_driver_core_is_given_to_replicas_last_and_counts_as_shared():
    alloc = CoreAllocator([0, 1, 2], driver=[2])
    assert alloc.allocate(1) == ((0,), False) and alloc.allocate(1) == ((1,), False)
    assert alloc.replica_counts() == {0: 1, 1: 1, 2: 0} and not alloc.oversubscribed
    assert alloc.allocate(1) == ((0,), True) and alloc.oversubscribed  # as busy as the driver's: its core last
    assert alloc.allocate(1) == ((1,), True) and alloc.allocate(1) == ((2,), True)
    alloc.release([2])
    alloc.release([2])  # never below the driver's own use
    assert alloc.replica_counts() == {0: 2, 1: 2, 2: 0} and alloc.used[2] == 1
