"""The ``rapl`` energy source: Linux powercap sysfs (``intel-rapl:*``, ``amd-rapl:*``).

Reads ``energy_uj`` of every RAPL zone and subzone (package, core, uncore,
dram, psys) on every socket, unwraps it with ``max_energy_range_uj`` and keeps
a background poller running faster than the shortest wrap time, so several
wraps between two ``read()`` calls are still counted. Domains carry their
containment parent (psys ⊇ package ⊇ core/uncore) so totals never sum
overlapping zones. DRAM is not inside the package counter, so its parent is
psys where there is one. The sysfs root is a parameter, so tests use a fake tree.
"""

from __future__ import annotations

import errno
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ipa_ext import hookimpl
from ipa_ext.config.numeric import MODEL_LIMIT, option
from ipa_ext.energy.counters import DEFAULT_MAX_POWER_W, Counter
from ipa_ext.energy.hostinfo import is_virtual_machine
from ipa_ext.energy.source import Domain, EnergySource, ProbeResult, Reading, Status
from ipa_ext.units import MICROJOULES_PER_JOULE

DEFAULT_ROOT = "/sys/class/powercap"
ZONE_RE = re.compile(r"^(intel-rapl|amd-rapl):(\d+)(?::(\d+))?$")
"""Top-level zones ``intel-rapl:N`` and subzones ``intel-rapl:N:M``.
``intel-rapl-mmio:*`` is a second interface to the same package counters and is
skipped: summing it with ``intel-rapl:*`` would count the package twice."""

MIN_POLL_S = 0.01
MAX_POLL_S = 60.0


@dataclass(frozen=True)
class Zone:
    """One powercap zone and the domain it maps to."""

    path: Path
    domain: Domain
    range_j: float | None


def grant_hint(root: str | Path) -> str:
    return (f"energy_uj is root-only since CVE-2020-8694: run as root, or grant read access, "
            f"e.g. 'sudo chmod o+r {root}/intel-rapl:*/energy_uj' (until reboot) or a udev rule "
            f"that sets the mode on every boot")


def _read_text(path: Path) -> str:
    with open(path, "rb") as fh:
        return fh.read().decode("ascii", "replace").strip()


class RaplSource(EnergySource):
    """RAPL zones from powercap sysfs as cumulative joules per domain."""

    name = "rapl"
    quality = "measured"
    auto_rank = 30  # before perf: the same counters, read directly, without a child process
    resolution_s = 0.001  # RAPL counters update about every millisecond

    def __init__(self, sysfs_root: str = DEFAULT_ROOT, max_power_w: float = DEFAULT_MAX_POWER_W,
                 poll: bool = True, poll_interval_s: float | None = None,
                 cpuinfo: str = "/proc/cpuinfo", clock: Callable[[], float] = time.monotonic) -> None:
        self.root = Path(sysfs_root)
        self.clock = clock
        """Monotonic seconds for reading timestamps (a parameter so tests can step time)."""
        self.max_power_w = option("max_power_w", max_power_w, positive=True, maximum=MODEL_LIMIT)
        self.poll = bool(poll)
        self._poll_interval_s = (None if poll_interval_s is None
                                 else option("poll_interval_s", poll_interval_s, positive=True, maximum=3600))
        self.cpuinfo = cpuinfo
        self._zones: list[Zone] | None = None
        self._counters: dict[str, Counter] = {}
        self._lock = threading.Lock()
        self._poller: threading.Thread | None = None
        self._stop = threading.Event()
        self.polls = 0
        """How many times the background poller has read the counters."""

    # ------------------------------------------------------------------ discovery
    def _discover(self) -> list[Zone]:
        if not self.root.is_dir():
            return []
        entries: dict[str, tuple[str, int, int | None, Path]] = {}
        for p in sorted(self.root.iterdir()):
            m = ZONE_RE.match(p.name)
            if m and p.is_dir():
                entries[p.name] = (m.group(1), int(m.group(2)), int(m.group(3)) if m.group(3) else None, p)
        names: dict[str, str] = {}
        for key, (_, _, _, p) in entries.items():
            try:
                names[key] = _read_text(p / "name")
            except OSError:
                names[key] = key
        # top-level zones first: packages give sockets, psys gives the platform
        sockets: dict[str, str] = {}
        psys_ids: dict[str, str] = {}
        for key, (prefix, top, sub, _) in entries.items():
            if sub is not None:
                continue
            nm = names[key]
            m = re.match(r"^package-(\d+)(?:-die-(\d+))?", nm)
            if m:
                sockets[key] = m.group(1) + (f"-die{m.group(2)}" if m.group(2) else "")
            elif nm.startswith("psys"):
                psys_ids[key] = "psys" if not psys_ids else f"psys{len(psys_ids)}"
        platform = next(iter(psys_ids.values()), None)
        zones: list[Zone] = []
        seen: set[str] = set()
        for key, (prefix, top, sub, p) in entries.items():
            nm = names[key]
            if sub is None:
                if key in psys_ids:
                    dom = Domain(psys_ids[key], "psys", None)
                elif key in sockets:
                    dom = Domain(f"cpu{sockets[key]}/package", "package", platform)
                else:
                    dom = Domain(_safe(nm), _safe(nm), platform)
            else:
                parent_key = f"{prefix}:{top}"
                sock = sockets.get(parent_key, str(top))
                kind = _safe(nm)
                if kind == "dram":
                    parent = platform  # DRAM is not part of the package counter
                elif parent_key in sockets:
                    parent = f"cpu{sock}/package"
                else:
                    parent = platform
                dom = Domain(f"cpu{sock}/{kind}", kind, parent)
            if dom.id in seen:
                continue  # the same zone through a second driver (intel-rapl and amd-rapl)
            seen.add(dom.id)
            try:
                range_j = int(_read_text(p / "max_energy_range_uj")) / MICROJOULES_PER_JOULE
            except (OSError, ValueError):
                range_j = None
            zones.append(Zone(p, dom, range_j))
        zones.sort(key=lambda z: z.domain.id)
        return zones

    def _zones_now(self) -> list[Zone]:
        if self._zones is None:
            self._zones = self._discover()
            now = self.clock()
            self._counters = {z.domain.id: Counter(now, z.range_j, self.max_power_w) for z in self._zones}
        return self._zones

    # ------------------------------------------------------------------ interface
    def probe(self) -> ProbeResult:
        try:
            zones = self._discover()
        except OSError as exc:
            return ProbeResult(Status.ABSENT, f"cannot list {self.root}: {exc.strerror or exc}",
                               "check that the powercap sysfs is mounted")
        if not zones:
            where = f"no intel-rapl or amd-rapl zones under {self.root}"
            if str(self.root) != DEFAULT_ROOT and not self.root.is_dir():
                return ProbeResult(Status.ABSENT, f"{where}: it is not a folder",
                                   "check the sysfs_root option (default /sys/class/powercap)")
            if is_virtual_machine(self.cpuinfo):
                return ProbeResult(Status.VIRTUALISED, f"{where}: this is a virtual machine and its "
                                   "hypervisor does not pass RAPL through",
                                   "measure on the host, or use '--source estimate' (labelled estimated)")
            return ProbeResult(Status.ABSENT, where,
                               "load the RAPL driver ('modprobe intel_rapl_msr'; AMD needs Linux 5.8+)")
        denied = []
        for z in zones:
            try:
                int(_read_text(z.path / "energy_uj"))
            except PermissionError:
                denied.append(z.domain.id)
            except (OSError, ValueError) as exc:
                return ProbeResult(Status.ABSENT, f"cannot read {z.path / 'energy_uj'}: {_why(exc)}",
                                   "check the RAPL driver")
        if denied:
            return ProbeResult(Status.PERMISSION,
                               f"permission denied reading energy_uj of {', '.join(denied)}",
                               grant_hint(self.root))
        ids = ", ".join(z.domain.id for z in zones)
        return ProbeResult(Status.AVAILABLE, f"{len(zones)} zone(s) under {self.root}: {ids}")

    def domains(self) -> list[Domain]:
        return [z.domain for z in self._zones_now()]

    @property
    def poll_interval_s(self) -> float:
        """How often the background poller reads: a quarter of the shortest wrap time."""
        if self._poll_interval_s is not None:
            return float(self._poll_interval_s)
        times = [c.wrap_time_s for c in self._counters.values() if c.wrap_time_s is not None]
        if not times:
            return MAX_POLL_S
        return min(MAX_POLL_S, max(MIN_POLL_S, min(times) / 4.0))

    def _sample(self) -> tuple[float, list[str]]:
        """Read every zone once and feed its counter (caller holds the lock)."""
        gaps: list[str] = []
        for z in self._zones_now():
            c = self._counters[z.domain.id]
            try:
                raw = int(_read_text(z.path / "energy_uj")) / MICROJOULES_PER_JOULE
            except (OSError, ValueError) as exc:
                c.missing(self.clock(), f"{z.path / 'energy_uj'}: {_why(exc)}")
                gaps.append(z.domain.id)
                continue
            if c.update(raw, self.clock()) is not None:
                gaps.append(z.domain.id)
        return self.clock(), gaps

    def poll_once(self) -> None:
        """One poller tick: read every counter so wraps are seen (the poller calls this)."""
        with self._lock:
            self._sample()
            self.polls += 1

    def read(self) -> Reading:
        with self._lock:
            now, gaps = self._sample()
            joules = {k: c.total_j for k, c in self._counters.items()}
            gap_s = {k: g for k, c in self._counters.items() if (g := c.gap_until(now)) > 0}
        if self.poll and self._poller is None and self._counters:
            self._start_poller()
        return Reading(now, joules, "measured", tuple(gaps), gap_s)

    def problems(self) -> dict[str, str]:
        """The last problem per domain (why its latest value was not counted)."""
        with self._lock:
            return {k: c.problem for k, c in self._counters.items() if c.problem}

    def _start_poller(self) -> None:
        def loop() -> None:
            while not self._stop.wait(self.poll_interval_s):
                try:
                    self.poll_once()
                except Exception:  # keep polling; read() reports the failure as a gap
                    pass

        self._poller = threading.Thread(target=loop, name="ipa-ext-rapl-poller", daemon=True)
        self._poller.start()

    def close(self) -> None:
        self._stop.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
            self._poller = None


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip()) or "zone"


def _why(exc: BaseException) -> str:
    if isinstance(exc, OSError):
        return exc.strerror or errno.errorcode.get(exc.errno or 0, str(exc))
    return str(exc)


@hookimpl
def register_energy_sources(register) -> None:
    register("rapl", RaplSource)
