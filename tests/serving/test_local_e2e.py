"""End to end: ``ipa-ext adapt`` on the local backend with two stages of tiny zoo models and a step workload.
The loop scales a stage up and switches its variant while real requests flow; none fails, every arrival is
served with a measured latency, and no server process is left behind."""

from __future__ import annotations

import pytest

import csv
import json
import os

from support.serve_extra import require_serve

pytestmark = pytest.mark.slow  # real model servers, real requests in real time

require_serve()

from ipa_ext.cli import main  # noqa: E402

from support.local_project import STEP, alive, replica_children, write_project  # noqa: E402


def test_step_workload_scales_up_and_switches_variant_without_failures(tmp_path, capsys):
    config = write_project(tmp_path, tmp_path / "models")
    out = tmp_path / "out"
    cores = os.sched_getaffinity(0)
    code = main(["adapt", str(config), "--out", str(out)])
    _, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    assert os.sched_getaffinity(0) == cores  # the run pinned this process at most while it ran
    lines = [json.loads(x) for x in (out / "adaptation.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())

    # real requests: everything the load generator sent arrived, and was served with a latency
    req = summary["requests"]
    assert req["arrived"] == sum(STEP) == summary["backend_report"]["load"]["sent"]
    assert req["served"] == req["arrived"] and req["dropped"] == 0
    assert 0 < summary["latency_s"]["p50"] <= summary["latency_s"]["p99"] <= summary["latency_s"]["max"] < 2
    assert sum(x["interval"]["served"] for x in lines) == req["served"]
    assert all(x["backend"]["failed"] == 0 for x in lines)

    # the reconfiguration happened: cls went from r34 x1 to r18 x2, each change timed
    first, last = lines[0]["config"]["cls"], lines[-1]["config"]["cls"]
    assert (first["variant"], first["replicas"]) == ("r34", 1)
    assert (last["variant"], last["replicas"]) == ("r18", 2)
    changes = [x["backend"]["reconfiguration"] for x in lines if "reconfiguration" in x["backend"]]
    assert changes and changes[0]["cls"]["variant_s"] > 0 and changes[0]["cls"]["add_s"] > 0
    assert all(x["change_successful"] == [True, True] for x in lines[1:])  # step 0 runs the initial one

    # seconds.csv: one row per second from the same real requests, with the configuration in force
    with open(out / "seconds.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) >= len(STEP) and [r["time_s"] for r in rows] == [str(i) for i in range(len(rows))]
    assert sum(int(r["arrivals"]) for r in rows) == req["arrived"]
    assert sum(int(r["served"]) for r in rows) == req["served"]
    assert sum(int(r["arrivals"]) for r in rows[:10]) in range(19, 22)  # 2 rps, a request may cross a second
    assert all(int(r["dropped"]) == int(r["failed"]) == int(r["late"]) == 0 for r in rows)
    timed = [r for r in rows if int(r["served"])]
    assert timed and all(0 < float(r["latency_p50_s"]) <= float(r["latency_max_s"]) < 2 for r in timed)
    assert (rows[0]["cls_variant"], rows[0]["cls_replicas"]) == ("r34", "1")
    assert (rows[-1]["cls_variant"], rows[-1]["cls_replicas"]) == ("r18", "2")
    assert float(rows[-1]["cores"]) == 3 and float(rows[0]["accuracy_pct"]) == (40 + 73) / 2

    # energy: estimated over the servers' processes, split per stage, J/request per stage in the log
    energy = summary["energy"]
    assert energy["quality"] == "estimated" and energy["total_j"] > 0
    assert set(energy["stages_j"]) == {"det", "cls"} and all(v > 0 for v in energy["stages_j"].values())
    assert all(set(x["energy"]["stages_j_per_request"]) == {"det", "cls"} for x in lines)

    # the ipa-ext process: on a core of its own when one was spare (two replicas at the start); else it shares
    driver = summary["backend_report"]["driver"]
    if len(cores) > 2:
        assert driver["pinned"] and driver["cores"] == [max(cores)]
        assert all(x["backend"]["cores_used"][str(max(cores))] == 0 for x in lines[:1])
    else:
        assert not driver["pinned"] and driver["shared_cores"] and summary["backend_report"]["oversubscribed"]
        assert "; oversubscribed;" in err and driver["reason"].endswith("none is spare")
        assert all(x["backend"]["driver"]["shares_cores"] and x["backend"]["oversubscribed"] for x in lines)

    # nothing left behind
    pids = {p for x in lines for p in x["backend"]["server_pids"]}
    assert len(pids) >= 3 and not any(alive(p) for p in pids)
    assert replica_children() == []
