"""The Prometheus client and the request-rate reader against a real Prometheus server.

The server is Debian's ``prometheus`` binary on 127.0.0.1 scraping a small exporter every
half second; the exporter's request counter grows at exactly 20 and 10 requests per second,
and each sample carries the time its value was computed.

What ``rate()`` returns still depends on when the scrapes ran (it extrapolates to its window's
edges only as far as the samples' spacing allows, so a scrape that a busy machine delayed makes
it read low). The reader's rates are therefore compared with Prometheus's own answer to the same
query over the same times, read without ipa-ext's client, for a window that ended 2 s ago so
that no scrape of it is still on its way; and they may never exceed the true rate.
"""

from __future__ import annotations

import http.server
import math
import socket
import threading
import time

import pytest

from support.prom_server import Counter, Exporter, PrometheusServer, closed_port_url

from ipa_ext.errors import ConfigError, TransientError
from ipa_ext.monitoring.prometheus import (DEFAULT_RATE_QUERY, PrometheusAPI, PrometheusUnavailable, PromQLError,
                                RateReader)

pytestmark = pytest.mark.slow  # a real Prometheus that must collect samples first

ROUTER = {"container": "router", "namespace": "default"}
SETTLED_S = 2.0
"""Reads end this long ago: every scrape of the window has landed (scrapes run every 0.5 s)."""


@pytest.fixture(scope="module")
def prom(tmp_path_factory):
    main = Exporter(counters=[Counter("input_requests", {}, 20.0, kind="histogram_count")],
                    gauges=[("ratio_of_nothing", {}, math.nan)], timestamps=True)
    second = Exporter(counters=[Counter("input_requests", {}, 10.0, kind="histogram_count")], timestamps=True)
    with main, second:
        targets = {"router": [(main.target, {**ROUTER, "pod": "router-0"}),
                              (second.target, {**ROUTER, "pod": "router-1"})]}
        with PrometheusServer(tmp_path_factory.mktemp("prom"), targets, scrape_interval_s=0.5) as server:
            # Wait until rate() over 2 s has points for both targets, then until the series
            # are older than a read window plus the rate range plus the settling lag.
            server.wait_for('count(rate(input_requests_count[2s]))', lambda r: r and r[0]["value"][1] == "2")
            time.sleep(3.5 + SETTLED_S)
            yield server


def settled_read(prom, query: str, seconds: float = 2):
    """The reader's window ending ``SETTLED_S`` ago, and Prometheus's own ``{time: value}`` for
    the same range (summed over its series)."""
    end = time.time() - SETTLED_S
    window = RateReader(PrometheusAPI(prom.url), query, clock=lambda: end).read(seconds)
    theirs: dict[float, float] = {}
    for series in prom.query_range(query, end - seconds, end, 1.0):
        for t, v in series["values"]:
            theirs[float(t)] = theirs.get(float(t), 0.0) + float(v)
    return window, theirs


def assert_matches_prometheus(window, theirs, true_rps: float):
    assert dict(zip(window.timestamps_s, window.rates_rps)) == pytest.approx(theirs, rel=1e-12)
    assert all(0 < r <= true_rps * (1 + 1e-9) for r in window.rates_rps)  # rate() never over-reads


def test_reads_the_routers_rate_through_promql(prom):
    window, theirs = settled_read(prom, 'sum(rate(input_requests_count{pod="router-0"}[2s]))')
    assert window.series == 1 and not window.problems
    assert 2 <= len(window.rates_rps) <= 3
    assert_matches_prometheus(window, theirs, 20.0)
    assert list(window.timestamps_s) == sorted(window.timestamps_s)
    assert all(b - a == pytest.approx(1.0) for a, b in zip(window.timestamps_s, window.timestamps_s[1:]))


def test_the_default_query_sums_ipas_router_counter(prom):
    window, theirs = settled_read(prom, DEFAULT_RATE_QUERY)
    assert window.rates_rps and window.series == 1
    assert_matches_prometheus(window, theirs, 30.0)


def test_irate_reads_the_exact_slope_however_the_scrapes_ran(prom):
    window = RateReader(PrometheusAPI(prom.url), 'sum(irate(input_requests_count{pod="router-0"}[3s]))').read(2)
    assert window.rates_rps and all(r == pytest.approx(20.0, rel=1e-9) for r in window.rates_rps)


def test_several_series_are_summed_and_said_so(prom):
    window, theirs = settled_read(prom, "rate(input_requests_count[2s])")
    assert window.series == 2
    assert_matches_prometheus(window, theirs, 30.0)
    assert "returned 2 series; summed them" in window.problems[0]


def test_an_empty_result_is_an_empty_window(prom):
    window = RateReader(PrometheusAPI(prom.url), "sum(rate(no_such_counter[2s]))").read(10)
    assert window.empty and window.series == 0 and window.dropped == 0


def test_nan_samples_are_left_out_and_counted(prom):
    window = RateReader(PrometheusAPI(prom.url), "ratio_of_nothing").read(3)
    assert window.empty and window.series == 1 and window.dropped >= 3
    assert "NaN" in window.problems[0]
    mixed = RateReader(PrometheusAPI(prom.url),
                       'sum(rate(input_requests_count{pod="router-0"}[2s])) + sum(ratio_of_nothing)').read(3)
    assert mixed.empty and mixed.dropped >= 3  # NaN poisons the sum: nothing usable, nothing invented


def test_a_promql_syntax_error_is_a_config_error_naming_the_field(prom, tmp_path):
    api = PrometheusAPI(prom.url, config_path=tmp_path / "c.yaml")
    reader = RateReader(api, "sum(rate(input_requests_count[2s])")
    with pytest.raises(PromQLError) as info:
        reader.check()
    assert isinstance(info.value, ConfigError)
    assert info.value.where == "prometheus.rate_query"
    assert "parse error" in str(info.value) and "sum(rate(input_requests_count[2s])" in str(info.value)
    with pytest.raises(PromQLError):
        reader.read(5)


def test_prometheus_down_is_transient():
    reader = RateReader(PrometheusAPI(closed_port_url(), timeout_s=2))
    with pytest.raises(PrometheusUnavailable) as info:
        reader.read(10)
    assert isinstance(info.value, TransientError) and "unreachable" in str(info.value)
    with pytest.raises(PrometheusUnavailable):
        reader.check()


class _Failing(http.server.BaseHTTPRequestHandler):
    def do_POST(self):  # noqa: N802 - http.server's naming
        body = b'{"status":"error","errorType":"unavailable","error":"TSDB not ready"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_a_failing_server_is_transient_and_says_why():
    server = http.server.HTTPServer(("127.0.0.1", 0), _Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        api = PrometheusAPI(f"http://127.0.0.1:{server.server_port}")
        with pytest.raises(PrometheusUnavailable, match=r"503 .*unavailable: TSDB not ready"):
            RateReader(api).read(5)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_a_server_that_never_answers_times_out():
    with socket.socket() as s:  # listens, never accepts
        s.bind(("127.0.0.1", 0))
        s.listen(1)
        api = PrometheusAPI(f"http://127.0.0.1:{s.getsockname()[1]}", timeout_s=0.5)
        t0 = time.monotonic()
        with pytest.raises(PrometheusUnavailable):
            api.query("up")
        assert time.monotonic() - t0 < 5


def test_config_mistakes_are_caught_before_any_request(tmp_path):
    with pytest.raises(ConfigError, match="not an http"):
        PrometheusAPI("prometheus:9090", config_path=tmp_path / "c.yaml")
    api = PrometheusAPI(closed_port_url())
    with pytest.raises(ConfigError, match="PromQL expression"):
        RateReader(api, "  ")
    with pytest.raises(ConfigError, match="11000 points"):
        api.query_range("up", 0, 20000, 1)


# --------------------------------------------------------------------------- the config section


def test_settings_build_a_reader_with_a_bearer_token(tmp_path):
    seen = {}

    class Echo(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            seen["auth"] = self.headers.get("Authorization")
            seen["body"] = self.rfile.read(int(self.headers["Content-Length"])).decode()
            body = b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"4"],[2,"5"]]}]}}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        (tmp_path / "token").write_text("s3cret\n")
        from ipa_ext.monitoring.prometheus import parse_prometheus_settings

        s = parse_prometheus_settings({"url": f"http://127.0.0.1:{server.server_port}/", "step_s": 2,
                                       "bearer_token_file": "token", "rate_query": "sum(x)"},
                                      path=tmp_path / "config.yaml")
        window = s.rate_reader(clock=lambda: 100.0).read(10)
        assert window.rates_rps == (4.0, 5.0)
        assert seen["auth"] == "Bearer s3cret"
        assert "query=sum%28x%29" in seen["body"] and "step=2" in seen["body"] and "start=90.000" in seen["body"]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.mark.parametrize("section, where, needle", [
    (None, "prometheus", "missing"),
    ({}, "prometheus.url", "missing"),
    ({"url": "localhost:9090"}, "prometheus.url", "not an http"),
    ({"url": "http://p:9090", "query": "x"}, "prometheus.query", "unknown key"),
    ({"url": "http://p:9090", "rate_query": ""}, "prometheus.rate_query", "PromQL"),
    ({"url": "http://p:9090", "step_s": 0}, "prometheus.step_s", "> 0"),
    ({"url": "http://p:9090", "timeout_s": "5s"}, "prometheus.timeout_s", "expected a number, got '5s'"),
])
def test_bad_prometheus_settings_name_the_field(tmp_path, section, where, needle):
    from ipa_ext.monitoring.prometheus import parse_prometheus_settings

    with pytest.raises(ConfigError) as info:
        parse_prometheus_settings(section, path=tmp_path / "c.yaml")
    assert info.value.where == where and needle in str(info.value)
