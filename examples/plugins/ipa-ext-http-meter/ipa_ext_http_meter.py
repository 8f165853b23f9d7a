"""An ipa-ext energy source for HTTP power meters and smart PDUs (example plugin).

The device serves ``{"outlets": [{"id": ..., "energy_wh": ..., "power_w": ...}]}``;
``energy_wh`` is cumulative. Each configured outlet becomes a domain
``pdu/outlet<ID>``. Readings are ``measured``; the device's counter resolution
(1 Wh typical) makes short windows meaningless, so ``resolution_s`` says so.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any, Sequence

from ipa_ext import hookimpl
from ipa_ext.energy import Domain, EnergySource, ProbeResult, Reading, Status
from ipa_ext.energy.source import EnergySourceError

__version__ = "0.1.0"


class HttpMeter(EnergySource):
    """Cumulative joules per outlet from an HTTP JSON endpoint."""

    name = "http-meter"
    quality = "measured"

    def __init__(self, url: str = "", outlets: Sequence[str | int] = (), timeout_s: float = 2.0,
                 resolution_s: float = 1.0) -> None:
        if timeout_s <= 0:
            raise ValueError("timeout_s must be > 0")
        self.url = url
        self.outlets = [str(o) for o in outlets]
        self.timeout_s = float(timeout_s)
        self.resolution_s = float(resolution_s)
        self._base: dict[str, float] = {}      # joules added across counter resets
        self._last: dict[str, float] = {}      # last raw joules per outlet
        self._gap_s: dict[str, float] = {}
        self._last_t: float | None = None

    # -- device access --------------------------------------------------------------
    def _fetch(self) -> dict[str, float]:
        if not self.url:
            raise EnergySourceError("http-meter: option 'url' is not set")
        req = urllib.request.Request(self.url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as resp:  # noqa: S310 - configured URL
                body = resp.read()
        except urllib.error.HTTPError as exc:
            raise EnergySourceError(f"http-meter: {self.url} answered HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise EnergySourceError(f"http-meter: cannot reach {self.url}: {reason}") from None
        try:
            data = json.loads(body)
            rows = {str(o["id"]): float(o["energy_wh"]) * 3600.0 for o in data["outlets"]}
        except (ValueError, KeyError, TypeError) as exc:
            raise EnergySourceError(f"http-meter: {self.url} sent an unexpected document ({exc})") from None
        wanted = self.outlets or sorted(rows)
        missing = [o for o in wanted if o not in rows]
        if missing:
            raise EnergySourceError(f"http-meter: outlet(s) {', '.join(missing)} not reported by {self.url}")
        return {o: rows[o] for o in wanted}

    # -- EnergySource -------------------------------------------------------------------
    def probe(self) -> ProbeResult:
        if not self.url:
            return ProbeResult(Status.ABSENT, "no device configured", "set the 'url' option to the meter's JSON endpoint")
        try:
            rows = self._fetch()
        except EnergySourceError as exc:
            status = Status.PERMISSION if " 401" in str(exc) or " 403" in str(exc) else Status.ABSENT
            return ProbeResult(status, str(exc), "check the URL, the network and the device's access settings")
        return ProbeResult(Status.AVAILABLE, f"{len(rows)} outlet(s) at {self.url}")

    def domains(self) -> list[Domain]:
        return [Domain(f"pdu/outlet{o}", "outlet") for o in (self.outlets or sorted(self._fetch()))]

    def read(self) -> Reading:
        now = time.monotonic()
        raw = self._fetch()
        joules: dict[str, float] = {}
        gaps: list[str] = []
        for outlet, j in raw.items():
            dom = f"pdu/outlet{outlet}"
            prev = self._last.get(outlet)
            if prev is not None and j < prev:
                # counter reset: energy since the reset is known, the rest of the interval is not
                self._base[outlet] = self._base.get(outlet, 0.0) + prev
                if self._last_t is not None:
                    self._gap_s[dom] = self._gap_s.get(dom, 0.0) + (now - self._last_t)
                gaps.append(dom)
            self._last[outlet] = j
            joules[dom] = self._base.get(outlet, 0.0) + j
        self._last_t = now
        return Reading(now, joules, "measured", gaps=tuple(gaps), gap_s=dict(self._gap_s))


@hookimpl
def register_energy_sources(register: Any) -> None:
    register("http-meter", HttpMeter)
