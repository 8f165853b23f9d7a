"""Reading energy interval logs: ``perf stat -I`` output (human-readable or CSV, plain or gzip) and ipa-ext's own CSV.

A log becomes an :class:`EnergyLog`: interval end times and lengths, and per
event a series of joules per interval (``None`` where the interval has no
value: ``<not counted>``, ``<not supported>``, a missing row). Corrupt lines
are errors naming the file and line; a last line cut short (a truncated file)
is dropped with a warning, never guessed at.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from ..config.show import listed, shown
from ..errors import InputError
from .perfstat import PerfRecord, detect_format, parse_line
from .source import Domain

IPA_EXT_COLUMNS = ("time_s", "interval_s", "source", "event", "domain", "parent",
                   "energy_j", "power_w", "quality", "gap_s")
"""Columns of ipa-ext's per-interval CSV (written by ``energy measure --csv`` and ``energy report --csv``)."""

PERF_DOMAINS = {
    "energy-pkg": Domain("cpu/package", "package", None),
    "energy-ram": Domain("cpu/dram", "dram", None),
    "energy-cores": Domain("cpu/core", "core", "cpu/package"),
    "energy-gpu": Domain("cpu/igpu", "igpu", "cpu/package"),
    "energy-psys": Domain("psys", "psys", None),
}


@dataclass
class Series:
    """One event's joules per interval."""

    event: str
    domain: Domain
    source: str
    quality: str
    energy_j: list[float | None] = field(default_factory=list)


@dataclass
class EnergyLog:
    """An interval log: the intervals and one :class:`Series` per event."""

    path: str
    format: str
    times_s: list[float]
    """End of each interval, seconds since the log started."""
    durations_s: list[float]
    series: list[Series]
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False


def _perf_domain(event: str, present: set[str]) -> Domain:
    key = event[: event.rindex("/") + 1] if "/" in event else event
    short = key[len("power/"):-1] if key.startswith("power/") and key.endswith("/") else key
    d = PERF_DOMAINS.get(short)
    if d is None:
        return Domain(key.strip("/").replace("/", ":"), "event", None)
    parent = d.parent
    if d.kind in ("package", "dram") and "energy-psys" in present:
        parent = "psys"
    if parent == "cpu/package" and "energy-pkg" not in present:
        parent = "psys" if "energy-psys" in present else None
    return Domain(d.id, d.kind, parent)


def _open_lines(path: Path) -> tuple[Iterator[tuple[int, str, bool]], list[str]]:
    """(line number, text, complete) for each line; gzip detected by its magic bytes.

    A truncated gzip stream ends the iteration early and adds a warning.
    """
    warnings: list[str] = []
    try:
        with open(path, "rb") as fh:
            magic = fh.read(2)
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None

    def gen() -> Iterator[tuple[int, str, bool]]:
        raw = gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")
        n = 0
        try:
            with raw as fh:
                while True:
                    try:
                        b = fh.readline()
                    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                        warnings.append(f"compressed stream is damaged or truncated after line {n} ({exc}); "
                                        "the rest is missing")
                        return
                    if not b:
                        return
                    n += 1
                    try:
                        text = b.decode("utf-8")
                    except UnicodeDecodeError:
                        raise InputError("not a text log (undecodable bytes)", path=path, where=f"line {n}") from None
                    yield n, text, text.endswith("\n")
        except OSError as exc:
            raise InputError(f"cannot read: {exc.strerror or exc}", path=path) from None

    return gen(), warnings


def _first_content(path: Path) -> str:
    lines, _ = _open_lines(path)
    for _, text, _ in lines:
        if text.strip():
            return text
    return ""


def load_log(path: str | Path) -> EnergyLog:
    """Read a perf interval log or an ipa-ext interval CSV."""
    p = Path(path)
    try:
        if not p.is_file():
            raise InputError("no such file", path=p)
    except OSError as exc:  # a name too long, a path through a file, ...
        raise InputError(f"cannot read: {exc.strerror or exc}", path=p) from None
    first = _first_content(p)
    if first.lstrip().startswith("time_s,interval_s,"):
        return _load_ipa_ext_csv(p)
    return _load_perf(p)


def _load_perf(p: Path) -> EnergyLog:
    lines, gz_warnings = _open_lines(p)
    reader = _PerfReader(p)
    for n, text, complete in lines:
        reader.line(n, text, complete)
    reader.finish(gz_warnings)
    return reader.log()


@dataclass
class _PerfReader:
    """A perf stat interval log read line by line: interval groups of joules per event, with
    warnings for a truncated end, and the first bad line held until it proves not to be the last."""

    path: Path
    fmt: str | None = None
    groups: list[tuple[float, dict[str, float | None]]] = field(default_factory=list)
    events: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    truncated: bool = False
    pending_error: InputError | None = None
    skipped_units: set[str] = field(default_factory=set)

    def cut(self, n: int) -> None:
        self.truncated = True
        self.warnings.append(f"line {n} is cut short (truncated file); it was dropped")

    def line(self, n: int, text: str, complete: bool) -> None:
        if self.pending_error is not None:
            raise self.pending_error  # a bad line that was not the last one
        f = self.fmt or detect_format(text)
        if f is None:
            return
        try:
            rec = parse_line(text, f)
        except ValueError as exc:
            if not complete:
                self.cut(n)
                return
            line = text.strip()
            line = line if len(line) <= 60 else line[:57] + "..."
            self.pending_error = InputError(f"not a perf stat line ({exc}): {line!r}", path=self.path,
                                            where=f"line {n}")
            return
        if rec is None:
            return
        if not complete and (rec.time_s is None or (self.events and rec.event not in self.events)):
            # the last line, cut inside its event name or before it: do not invent an event
            self.cut(n)
            return
        self.fmt = f
        self.add(rec, n)

    def add(self, rec: PerfRecord, n: int) -> None:
        p, groups = self.path, self.groups
        if rec.time_s is None:
            raise InputError("no interval timestamp (was perf run with -I?)", path=p, where=f"line {n}")
        if rec.unit and rec.unit != "Joules":
            self.skipped_units.add(f"{rec.event} ({rec.unit})")
            return
        if groups and rec.time_s < groups[-1][0]:
            raise InputError(f"time goes backwards ({rec.time_s} after {groups[-1][0]})", path=p, where=f"line {n}")
        if not groups or rec.time_s > groups[-1][0]:
            groups.append((rec.time_s, {}))
        group = groups[-1][1]
        if rec.event in group:
            raise InputError(f"event {rec.event} appears twice at time {rec.time_s}", path=p, where=f"line {n}")
        group[rec.event] = rec.value
        if rec.event not in self.events:
            self.events.append(rec.event)

    def finish(self, gz_warnings: list[str]) -> None:
        if self.pending_error is not None:
            # the bad line was the last line: a file cut at a line boundary mid-record is still corrupt
            if not gz_warnings:
                raise self.pending_error
            self.truncated = True
            self.warnings.append(f"{self.pending_error.where} is cut short (truncated file); it was dropped")
        if gz_warnings:
            self.truncated = True
            self.warnings.extend(gz_warnings)
        if self.skipped_units:
            self.warnings.append(f"non-energy events ignored: {listed(sorted(self.skipped_units))}")
        if not self.groups:
            raise InputError("no perf stat interval lines with Joules (empty log, or not 'perf stat -I' output)",
                             path=self.path)
        last_time, last = self.groups[-1]
        if self.truncated and len(last) < len(self.events):
            missing = [e for e in self.events if e not in last]
            self.warnings.append(f"the last interval ({last_time} s) lacks {listed(missing)}: counted as a gap")

    def log(self) -> EnergyLog:
        events = self.events
        present = {(e[: e.rindex("/") + 1] if "/" in e else e)[len("power/"):-1] for e in events}
        times = [t for t, _ in self.groups]
        durations = [t - prev for t, prev in zip(times, [0.0] + times[:-1])]
        series = []
        for e in events:
            s = Series(e, _perf_domain(e, present), "perf", "measured")
            for _, g in self.groups:
                s.energy_j.append(g.get(e))
            series.append(s)
        fmt_name = "perf-csv" if self.fmt == "csv" else "perf-human"
        return EnergyLog(str(self.path), fmt_name, times, durations, series, self.warnings, self.truncated)


def _load_ipa_ext_csv(p: Path) -> EnergyLog:
    lines, gz_warnings = _open_lines(p)
    text_lines = []
    truncated = False
    warnings: list[str] = []
    for n, text, complete in lines:
        if not complete and text.strip():
            truncated = True
            warnings.append(f"line {n} is cut short (truncated file); it was dropped")
            continue
        text_lines.append(text)
    warnings.extend(gz_warnings)
    truncated = truncated or bool(gz_warnings)
    reader = csv.DictReader(io.StringIO("".join(text_lines)))
    missing = [c for c in IPA_EXT_COLUMNS if c not in (reader.fieldnames or [])]
    if missing:
        raise InputError(f"missing column(s) {', '.join(missing)}", path=p, where="header")
    times: list[float] = []
    durations: list[float] = []
    index: dict[float, int] = {}
    series: dict[tuple[str, str], Series] = {}
    values: dict[tuple[str, str], dict[int, float | None]] = {}
    for row in reader:
        n = reader.line_num
        try:
            t = float(row["time_s"])
            dt = float(row["interval_s"])
            e = row["energy_j"].strip()
            energy = float(e) if e else None
        except (TypeError, ValueError):
            raise InputError("time_s, interval_s and energy_j must be numbers", path=p, where=f"line {n}") from None
        if not (math.isfinite(t) and math.isfinite(dt) and dt >= 0) or (energy is not None and not math.isfinite(energy)):
            raise InputError("time_s, interval_s and energy_j must be finite (interval_s >= 0)", path=p, where=f"line {n}")
        quality = row["quality"]
        if quality not in ("measured", "estimated"):
            raise InputError(f"quality must be measured or estimated, got {shown(quality)}", path=p,
                             where=f"line {n}")
        if t not in index:
            if times and t < times[-1]:
                raise InputError(f"time goes backwards ({t} after {times[-1]})", path=p, where=f"line {n}")
            index[t] = len(times)
            times.append(t)
            durations.append(dt)
        key = (row["source"], row["domain"])
        if key not in series:
            dom = Domain(row["domain"], "", row["parent"] or None)
            series[key] = Series(row["event"] or row["domain"], dom, row["source"], quality)
            values[key] = {}
        if series[key].quality != quality:
            raise InputError(f"domain {row['domain']} changes quality mid-log", path=p, where=f"line {n}")
        values[key][index[t]] = energy
    if not times:
        raise InputError("no interval rows", path=p)
    out = []
    for key, s in series.items():
        s.energy_j = [values[key].get(i) for i in range(len(times))]
        out.append(s)
    return EnergyLog(str(p), "ipa-ext-csv", times, durations, out, warnings, truncated)


def write_interval_csv(path: str | Path, rows: Iterable[dict], extra_columns: Sequence[str] = ()) -> None:
    """Write ipa-ext's per-interval CSV (:data:`IPA_EXT_COLUMNS`, then ``extra_columns`` such as ``scope``)."""
    columns = (*IPA_EXT_COLUMNS, *extra_columns)
    try:
        with open(path, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=columns)
            w.writeheader()
            for r in rows:
                w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=path) from None


def log_rows(log: EnergyLog) -> Iterator[dict]:
    """The per-interval rows of a log, in ipa-ext's CSV shape."""
    for i, (t, dt) in enumerate(zip(log.times_s, log.durations_s)):
        for s in log.series:
            e = s.energy_j[i]
            yield {"time_s": f"{t:.9g}", "interval_s": f"{dt:.9g}", "source": s.source, "event": s.event,
                   "domain": s.domain.id, "parent": s.domain.parent, "energy_j": None if e is None else repr(e),
                   "power_w": None if e is None or dt <= 0 else f"{e / dt:.9g}", "quality": s.quality,
                   "gap_s": f"{dt:.9g}" if e is None else "0"}
