"""The ``perf`` energy source: the real ``perf stat -a -x, -I <ms> -e power/energy-*`` as a child process.

perf runs system-wide without a shell (an argument list) and prints one CSV
line per event per interval on stderr; a reader thread adds the intervals up
into cumulative joules per domain. ``<not counted>`` and ``<not supported>``
intervals become flagged gaps. ``probe()`` runs perf briefly and tells an
unknown event, a permission problem (``perf_event_paranoid``), unsupported
events and a VM whose power PMU reads 0 J apart, each with a hint.
"""

from __future__ import annotations

import collections
import os
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Sequence

from ipa_ext import hookimpl
from ipa_ext.energy.hostinfo import is_virtual_machine
from ipa_ext.energy.perfstat import PerfRecord, parse_csv_line
from ipa_ext.energy.source import (
    Domain,
    EnergySource,
    EnergySourceError,
    ProbeResult,
    Reading,
    Status,
)
from ipa_ext.config.lists import split_top_level
from ipa_ext.config.numeric import option
from ipa_ext.units import MS_PER_S

PMU_ROOT = "/sys/bus/event_source/devices"
EVENT_DOMAINS: dict[str, tuple[str, str]] = {
    "energy-pkg": ("cpu/package", "package"),
    "energy-ram": ("cpu/dram", "dram"),
    "energy-cores": ("cpu/core", "core"),
    "energy-gpu": ("cpu/igpu", "igpu"),
    "energy-psys": ("psys", "psys"),
}
"""perf's RAPL events (summed over sockets by ``-a``) and the domain each maps to."""
PREFERRED = tuple(EVENT_DOMAINS)
INSTALL_HINT = "install perf (Debian: 'apt-get install linux-perf'; Ubuntu: linux-tools-$(uname -r))"
PARANOID_HINT = ("system-wide energy events need root or CAP_PERFMON, or "
                 "'sudo sysctl -w kernel.perf_event_paranoid=0'")
_UNKNOWN = ("unknown term", "event syntax error", "Cannot find PMU", "not found", "parser error",
            "unknown event", "Bad event name")
_REASONS = ("unknown term", "Cannot find PMU", "Bad event", "not found", "unknown event")
"""perf's line that says why an event is unknown (the line after 'event syntax error')."""
_DENIED = ("Access to performance monitoring", "perf_event_paranoid", "Permission denied",
           "No permission", "not permitted")


def event_key(event: str) -> str:
    """An event without perf's modifiers: ``power/energy-pkg/u`` -> ``power/energy-pkg/``."""
    if "/" in event:
        return event[: event.rindex("/") + 1]
    return event.split(":", 1)[0]


def short_name(event: str) -> str:
    """``power/energy-pkg/`` -> ``energy-pkg``; other events unchanged."""
    key = event_key(event)
    if key.startswith("power/") and key.endswith("/"):
        return key[len("power/"):-1]
    return key


def normalise_events(events: str | Sequence[str]) -> list[str]:
    """Event list from a comma-separated string or a list; ``energy-pkg`` means ``power/energy-pkg/``."""
    if isinstance(events, str):
        items = split_top_level(events, toggle="/")  # cpu/event=1,umask=2/ stays whole
    else:
        items = [str(e) for e in events]
    out = []
    for e in items:
        e = e.strip()
        if not e:
            continue
        if "/" not in e and e.startswith("energy-"):
            e = f"power/{e}/"
        out.append(e)
    if not out:
        raise ValueError("events: empty event list")
    return out


def pmu_events(pmu_root: str | Path = PMU_ROOT) -> list[str] | None:
    """Energy events the kernel's ``power`` PMU offers (short names), None when there is no such PMU."""
    d = Path(pmu_root) / "power" / "events"
    if not d.is_dir():
        return None
    names = sorted(p.name for p in d.iterdir() if "." not in p.name)
    return sorted(names, key=lambda n: (PREFERRED.index(n) if n in PREFERRED else len(PREFERRED), n))


def paranoid_level(path: str = "/proc/sys/kernel/perf_event_paranoid") -> int | None:
    try:
        return int(Path(path).read_text().strip())
    except (OSError, ValueError):
        return None


def _domains_for(events: Sequence[str]) -> list[Domain]:
    shorts = [short_name(e) for e in events]
    has_psys = "energy-psys" in shorts
    has_pkg = "energy-pkg" in shorts
    out = []
    for ev, sn in zip(events, shorts):
        if sn in EVENT_DOMAINS:
            did, kind = EVENT_DOMAINS[sn]
            if kind in ("core", "igpu"):
                parent = "cpu/package" if has_pkg else ("psys" if has_psys else None)
            elif kind in ("package", "dram"):
                parent = "psys" if has_psys else None
            else:
                parent = None
            out.append(Domain(did, kind, parent))
        else:
            out.append(Domain(event_key(ev).strip("/").replace("/", ":"), "event", None))
    return out


class PerfSource(EnergySource):
    """Cumulative joules from a long-running ``perf stat -a -x, -I`` child process."""

    name = "perf"
    quality = "measured"
    auto_rank = 20

    def __init__(self, events: str | Sequence[str] | None = None, interval_ms: int = 100,
                 perf: str | Sequence[str] = "perf", pmu_root: str = PMU_ROOT, probe_s: float = 0.3,
                 cpuinfo: str = "/proc/cpuinfo") -> None:
        self._events = normalise_events(events) if events is not None else None
        self.interval_ms = option("interval_ms (perf needs at least 10 ms)", interval_ms, integer=True,
                                  minimum=10, maximum=86_400_000)
        self.resolution_s = self.interval_ms / MS_PER_S
        self.perf = [perf] if isinstance(perf, str) else [str(x) for x in perf]
        """perf's command: ``perf``, a path, or a prefix such as ``["sudo", "-n", "perf"]``."""
        if not self.perf:
            raise ValueError("perf: empty command")
        self.pmu_root = pmu_root
        self.probe_s = option("probe_s", probe_s, minimum=0, maximum=60)
        self.cpuinfo = cpuinfo
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None
        self._first = threading.Event()
        self.messages: collections.deque[str] = collections.deque(maxlen=50)
        self.records: collections.deque[PerfRecord] = collections.deque(maxlen=200)
        self._totals: dict[str, float] = {}
        self._gap_s: dict[str, float] = {}
        self._gaps_since_read: set[str] = set()
        self._pending: dict[float, dict[str, PerfRecord]] = {}
        self._last_t = 0.0
        self._anchor: float | None = None
        self._ts: float | None = None

    # ------------------------------------------------------------------ events and domains
    @property
    def events(self) -> list[str]:
        """The events perf counts: the configured ones, else every ``power/energy-*`` event the PMU offers."""
        if self._events is None:
            offered = pmu_events(self.pmu_root) or []
            self._events = [f"power/{n}/" for n in offered if n.startswith("energy-")]
        return self._events

    def domains(self) -> list[Domain]:
        return _domains_for(self.events)

    def argv(self, duration_s: float | None = None) -> list[str]:
        """perf's argument list (no shell); with ``duration_s`` it counts while ``sleep`` runs."""
        cmd = [*self.perf, "stat", "-a", "-x,", "-I", str(self.interval_ms), "-e", ",".join(self.events)]
        if duration_s is not None:
            cmd += ["--", "sleep", f"{duration_s:g}"]
        return cmd

    # ------------------------------------------------------------------ probe
    def probe(self) -> ProbeResult:
        try:
            return self._probe()
        except Exception as exc:  # probe never raises
            return ProbeResult(Status.ABSENT, f"probe failed: {type(exc).__name__}: {exc}", INSTALL_HINT)

    def _probe(self) -> ProbeResult:
        if shutil.which(self.perf[0]) is None:
            return ProbeResult(Status.ABSENT, f"{self.perf[0]!r} not found on PATH", INSTALL_HINT)
        offered = pmu_events(self.pmu_root)
        if not self.events:
            where = ("the kernel has no 'power' PMU" if offered is None
                     else "the 'power' PMU offers no energy events")
            if is_virtual_machine(self.cpuinfo):
                return ProbeResult(Status.VIRTUALISED, f"{where}: this is a virtual machine",
                                   "measure on the host, or use '--source estimate' (labelled estimated)")
            return ProbeResult(Status.ABSENT, where,
                               "the kernel needs RAPL perf events (CONFIG_PERF_EVENTS_INTEL_RAPL)")
        try:
            proc = subprocess.run(self.argv(self.probe_s), stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                  timeout=self.probe_s + 15, env=_perf_env())
        except subprocess.TimeoutExpired:
            return ProbeResult(Status.ABSENT, "perf did not finish its probe run", INSTALL_HINT)
        except OSError as exc:
            return ProbeResult(Status.ABSENT, f"cannot run {self.perf[0]!r}: {exc.strerror or exc}", INSTALL_HINT)
        records, messages = [], []
        for line in proc.stderr.splitlines():
            try:
                rec = parse_csv_line(line)
            except ValueError:
                rec = None
                if line.strip():
                    messages.append(line.strip())
            if rec is not None:
                records.append(rec)
        return self.diagnose(proc.returncode, messages, records)

    def diagnose(self, returncode: int | None, messages: Sequence[str],
                 records: Sequence[PerfRecord]) -> ProbeResult:
        """What perf's exit code, messages and records say about this source."""
        events = ", ".join(self.events)
        offered = pmu_events(self.pmu_root)
        offers = (f" (the power PMU here offers: {', '.join(offered) or 'none'})" if offered is not None
                  else " (this kernel has no 'power' PMU)")
        text = "\n".join(messages)
        if returncode not in (0, None) and not any(r.value is not None for r in records):
            first = next((m for m in messages if m), f"exit status {returncode}")
            if any(k in text for k in _DENIED):
                why = next(m for m in messages if any(k in m for k in _DENIED))
                return ProbeResult(Status.PERMISSION, f"perf was refused: {why}", PARANOID_HINT)
            if "perf not found for kernel" in text:
                return ProbeResult(Status.ABSENT, first, INSTALL_HINT)
            if any(k in text for k in _UNKNOWN):
                why = next((m.lstrip("\\_ ") for m in messages if any(k in m for k in _REASONS)), first)
                return ProbeResult(Status.ABSENT, f"perf does not know event(s) {events}{offers}: {why}",
                                   "pick events from 'perf list power' with -o events=...")
            return ProbeResult(Status.ABSENT, f"perf failed: {first}", INSTALL_HINT)
        counted = [r for r in records if r.value is not None]
        if not records:
            return ProbeResult(Status.ABSENT, "perf printed no counter lines" + (f": {messages[0]}" if messages else ""),
                               INSTALL_HINT)
        if not counted:
            statuses = sorted({r.status for r in records})
            user_only = any(r.event != event_key(r.event) or r.event.endswith("/u") for r in records)
            lvl = paranoid_level()
            if user_only or (os.geteuid() != 0 and (lvl is None or lvl > 0)):
                seen = sorted({r.event for r in records})
                return ProbeResult(Status.PERMISSION,
                                   f"perf could not count {events} system-wide ({', '.join(seen)}: "
                                   f"<{'>, <'.join(statuses)}>; perf_event_paranoid={lvl})", PARANOID_HINT)
            return ProbeResult(Status.ABSENT, f"perf reports <{'>, <'.join(statuses)}> for {events}{offers}",
                               "this CPU or hypervisor does not expose these RAPL events")
        if all(r.value == 0.0 for r in counted):
            vm = " on a virtual machine" if is_virtual_machine(self.cpuinfo) else ""
            return ProbeResult(Status.VIRTUALISED,
                               f"perf counts {events} but every interval reads 0 J{vm}: the hypervisor "
                               f"does not pass RAPL through{offers}",
                               "measure on the host, or use '--source estimate' (labelled estimated)")
        return ProbeResult(Status.AVAILABLE, f"perf counts {events} every {self.interval_ms} ms")

    # ------------------------------------------------------------------ running
    def _start(self) -> None:
        if not self.events:
            raise EnergySourceError("perf: no energy events to count (the 'power' PMU offers none)")
        try:
            self._proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE, text=True, bufsize=1, env=_perf_env())
        except OSError as exc:
            raise EnergySourceError(f"perf: cannot run {self.perf[0]!r}: {exc.strerror or exc}; {INSTALL_HINT}") from None
        self._reader = threading.Thread(target=self._read_loop, name="ipa-ext-perf-reader", daemon=True)
        self._reader.start()

    def _read_loop(self) -> None:
        proc = self._proc
        assert proc is not None and proc.stderr is not None
        for line in proc.stderr:
            arrival = time.monotonic()
            try:
                rec = parse_csv_line(line)
            except ValueError:
                if line.strip():
                    self.messages.append(line.strip())
                continue
            if rec is None or rec.time_s is None:
                continue
            self.records.append(rec)
            with self._lock:
                if self._anchor is None:
                    self._anchor = arrival - rec.time_s
                self._add(rec)
        self._first.set()

    def _add(self, rec: PerfRecord) -> None:
        keys = [event_key(e) for e in self.events]
        group = self._pending.setdefault(rec.time_s, {})
        group[event_key(rec.event)] = rec
        for t in sorted(self._pending):
            g = self._pending[t]
            if len(g) >= len(keys) or t < rec.time_s:
                self._commit(t, g, keys)
                del self._pending[t]

    def _commit(self, t: float, group: dict[str, PerfRecord], keys: list[str]) -> None:
        dt = max(0.0, t - self._last_t)
        self._last_t = t
        for key, dom in zip(keys, self.domains()):
            rec = group.get(key)
            if rec is not None and rec.value is not None and rec.value >= 0:
                self._totals[dom.id] = self._totals.get(dom.id, 0.0) + rec.value
            else:
                self._totals.setdefault(dom.id, 0.0)
                self._gap_s[dom.id] = self._gap_s.get(dom.id, 0.0) + dt
                self._gaps_since_read.add(dom.id)
        self._ts = (self._anchor or 0.0) + t
        self._first.set()

    def read(self) -> Reading:
        if self._proc is None:
            self._start()
            self._first.wait(self.resolution_s + 10.0)
        proc = self._proc
        assert proc is not None
        with self._lock:
            have = self._ts is not None
        if not have:
            self._fail(proc)
        with self._lock:
            gaps = set(self._gaps_since_read)
            self._gaps_since_read.clear()
            gap_s = dict(self._gap_s)
            ts = self._ts
            assert ts is not None
            if proc.poll() is not None:  # perf died: nothing after its last interval is covered
                now = time.monotonic()
                for k in self._totals:
                    gap_s[k] = gap_s.get(k, 0.0) + max(0.0, now - ts)
                    gaps.add(k)
                ts = now
            return Reading(ts, dict(self._totals), "measured", tuple(sorted(gaps)), gap_s)

    def _fail(self, proc: subprocess.Popen[str]) -> None:
        try:
            proc.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.close()
            raise EnergySourceError(f"perf: no interval output within {self.resolution_s + 10:g} s") from None
        if self._reader is not None:
            self._reader.join(timeout=2)
        res = self.diagnose(proc.returncode, list(self.messages), list(self.records))
        raise EnergySourceError(f"perf: {res.status.value}: {res.detail}" + (f"; {res.hint}" if res.hint else ""))

    def close(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if self._reader is not None:
            self._reader.join(timeout=3)
            self._reader = None


def _perf_env() -> dict[str, str]:
    # C locale: no thousands separators or decimal commas in perf's numbers
    return {**os.environ, "LC_ALL": "C"}


@hookimpl
def register_energy_sources(register) -> None:
    register("perf", PerfSource)
