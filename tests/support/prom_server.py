"""Real servers for tests: a Prometheus process and a small exporter.

:class:`PrometheusServer` starts Debian's ``prometheus`` binary on 127.0.0.1 with a
temporary config and data dir on a free port, waits until it is ready and stops it (and
only it) on exit, even when the test failed. :class:`Exporter` serves metrics computed at
scrape time from a clock, so a counter's slope is known exactly.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import pytest
import yaml
from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily


def prometheus_binary() -> str:
    """The prometheus binary; skipped where it is not installed, a failure under CI."""
    exe = shutil.which("prometheus") or ("/usr/bin/prometheus" if os.path.exists("/usr/bin/prometheus") else None)
    if exe is None:
        msg = "the prometheus binary is not installed (apt-get install prometheus)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class PrometheusServer:
    """A real Prometheus on 127.0.0.1 scraping ``targets`` ({job: [(host:port, labels)]})."""

    workdir: Path
    targets: Mapping[str, list[tuple[str, Mapping[str, str]]]]
    scrape_interval_s: float = 1.0
    port: int = 0
    proc: subprocess.Popen | None = None
    log_path: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> "PrometheusServer":
        exe = prometheus_binary()
        self.workdir.mkdir(parents=True, exist_ok=True)
        cfg = self.workdir / "prometheus.yml"
        interval = f"{int(self.scrape_interval_s * 1000)}ms"
        cfg.write_text(yaml.safe_dump({
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "scrape_configs": [
                {"job_name": job, "scrape_interval": interval,
                 "static_configs": [{"targets": [t], "labels": dict(labels)} for t, labels in tgts]}
                for job, tgts in self.targets.items()
            ],
        }))
        self.log_path = self.workdir / "prometheus.log"
        for _ in range(3):  # the port is free when chosen; retry if someone took it meanwhile
            self.port = free_port()
            data = self.workdir / f"data-{self.port}"
            with open(self.log_path, "ab") as log:
                self.proc = subprocess.Popen(
                    [exe, f"--config.file={cfg}", f"--storage.tsdb.path={data}",
                     f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn",
                     "--storage.tsdb.retention.time=1h"],
                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                )
            if self._wait_ready(30):
                return self
            self._stop()
        raise RuntimeError(f"prometheus did not start; log: {self.log_path.read_text()[-2000:]}")

    def _wait_ready(self, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                    if r.status == 200:
                        return True
            except OSError:
                pass
            time.sleep(0.2)
        return False

    def _stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __exit__(self, *exc: Any) -> None:
        self._stop()

    def query(self, expr: str) -> list[dict[str, Any]]:
        url = self.url + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        with urllib.request.urlopen(url, timeout=5) as r:
            return json.loads(r.read())["data"]["result"]

    def query_range(self, expr: str, start_s: float, end_s: float, step_s: float) -> list[dict[str, Any]]:
        """Prometheus's own answer to a range query, read without ipa-ext's client."""
        params = {"query": expr, "start": repr(start_s), "end": repr(end_s), "step": repr(step_s)}
        with urllib.request.urlopen(self.url + "/api/v1/query_range?" + urllib.parse.urlencode(params),
                                    timeout=5) as r:
            return json.loads(r.read())["data"]["result"]

    def wait_for(self, expr: str, ok: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 30) -> list:
        deadline = time.monotonic() + timeout_s
        result: list = []
        while time.monotonic() < deadline:
            result = self.query(expr)
            if ok(result):
                return result
            time.sleep(0.25)
        raise AssertionError(f"timed out waiting for {expr!r}; last result {result}")


# ----------------------------------------------------------------------------- the exporter


@dataclass
class Counter:
    """A counter growing at ``per_s`` from ``start`` (a unix time)."""

    name: str
    labels: Mapping[str, str]
    per_s: float
    kind: str = "counter"  # counter | histogram_count
    restarted_at: int | None = None
    """Unix milliseconds, set by :meth:`restart`: the counter counts from zero again from then on."""

    def value(self, start_ms: int, now_ms: int) -> float:
        """The count at ``now_ms`` (unix milliseconds, whole: exact differences)."""
        since = self.restarted_at if self.restarted_at is not None else start_ms
        return self.per_s * (now_ms - since) / 1000

    def restart(self) -> None:
        """Reset to zero now, as a restarted exporter would."""
        self.restarted_at = _now_ms()


def _now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(eq=False)
class Exporter:
    """Serves counters whose values are ``per_s * (now - start)`` at scrape time: each grows
    at exactly ``per_s`` (``timestamps`` says what a query reads back). A histogram's
    ``_count`` (what MLServer's custom metrics, and so IPA's router, expose as
    ``input_requests_count``) is served the same way."""

    counters: list[Counter] = field(default_factory=list)
    gauges: list[tuple[str, Mapping[str, str], float]] = field(default_factory=list)
    start: float = field(default_factory=time.time)
    timestamps: bool = False
    """Stamp every sample with the time its value was computed (to the millisecond), so
    Prometheus stores that time and the slope between any two samples is exactly ``per_s``
    however late a scrape ran. (``rate()`` can still read low: it extrapolates to its window's
    edges only as far as the samples' spacing allows, so delayed scrapes shorten what it
    covers. ``irate()`` is the slope of the last two samples, so it is exact.)"""
    port: int = 0
    _server: Any = None
    _thread: Any = None

    def collect(self) -> Iterable[Any]:
        now_ms = _now_ms()
        # prometheus_client writes int(ts * 1000): the 0.4 ms keeps float rounding off the millisecond below
        ts = now_ms / 1000 + 0.0004 if self.timestamps else None
        start_ms = int(self.start * 1000)
        by_name: dict[tuple[str, str, tuple[str, ...]], Any] = {}
        for c in self.counters:
            keys = tuple(sorted(c.labels))
            fam_key = (c.kind, c.name, keys)
            if fam_key not in by_name:
                if c.kind == "histogram_count":
                    by_name[fam_key] = HistogramMetricFamily(c.name, "test histogram", labels=list(keys))
                else:
                    base = c.name.removesuffix("_total")
                    by_name[fam_key] = CounterMetricFamily(base, "test counter", labels=list(keys))
            fam = by_name[fam_key]
            v = c.value(start_ms, now_ms)
            if c.kind == "histogram_count":
                fam.add_metric([c.labels[k] for k in keys], buckets=[("+Inf", v)], sum_value=v * 0.1,
                               timestamp=ts)
            else:
                fam.add_metric([c.labels[k] for k in keys], v, timestamp=ts)
        yield from by_name.values()
        for name, labels, value in self.gauges:
            g = GaugeMetricFamily(name, "test gauge", labels=sorted(labels))
            g.add_metric([labels[k] for k in sorted(labels)], value)
            yield g

    def __enter__(self) -> "Exporter":
        reg = CollectorRegistry()
        reg.register(self)
        self._server, self._thread = start_http_server(0, addr="127.0.0.1", registry=reg)
        self.port = self._server.server_port
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"
