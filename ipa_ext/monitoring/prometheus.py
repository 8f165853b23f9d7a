"""A small client of the Prometheus HTTP API, and the pipeline's request-rate reader.

:class:`PrometheusAPI` runs instant and range queries (``/api/v1/query``,
``/api/v1/query_range``) with the standard library's HTTP client. A PromQL syntax error
is a :class:`PromQLError` (a config error: the query is wrong); a server that is down,
slow or failing is :class:`PrometheusUnavailable` (transient: the adapter keeps its
configuration and asks again next interval).

:class:`RateReader` turns a configurable PromQL expression into the per-second request
rates the adapter predicts from. IPA reads its router's request counter,
``rate(input_requests_count{...}[2s])`` sampled every second; the default expression is
the same counter summed over the router's pods.
"""

from __future__ import annotations

import json
import logging
import math
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..config.numeric import NumberError, as_number
from ..errors import ConfigError, TransientError

log = logging.getLogger("ipa_ext.prometheus")

DEFAULT_RATE_QUERY = 'sum(rate(input_requests_count{container="router"}[2s]))'
"""IPA's load signal: the router's request counter, as a per-second rate."""

MAX_POINTS = 11000
"""Prometheus refuses range queries with more points per series than this."""


class PromQLError(ConfigError):
    """Prometheus rejected the expression (``bad_data``): fix the query in the config."""


class PrometheusUnavailable(TransientError):
    """Prometheus could not be reached, timed out or failed; try again later."""

    component = "prometheus"


@dataclass(frozen=True)
class Series:
    """One time series of a query result: its labels and ``(unix_time_s, value)`` points."""

    labels: Mapping[str, str]
    points: tuple[tuple[float, float], ...]


def _value(raw: Any) -> float:
    # Prometheus sends sample values as strings: "1.5", "NaN", "+Inf", "-Inf".
    try:
        return float(raw)
    except (TypeError, ValueError):
        return math.nan


class PrometheusAPI:
    """The HTTP API of one Prometheus server at ``url`` (``http://host:9090``)."""

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 5.0,
        bearer_token_file: str | Path | None = None,
        where: str = "prometheus",
        config_path: Path | None = None,
    ) -> None:
        parsed = urllib.parse.urlparse(url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise ConfigError(f"not an http(s) URL: {url!r}", path=config_path, where=f"{where}.url")
        self.url = url.rstrip("/")
        self.timeout_s = float(timeout_s)
        self.bearer_token_file = Path(bearer_token_file) if bearer_token_file else None
        self.where = where
        self.config_path = config_path

    def _headers(self) -> dict[str, str]:
        headers = {"Accept": "application/json", "User-Agent": "ipa-ext"}
        if self.bearer_token_file is not None:
            try:
                token = self.bearer_token_file.read_text().strip()
            except OSError as exc:
                raise ConfigError(f"cannot read bearer token: {exc}", path=self.config_path,
                                  where=f"{self.where}.bearer_token_file") from None
            headers["Authorization"] = f"Bearer {token}"
        return headers

    def _post(self, path: str, params: Mapping[str, str], query: str, field: str | None) -> Any:
        body = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(
            self.url + path, data=body, method="POST",
            headers={**self._headers(), "Content-Type": "application/x-www-form-urlencoded"},
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:
                payload = resp.read()
        except urllib.error.HTTPError as exc:
            payload = exc.read()
            data = _json(payload)
            err = (data or {}).get("error") if isinstance(data, dict) else None
            etype = (data or {}).get("errorType") if isinstance(data, dict) else None
            if exc.code == 400 and etype == "bad_data":
                raise PromQLError(f"Prometheus rejected the query {query!r}: {err}",
                                  path=self.config_path, where=field or f"{self.where}.query") from None
            if exc.code in (401, 403):
                raise ConfigError(f"Prometheus {self.url} refused access ({exc.code}): {err or exc.reason}",
                                  path=self.config_path, where=f"{self.where}.bearer_token_file") from None
            raise PrometheusUnavailable(
                f"prometheus: {self.url}{path} answered {exc.code} {exc.reason}"
                + (f" ({etype}: {err})" if err else "")) from None
        except (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise PrometheusUnavailable(f"prometheus: {self.url} unreachable: {reason}") from None
        data = _json(payload)
        if not isinstance(data, dict) or data.get("status") != "success":
            raise PrometheusUnavailable(f"prometheus: {self.url}{path} sent an unexpected answer: "
                                        f"{payload[:120]!r}")
        for w in data.get("warnings") or []:
            log.warning("prometheus: warning for %r: %s", query, w)
        return data.get("data") or {}

    def query(self, expr: str, at: float | None = None, *, field: str | None = None) -> list[Series]:
        """An instant query: one point per series (a scalar comes back as one unlabelled series).

        ``field`` names the config field the expression came from, for a syntax error."""
        params = {"query": expr}
        if at is not None:
            params["time"] = f"{at:.3f}"
        data = self._post("/api/v1/query", params, expr, field)
        return _series(data)

    def query_range(self, expr: str, start_s: float, end_s: float, step_s: float, *,
                    field: str | None = None) -> list[Series]:
        """A range query between two unix times, one point per ``step_s``."""
        if step_s <= 0:
            raise ValueError("step_s must be > 0")
        if (end_s - start_s) / step_s > MAX_POINTS:
            raise ConfigError(
                f"a {end_s - start_s:g} s window at a {step_s:g} s step exceeds Prometheus's "
                f"{MAX_POINTS} points per series", path=self.config_path, where=f"{self.where}.step_s")
        params = {"query": expr, "start": f"{start_s:.3f}", "end": f"{end_s:.3f}", "step": f"{step_s:g}"}
        data = self._post("/api/v1/query_range", params, expr, field)
        return _series(data)


def _json(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except (ValueError, TypeError):
        return None


def _series(data: Mapping[str, Any]) -> list[Series]:
    rtype = data.get("resultType")
    result = data.get("result")
    if rtype == "scalar" and isinstance(result, list) and len(result) == 2:
        return [Series({}, ((float(result[0]), _value(result[1])),))]
    out = []
    for item in result or []:
        labels = item.get("metric") or {}
        if "values" in item:
            pts = tuple((float(t), _value(v)) for t, v in item["values"])
        elif "value" in item:
            t, v = item["value"]
            pts = ((float(t), _value(v)),)
        else:
            pts = ()
        out.append(Series(dict(labels), pts))
    return out


# --------------------------------------------------------------------------- the load reader


@dataclass(frozen=True)
class RateWindow:
    """Request rates over a window, oldest first, and what was left out."""

    query: str
    rates_rps: tuple[float, ...]
    timestamps_s: tuple[float, ...]
    series: int
    dropped: int = 0
    """Samples that were NaN, infinite or negative and were left out."""
    problems: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.rates_rps


class RateReader:
    """Per-second request rates of the pipeline from a PromQL expression.

    Several series are summed per timestamp (the expression should aggregate; a warning
    says when it did not). NaN, infinite and negative samples are dropped and counted.
    """

    def __init__(
        self,
        api: PrometheusAPI,
        query: str = DEFAULT_RATE_QUERY,
        *,
        step_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not isinstance(query, str) or not query.strip():
            raise ConfigError("must be a PromQL expression", path=api.config_path,
                              where=f"{api.where}.rate_query")
        self.api = api
        self.query = query
        self.step_s = step_s
        self.clock = clock
        self.field = f"{api.where}.rate_query"

    def check(self) -> None:
        """Run the expression once: a syntax error raises :class:`PromQLError` now, not later."""
        self.api.query(self.query, field=self.field)

    def read(self, duration_s: float) -> RateWindow:
        """The rates over the last ``duration_s`` seconds."""
        end = self.clock()
        start = end - max(duration_s, self.step_s)
        series = self.api.query_range(self.query, start, end, self.step_s, field=self.field)
        problems: list[str] = []
        if len(series) > 1:
            problems.append(f"the rate query returned {len(series)} series; summed them (aggregate with "
                            "sum() to silence this)")
        by_t: dict[float, float] = {}
        dropped = 0
        for s in series:
            for t, v in s.points:
                if not math.isfinite(v) or v < 0:
                    dropped += 1
                    continue
                by_t[t] = by_t.get(t, 0.0) + v
        if dropped:
            problems.append(f"left out {dropped} NaN, infinite or negative sample(s)")
        ts = tuple(sorted(by_t))
        for p in problems:
            log.warning("prometheus: %s", p)
        return RateWindow(self.query, tuple(by_t[t] for t in ts), ts, len(series), dropped, tuple(problems))


# --------------------------------------------------------------------------- the config section

PROMETHEUS_KEYS = {
    "url": "the Prometheus server, e.g. http://prometheus.monitoring:9090 (required)",
    "rate_query": f"PromQL for the pipeline's request rate (default {DEFAULT_RATE_QUERY})",
    "step_s": "resolution of the rate series in seconds (default 1, as IPA samples)",
    "timeout_s": "timeout of one HTTP request (default 5)",
    "bearer_token_file": "file holding a bearer token for Prometheus (optional)",
}


@dataclass(frozen=True)
class PrometheusSettings:
    """The validated ``prometheus:`` config section."""

    url: str
    rate_query: str = DEFAULT_RATE_QUERY
    step_s: float = 1.0
    timeout_s: float = 5.0
    bearer_token_file: Path | None = None
    config_path: Path | None = None

    def api(self) -> PrometheusAPI:
        return PrometheusAPI(self.url, timeout_s=self.timeout_s, bearer_token_file=self.bearer_token_file,
                             config_path=self.config_path)

    def rate_reader(self, clock: Callable[[], float] = time.time) -> RateReader:
        return RateReader(self.api(), self.rate_query, step_s=self.step_s, clock=clock)


def parse_prometheus_settings(section: Mapping[str, Any] | None, *, path: Path | None = None) -> PrometheusSettings:
    """Validate the ``prometheus:`` section; errors name the file and field."""

    def err(where: str, msg: str) -> ConfigError:
        return ConfigError(msg, path=path, where=where)

    if section is None:
        raise err("prometheus", "missing: the kubernetes backend reads load from Prometheus (set prometheus.url)")
    if not isinstance(section, Mapping):
        raise err("prometheus", f"must be a mapping, got {section!r}")
    for k in section:
        if k not in PROMETHEUS_KEYS:
            raise err(f"prometheus.{k}", f"unknown key (known: {', '.join(sorted(PROMETHEUS_KEYS))})")
    url = section.get("url")
    if not isinstance(url, str) or not url.strip():
        raise err("prometheus.url", "missing or not a string")
    query = section.get("rate_query", DEFAULT_RATE_QUERY)
    if not isinstance(query, str) or not query.strip():
        raise err("prometheus.rate_query", "must be a PromQL expression")
    nums = {}
    for key, default in (("step_s", 1.0), ("timeout_s", 5.0)):
        try:
            nums[key] = as_number(section.get(key, default), positive=True)
        except NumberError as exc:
            raise err(f"prometheus.{key}", str(exc)) from None
    token = section.get("bearer_token_file")
    token_path = None
    if token is not None:
        if not isinstance(token, str) or not token:
            raise err("prometheus.bearer_token_file", "must be a path")
        token_path = Path(token).expanduser()
        if not token_path.is_absolute() and path is not None:
            token_path = path.parent / token_path
    settings = PrometheusSettings(url.strip(), query, nums["step_s"], nums["timeout_s"], token_path, path)
    settings.api()  # checks the URL's shape now
    return settings
