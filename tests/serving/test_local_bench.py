"""``ipa-ext bench CONFIG --backend local``: every (workload, policy) cell runs on real model servers in real
time (``--rate-scale``, ``--duration``), and the grid writes the same comparison table as on the simulation."""

from __future__ import annotations

import json

import pytest

from support.serve_extra import require_serve

pytestmark = pytest.mark.slow  # real model servers, real requests in real time

require_serve()

from ipa_ext.cli import main  # noqa: E402

from support.local_project import alive, replica_children, write_project  # noqa: E402

SECONDS = [4] * 20  # scaled by 0.5 and cut at 6 s: 2 requests a second, 12 a cell


def test_bench_runs_every_cell_on_real_servers(tmp_path, capsys):
    config = write_project(tmp_path, tmp_path / "models", seconds=SECONDS)
    out = tmp_path / "bench"
    code = main(["bench", str(config), "--backend", "local", "--policies", "ilp,fa2-low", "--rate-scale", "0.5",
                 "--duration", "6", "--out", str(out), "--no-plots"])
    printed, err = capsys.readouterr()
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    assert results["meta"]["backend"] == "local"
    assert results["meta"]["rate_scale"] == 0.5 and results["meta"]["duration_s"] == 6
    rows = {r["policy"]: r for r in results["results"]}
    assert set(rows) == {"ilp", "fa2-low"}
    assert "| ilp |" in printed and "| fa2-low |" in printed  # the same table as the simulation's

    configs, pids = {}, set()
    for policy, row in rows.items():
        cell = out / "trace_trace.txt_0_20" / policy
        summary = json.loads((cell / "summary.json").read_text())
        lines = [json.loads(x) for x in (cell / "adaptation.jsonl").read_text().splitlines()]
        # real requests: what the load generator sent (rate-scaled, cut at --duration) was served and timed
        sent = summary["backend_report"]["load"]["sent"]
        assert sent == 12 == summary["requests"]["arrived"] == row["served"]
        assert row["status"] == "ok" and row["dropped"] == 0
        assert 0 < row["latency_p99_s"] < 2 and row["energy_quality"] == "estimated" and row["j_per_request"] > 0
        assert row["accuracy_pct"] > 0
        seconds = (cell / "seconds.csv").read_text().splitlines()
        assert len(seconds) - 1 >= 6 and sum(int(x.split(",")[2]) for x in seconds[1:]) == 12  # served
        configs[policy] = lines[-1]["config"]["cls"]["variant"]
        pids |= {p for x in lines for p in x["backend"]["server_pids"]}
    # the policies decided differently: ilp keeps the accurate r34 at 2 rps, fa2-low takes the cheapest variant
    assert configs == {"ilp": "r34", "fa2-low": "r18"}
    assert rows["ilp"]["accuracy_pct"] > rows["fa2-low"]["accuracy_pct"]
    assert pids and not any(alive(p) for p in pids) and replica_children() == []


@pytest.mark.parametrize("argv, message", [
    (["--rate-scale", "0.5"], "--rate-scale: --rate-scale applies to a backend that replays a workload"),
    (["--backend", "local", "--duration", "0"], "--duration: --duration must be > 0"),
    (["--backend", "kubernetes"], "does not replay a workload"),
])
def test_bench_backend_flags_are_checked(tmp_path, capsys, argv, message):
    config = write_project(tmp_path, tmp_path / "models")
    text = config.read_text().replace("backend: local\n", "backend: simulation\n")
    config.write_text(text)
    code = main(["bench", str(config), "--policies", "ilp", "--out", str(tmp_path / "o"), *argv])
    _, err = capsys.readouterr()
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
