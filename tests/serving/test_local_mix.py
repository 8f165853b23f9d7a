"""Mixes and ensembles on real replica servers (tiny two-class zoo models): a 3:1 mix serves within one
request of its shares, an ensemble's every member answers every request and the stage answers with their
majority, and ``ipa-ext adapt`` moves a stage from plain to a mix, to an ensemble and back under load with
no failed request and no process left behind."""

from __future__ import annotations

import asyncio
import collections
import http.client
import json
import os
import re
from pathlib import Path

import pytest

from support.serve_extra import require_serve

pytestmark = pytest.mark.slow  # real model servers, real requests in real time

require_serve()

from ipa_ext.cli import main  # noqa: E402
from ipa_ext.inference.cache import zoo_model  # noqa: E402
from ipa_ext.model import StageConfig  # noqa: E402
from ipa_ext.problem.mix import StageEnsemble, StageMix  # noqa: E402
from ipa_ext.serving.pipeline import LocalPipeline  # noqa: E402
from ipa_ext.serving.routes import class_of  # noqa: E402
from ipa_ext.serving.stage import VariantModel  # noqa: E402
from ipa_ext.serving.v2 import decode_outputs, split_body  # noqa: E402

from support.local_project import alive, replica_children  # noqa: E402

SCRIPTED = Path(__file__).resolve().parents[1] / "support" / "scripted_optimizer.py"
# Two classes, so three members always have a majority; on the router's fixed input r18s answers class 0 and
# r34 and r18 answer class 1 (checked below by asking each replica directly).
ZOO = {"r18": ("resnet18", 0.25), "r34": ("resnet34", 0.125), "r18s": ("resnet18", 0.125)}
ACCURACY = {"r18": 70, "r34": 73, "r18s": 60}


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


def one(variant: str) -> StageConfig:
    return StageConfig(variant, 1, 1, 1)


def replica_ports(pipe: LocalPipeline) -> dict[str, int]:
    return {g.variant: g.replicas[0].port for g in pipe.stages["cls"].groups}


def successes(port: int) -> float:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    return float(re.search(r'model_infer_request_success_total\{model="cls"\} (\S+)', text).group(1))


def answer_of(port: int, pipe: LocalPipeline) -> int:
    """The class one replica answers to the router's input for it (asked directly, not through the router)."""
    ep = next(e for e in pipe.router.endpoints["cls"] if e.port == port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("POST", "/v2/models/cls/infer", ep.body, ep.headers)
        resp = conn.getresponse()
        body, headers = resp.read(), {k.lower(): v for k, v in resp.getheaders()}
    finally:
        conn.close()
    return class_of(decode_outputs(*split_body(body, headers)))


@pytest.fixture()
def pipe(cache):
    models = {}
    for v, (name, width) in ZOO.items():
        m = zoo_model(name, {"input_size": 32, "width": width, "num_classes": 2}, cache_dir=cache)
        models[v] = VariantModel(m.path, 32, "resnet@32")
    p = LocalPipeline(["cls"], {"cls": models}, {}, drop_limit_s=30, max_batch_time_s=0.0,
                      usable_cores=sorted(os.sched_getaffinity(0)))
    try:
        yield p
    finally:
        p.close()
        assert replica_children() == []


def burst(pipe: LocalPipeline, n: int) -> list:
    async def go():
        return await asyncio.gather(*(pipe.router.route() for _ in range(n)))

    return pipe.loop.call(go())


def test_a_mix_at_3_to_1_serves_within_one_request_of_its_shares(pipe):
    pipe.start({"cls": one("r18")})
    pipe.apply("cls", StageMix.of([(one("r18"), 3), (one("r34"), 1)]))
    pipe.router.take_counts()
    ports = replica_ports(pipe)
    before = {v: successes(p) for v, p in ports.items()}
    done = burst(pipe, 41)
    served, _ = pipe.router.take_counts()
    assert [d.status for d in done] == ["served"] * 41
    assert abs(served["cls"]["r18"] - 41 * 0.75) <= 1 and abs(served["cls"]["r34"] - 41 * 0.25) <= 1
    assert sum(served["cls"].values()) == 41
    own = {v: successes(p) - before[v] for v, p in ports.items()}  # the servers' own counters agree
    assert own == {v: float(n) for v, n in served["cls"].items()}


def test_an_ensemble_asks_every_member_and_answers_their_majority(pipe):
    pipe.start({"cls": one("r34")})
    report = pipe.apply("cls", StageEnsemble.of([one("r18s"), one("r34"), one("r18")]))
    assert report["kind"] == "ensemble" and set(report["parts"]) == {"r18s", "r34", "r18"}
    ports = replica_ports(pipe)
    direct = {v: answer_of(p, pipe) for v, p in ports.items()}
    expected, votes = collections.Counter(direct.values()).most_common(1)[0]
    assert direct["r18s"] != expected  # on this input the first member is outvoted: the vote decides
    pipe.router.take_counts()
    before = {v: successes(p) for v, p in ports.items()}
    done = burst(pipe, 12)
    served, tally = pipe.router.take_counts()
    assert [d.status for d in done] == ["served"] * 12
    assert all((d.votes["cls"].answer, d.votes["cls"].votes, d.votes["cls"].members) == (expected, votes, 3)
               for d in done)
    assert served == {"cls": {"r18s": 12, "r34": 12, "r18": 12}} and tally == {"cls": {"outvoted": 12}}
    assert {v: successes(p) - before[v] for v, p in ports.items()} == {v: 12.0 for v in ports}


PIPELINE = "name: one\nstages:\n  - name: cls\n    input_size: 32\n    variants:\n" + "".join(
    f"      - {{name: {v}, accuracy: {ACCURACY[v]}, zoo: {z}, width: {w}, num_classes: 2}}\n"
    for v, (z, w) in ZOO.items())
PROFILES = "stage,variant,cpu,batch,latency_s,throughput_rps\n" + "".join(
    f"cls,{v},1,1,0.05,20\n" for v in ZOO)
CONFIG = """\
pipeline: pipeline.yaml
profiles: profiles.csv
sla_s: 2
accuracy_method: sum
normalize_accuracy: false
initial:
  cls: {{variant: r18, cpu: 1, batch: 1, replicas: 1}}
optimizer:
  name: scripted
  options:
    steps:
      - {{cls: {{mix: [[{r18}, 3], [{r34}, 1]]}}}}
      - {{cls: {{ensemble: [{r18s}, {r34}, {r18}]}}}}
      - {{cls: {r18}}}
plugins: {{load: [{plugin}]}}
adaptation: {{interval_s: 3}}
predictor: {{name: max, backup: max, backup_duration_s: 0, monitoring_duration_s: 3}}
backend: local
local: {{max_batch_wait_s: 0, model_cache: {cache}, spread: uniform}}
workload: {{type: twitter, trace: trace.txt}}
"""


def test_adapt_moves_a_stage_to_a_mix_an_ensemble_and_back_without_failures(tmp_path, cache, capsys):
    sc = {v: f"{{variant: {v}, cpu: 1, batch: 1, replicas: 1}}" for v in ZOO}
    (tmp_path / "pipeline.yaml").write_text(PIPELINE)
    (tmp_path / "profiles.csv").write_text(PROFILES)
    (tmp_path / "trace.txt").write_text(" ".join(["4"] * 12) + "\n")
    (tmp_path / "config.yaml").write_text(CONFIG.format(plugin=SCRIPTED, cache=cache, **sc))
    out = tmp_path / "out"
    code = main(["adapt", str(tmp_path / "config.yaml"), "--out", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code == 0 and "Traceback" not in err, err
    lines = [json.loads(x) for x in (out / "adaptation.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())

    # every request served, none failed or dropped, through every change
    req = summary["requests"]
    assert req["arrived"] == 48 and req["served"] == 48 and req["dropped"] == 0
    assert all(x["backend"]["failed"] == 0 for x in lines)
    assert [x["change_successful"] for x in lines[1:4]] == [[True]] * 3

    # what ran: the mix's new group started, the ensemble's third member started, both left at the end
    changes = [x["backend"]["reconfiguration"]["cls"] for x in lines[1:4]]
    assert changes[0]["kind"] == "mix" and changes[0]["parts"]["r34"]["start_s"] > 0
    assert changes[1]["kind"] == "ensemble" and changes[1]["parts"]["r18s"]["start_s"] > 0
    assert changes[2]["kind"] == "mix" and set(changes[2]["removed"]) == {"r34", "r18s"}

    # who served: r18 alone, then r18 and r34 (about 3:1), then all three members, then r18 again
    by = [x["backend"]["served_by_variant"].get("cls", {}) for x in lines]
    assert set(by[0]) == {"r18"} and set(by[1]) == {"r18", "r34"} and by[1]["r18"] > by[1]["r34"]
    assert set(by[2]) == {"r18", "r34", "r18s"}
    # the last interval counts an ensemble request still in flight at its start at most
    assert by[3]["r18"] >= 10 and all(n <= 2 for v, n in by[3].items() if v != "r18")
    assert "ensemble_votes" in lines[2]["backend"] and "ensemble_votes" not in lines[1]["backend"]
    mixed = (by[1]["r18"] * ACCURACY["r18"] + by[1]["r34"] * ACCURACY["r34"]) / sum(by[1].values())
    assert lines[1]["accuracy"]["pct"] == pytest.approx(mixed)  # served-request weighted
    a, b, c = (ACCURACY[v] / 100 for v in ("r18s", "r34", "r18"))  # the ensemble: two of three right
    assert lines[2]["accuracy"]["pct"] == pytest.approx(100 * (a * b + a * c + b * c - 2 * a * b * c))
    totals = summary["backend_report"]["served_by_variant"]["cls"]
    assert totals == {v: sum(b.get(v, 0) for b in by) for v in totals}

    # nothing left behind
    pids = {p for x in lines for p in x["backend"]["server_pids"]}
    assert len(pids) == 3 and not any(alive(p) for p in pids)
    assert replica_children() == []
