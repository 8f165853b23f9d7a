"""The router's ``/metrics`` (``input_requests_count``, as IPA's router exports it) and ``prometheus.url`` on the
local backend: a real Prometheus scrapes the router, and the loop reads its rates with ``rate_query``."""

from __future__ import annotations

import pytest

import asyncio
import json

from support.serve_extra import require_serve

pytestmark = pytest.mark.slow  # real model servers, real requests in real time

require_serve()

from ipa_ext.cli import main  # noqa: E402
from ipa_ext.serving.http import Pool  # noqa: E402
from ipa_ext.serving.router import FRONT_PATH, Router  # noqa: E402

from support.local_project import replica_children, write_project  # noqa: E402
from support.prom_server import PrometheusServer, free_port  # noqa: E402


def test_the_router_counts_arrivals_and_outcomes():
    async def go() -> str:
        router = Router(["a"], drop_limit_s=1.0)  # no replica: every request fails at stage a
        port = await router.start()
        pool = Pool("127.0.0.1", port)
        statuses = [(await pool.request("POST", FRONT_PATH, b"{}")).status for _ in range(3)]
        assert statuses == [503] * 3
        await router.route()
        text = (await pool.request("GET", "/metrics")).body.decode()
        pool.close()
        await asyncio.sleep(0.1)  # the server's side of the connection sees the close
        await router.close()
        return text

    text = asyncio.run(go())
    assert "input_requests_count 4.0" in text
    assert 'pipeline_requests_total{status="failed"} 4.0' in text
    assert "pipeline_request_duration_seconds_count 0.0" in text


def test_prometheus_url_reads_the_routers_counter(tmp_path, capsys):
    port = free_port()
    # the query multiplies the rate by 10: the loop sees 20 rps where 2 arrive, so its decision proves the source
    query = 'sum(rate(input_requests_count{container="router"}[2s])) * 10'
    extra = f", router_port: {port}}}\nprometheus: {{url: URL, rate_query: '{query}'"
    seconds = [2] * 16
    with PrometheusServer(tmp_path / "prom", {"router": [(f"127.0.0.1:{port}", {"container": "router"})]}) as prom:
        config = write_project(tmp_path, tmp_path / "models", seconds=seconds, extra=extra)
        config.write_text(config.read_text().replace("url: URL", f"url: '{prom.url}'"))
        code = main(["adapt", str(config), "--out", str(tmp_path / "out")])
        _, err = capsys.readouterr()
        assert code == 0 and "Traceback" not in err, err
        scraped = prom.query(f'max_over_time(input_requests_count{{container="router"}}[5m])')
    lines = [json.loads(x) for x in (tmp_path / "out" / "adaptation.jsonl").read_text().splitlines()]
    summary = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert summary["requests"]["arrived"] == sum(seconds) == summary["requests"]["served"]
    # Prometheus scraped the router's arrivals counter (its last scrape may precede the last request)
    assert scraped and sum(seconds) - 4 <= float(scraped[0]["value"][1]) <= sum(seconds)
    # the loop read its rates from Prometheus: ten times the real 2 rps (the router's own count is 2 a second)
    later = [x for x in lines[1:] if (x.get("monitored") or {}).get("seconds")]  # once Prometheus has samples
    assert later and all(x["predicted_rps"] >= 10 for x in later), [x.get("monitored") for x in lines]
    assert lines[-1]["config"]["cls"]["variant"] == "r18" and lines[-1]["config"]["cls"]["replicas"] >= 2
    assert replica_children() == []
