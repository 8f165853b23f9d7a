"""Request workloads: the Twitter trace format, IPA's named windows, and seeded synthetic patterns.

A workload is a per-second series of request counts (non-negative integers).
The Twitter trace that IPA and InfAdapter evaluate on is whitespace-separated
per-second integers in a ``.txt`` file or a bzip2 tarball holding one; the
package cannot ship it, so the embedded default is a synthetic pattern.

Windows follow IPA's workload generator: ``series[start:end]`` (end exclusive),
each second's count integer-divided by ``damping_factor`` when one is given.
"""

from __future__ import annotations

import bz2
import io
import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import ConfigError, InputError
from .numeric import number
from .show import listed, shown

IPA_WINDOWS: Mapping[str, tuple[int, int, int | None]] = {
    "bursty": (1301160, 1302360, None),
    "steady-low": (1299600, 1300800, None),
    "steady-high": (1768800, 1769400, 8),
    "fluctuating": (1301400, 1302000, 8),
}
"""IPA's evaluation windows of the Twitter trace: (start second, end second, damping factor)."""

SYNTHETIC_PATTERNS = ("steady", "bursty", "fluctuating", "diurnal", "step")

DEFAULT_SYNTHETIC: Mapping[str, Any] = {
    "pattern": "fluctuating",
    "duration_s": 1200,
    "seed": 0,
}
"""The workload of a config that names none: a 20-minute fluctuating synthetic series."""

MAX_RATE_RPS = 1e9
"""The highest synthetic rate (``base_rps``, ``peak_rps``): far above any pipeline's capacity."""

MAX_DURATION_S = 366 * 86400
"""The longest generated series (synthetic ``duration_s``, static ``load_duration``): a year
of seconds; a longer one would not fit in memory."""


@dataclass(frozen=True)
class Workload:
    """A per-second request series and where it came from."""

    name: str
    rates: np.ndarray = field(repr=False)
    source: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def duration_s(self) -> int:
        return int(len(self.rates))

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly description (for summaries and logs)."""
        r = self.rates
        return {
            "name": self.name,
            "source": self.source,
            **dict(self.params),
            "seconds": self.duration_s,
            "requests": int(r.sum()) if len(r) else 0,
            "mean_rps": float(r.mean()) if len(r) else 0.0,
            "max_rps": int(r.max()) if len(r) else 0,
        }


# --------------------------------------------------------------------------- trace files


def _read_trace_text(p: Path) -> str:
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError("trace file not found", path=p) from None
    except OSError as exc:
        raise InputError(f"cannot read trace: {exc.strerror or exc}", path=p) from None
    name = p.name.lower()
    if name.endswith((".tbz2", ".tar.bz2", ".tbz")):
        try:
            with tarfile.open(fileobj=io.BytesIO(raw), mode="r:bz2") as tar:
                members = [m for m in tar.getmembers() if m.isfile()]
                if not members:
                    raise InputError("the tarball holds no file", path=p)
                txt = [m for m in members if m.name.endswith(".txt")] or members
                if len(txt) > 1:
                    names = listed(m.name for m in txt[:5])
                    raise InputError(f"the tarball holds several candidate files ({names}); extract one", path=p)
                f = tar.extractfile(txt[0])
                assert f is not None
                raw = f.read()
        except (tarfile.TarError, OSError, EOFError) as exc:
            raise InputError(f"not a readable bzip2 tarball: {exc}", path=p) from None
    elif name.endswith(".bz2"):
        try:
            raw = bz2.decompress(raw)
        except (OSError, ValueError) as exc:
            raise InputError(f"not a readable bzip2 file: {exc}", path=p) from None
    try:
        return raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise InputError(f"not a text trace (byte {exc.start} is not ASCII)", path=p) from None


INT64_MAX = int(np.iinfo(np.int64).max)


def parse_trace(text: str, path: str | Path | None = None) -> np.ndarray:
    """Parse whitespace-separated per-second request counts.

    Every token must be a non-negative integer that fits 64 bits; the first one
    that is not is reported with its line and position. An empty trace is an error.
    """
    tokens = text.split()
    if not tokens:
        raise InputError("empty trace: expected whitespace-separated per-second request counts", path=path)
    try:
        arr = np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        arr = None
    if arr is not None and arr.min() >= 0:
        return arr
    _raise_bad_token(text, path)
    raise InputError("cannot parse trace", path=path)  # pragma: no cover - _raise_bad_token raises


def _raise_bad_token(text: str, path: str | Path | None) -> None:
    """Find the first token that is not a count and raise an error naming its line and position."""
    i = 0
    for lineno, line in enumerate(text.splitlines(), start=1):
        for tok in line.split():
            where = f"line {lineno}, value {i + 1} (second {i})"
            m = re.fullmatch(r"([+-]?)0*([0-9]*)", tok)
            if m is None or tok.strip("+-") == "":
                raise InputError(f"{shown(tok)} is not an integer request count", path=path, where=where)
            if m.group(1) == "-" and m.group(2):
                raise InputError(f"{shown(tok)} is negative", path=path, where=where)
            if len(m.group(2)) > 19 or int(m.group(2) or 0) > INT64_MAX:
                raise InputError(f"{shown(tok)} is larger than a 64-bit count ({INT64_MAX})",
                                 path=path, where=where)
            i += 1


def load_trace(path: str | Path) -> np.ndarray:
    """Read a whole trace file (``.txt``, ``.bz2`` or a ``.tbz2`` tarball holding one ``.txt``)."""
    p = Path(path)
    return parse_trace(_read_trace_text(p), p)


def window(
    series: np.ndarray,
    start_s: int | None = None,
    end_s: int | None = None,
    damping_factor: int | None = None,
    *,
    path: str | Path | None = None,
) -> np.ndarray:
    """IPA's window: ``series[start:end]``, integer-divided by ``damping_factor``."""
    n = len(series)
    start = 0 if start_s is None else int(start_s)
    end = n if end_s is None else int(end_s)
    if start < 0 or end < 0:
        raise InputError(f"window {start}-{end}: seconds must be >= 0", path=path, where="window")
    if start >= end:
        raise InputError(f"window {start}-{end}: start must be before end", path=path, where="window")
    if end > n:
        raise InputError(f"window {start}-{end} ends after the trace's {n} seconds", path=path, where="window")
    out = series[start:end]
    if damping_factor is not None:
        d = number(damping_factor, "damping_factor", path=path, error=InputError, integer=True, minimum=1,
                   maximum=INT64_MAX)
        out = out // d
    return np.ascontiguousarray(out, dtype=np.int64)


# --------------------------------------------------------------------------- synthetic


def synthetic(
    pattern: str,
    duration_s: int = 1200,
    seed: int = 0,
    *,
    base_rps: float | None = None,
    peak_rps: float | None = None,
    period_s: float | None = None,
) -> np.ndarray:
    """A seeded synthetic per-second series; every second's count is Poisson around a rate curve.

    * ``steady``: a constant ``base_rps`` (default 20).
    * ``bursty``: ``base_rps`` (15) with bursts to ``peak_rps`` (60) lasting 10-60 s,
      starting on average every ``period_s`` (120) seconds.
    * ``fluctuating``: a smooth random curve between ``base_rps`` (8) and ``peak_rps`` (40)
      changing on a time scale of ``period_s`` (60) seconds.
    * ``diurnal``: a sinusoid between ``base_rps`` (10) and ``peak_rps`` (50) with period
      ``period_s`` (the duration, one "day" per run).
    * ``step``: four equal phases at ``base_rps``, ``peak_rps``, base and peak (15 and 45).
    """
    if pattern not in SYNTHETIC_PATTERNS:
        raise ConfigError(
            f"unknown synthetic pattern {shown(pattern)} (known: {', '.join(SYNTHETIC_PATTERNS)})",
            where="workload.pattern",
        )
    n = number(duration_s, "workload.duration_s", integer=True, minimum=1, maximum=MAX_DURATION_S)
    seed = number(seed, "workload.seed", integer=True, minimum=0)
    base_rps, peak_rps, period_s = (
        None if v is None else number(v, f"workload.{key}", minimum=0.0, maximum=hi)
        for key, v, hi in (("base_rps", base_rps, MAX_RATE_RPS), ("peak_rps", peak_rps, MAX_RATE_RPS),
                           ("period_s", period_s, None))
    )
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    t = np.arange(n, dtype=float)
    if pattern == "steady":
        rate = np.full(n, 20.0 if base_rps is None else base_rps)
    elif pattern == "bursty":
        base = 15.0 if base_rps is None else base_rps
        peak = 60.0 if peak_rps is None else peak_rps
        gap = 120.0 if period_s is None else max(period_s, 1.0)
        rate = np.full(n, base)
        pos = rng.exponential(gap / 2)
        while pos < n:
            length = rng.uniform(10, 60)
            height = rng.uniform(0.5, 1.0) * (peak - base)
            lo, hi = int(pos), min(n, int(pos + length))
            ramp = np.minimum(1.0, np.minimum(t[lo:hi] - pos + 1, pos + length - t[lo:hi]) / 5.0)
            rate[lo:hi] = np.maximum(rate[lo:hi], base + height * ramp)
            pos += length + rng.exponential(gap)
    elif pattern == "fluctuating":
        lo_r = 8.0 if base_rps is None else base_rps
        hi_r = 40.0 if peak_rps is None else peak_rps
        scale = 60.0 if period_s is None else max(period_s, 1.0)
        knots = int(n / scale) + 3
        pts = rng.uniform(0.0, 1.0, knots)
        x = np.arange(knots) * scale
        # cosine interpolation between random knots: smooth, bounded by [lo, hi]
        i = np.minimum((t // scale).astype(int), knots - 2)
        f = (t - x[i]) / scale
        w = (1 - np.cos(np.pi * f)) / 2
        level = pts[i] * (1 - w) + pts[i + 1] * w
        rate = lo_r + (hi_r - lo_r) * level
    elif pattern == "diurnal":
        lo_r = 10.0 if base_rps is None else base_rps
        hi_r = 50.0 if peak_rps is None else peak_rps
        period = float(n) if period_s is None else max(period_s, 1.0)
        rate = lo_r + (hi_r - lo_r) * (1 - np.cos(2 * np.pi * t / period)) / 2
    else:  # step
        lo_r = 15.0 if base_rps is None else base_rps
        hi_r = 45.0 if peak_rps is None else peak_rps
        phase = np.minimum((t * 4 // n).astype(int), 3)
        rate = np.where(phase % 2 == 0, lo_r, hi_r)
    return rng.poisson(np.maximum(rate, 0.0)).astype(np.int64)


# --------------------------------------------------------------------------- resolution

SYNTHETIC_KEYS = ("type", "pattern", "duration_s", "seed", "base_rps", "peak_rps", "period_s")
TWITTER_KEYS = ("type", "trace", "window", "start", "end", "damping_factor")
STATIC_KEYS = ("type", "loads_to_test", "load_duration")


def _check_keys(section: Mapping[str, Any], allowed: tuple[str, ...], path: Path | None) -> None:
    extra = sorted(str(k) for k in section if k not in allowed)
    if extra:
        raise ConfigError(
            f"unknown key {shown(extra[0])} for workload type {shown(section.get('type'))} "
            f"(known: {', '.join(allowed)})",
            path=path,
            where=f"workload.{extra[0]}",
        )


def _int(section: Mapping[str, Any], key: str, path: Path | None, default: Any = None, *,
         nullable: bool = False) -> Any:
    """A whole-number workload key: absent gives ``default``; null gives None only when
    ``nullable`` (IPA writes ``damping_factor: null`` for none)."""
    if key not in section or (section[key] is None and nullable):
        return default if key not in section else None
    return number(section[key], f"workload.{key}", path=path, integer=True, text=True)


def from_section(section: Mapping[str, Any] | None, base_dir: Path, path: Path | None = None) -> Workload:
    """Build the workload a config's ``workload`` section describes (the default when absent)."""
    s = dict(DEFAULT_SYNTHETIC if not section else section)
    kind = s.get("type", "synthetic" if "pattern" in s or not section else None)
    if kind is None:
        raise ConfigError("missing 'type' (synthetic, twitter or static)", path=path, where="workload.type")
    if not isinstance(kind, str):
        raise ConfigError(f"expected synthetic, twitter or static, got {shown(kind)}", path=path,
                          where="workload.type")
    s["type"] = kind
    if kind == "synthetic":
        _check_keys(s, SYNTHETIC_KEYS, path)
        pattern = str(s.get("pattern", DEFAULT_SYNTHETIC["pattern"]))
        duration = _int(s, "duration_s", path, DEFAULT_SYNTHETIC["duration_s"])
        seed = _int(s, "seed", path, 0)
        extra = {k: s[k] for k in ("base_rps", "peak_rps", "period_s") if s.get(k) is not None}
        try:
            rates = synthetic(pattern, duration, seed, **extra)
        except ConfigError as exc:
            raise ConfigError(exc.detail, path=path, where=exc.where) from None
        params = {"pattern": pattern, "duration_s": duration, "seed": seed, **extra}
        return Workload(f"synthetic:{pattern}", rates, "synthetic", params)
    if kind == "twitter":
        _check_keys(s, TWITTER_KEYS, path)
        trace = s.get("trace")
        name = s.get("window")
        if not isinstance(trace, str):
            raise ConfigError(
                "a Twitter workload needs 'trace': the path of workload.tbz2 or workload.txt",
                path=path,
                where="workload.trace",
            )
        start, end, damping = (_int(s, k, path, nullable=True) for k in ("start", "end", "damping_factor"))
        if name is not None:
            if not isinstance(name, str) or name not in IPA_WINDOWS:
                raise ConfigError(
                    f"unknown IPA window {shown(name)} (known: {', '.join(IPA_WINDOWS)})", path=path,
                    where="workload.window",
                )
            ws, we, wd = IPA_WINDOWS[name]
            start = ws if start is None else start
            end = we if end is None else end
            damping = wd if "damping_factor" not in s else damping
        return twitter(base_dir / trace, start, end, damping, name=name)
    if kind == "static":
        _check_keys(s, STATIC_KEYS, path)
        load = _int(s, "loads_to_test", path)
        duration = _int(s, "load_duration", path)
        if load is None or load < 0:
            raise ConfigError("must be a whole number >= 0", path=path, where="workload.loads_to_test")
        if duration is None or duration < 1:
            raise ConfigError("must be a whole number >= 1", path=path, where="workload.load_duration")
        if duration > MAX_DURATION_S:
            raise ConfigError(f"must be at most {MAX_DURATION_S} seconds (a year), got {duration}", path=path,
                              where="workload.load_duration")
        return Workload(f"static:{load}", np.full(duration, load, dtype=np.int64), "static",
                        {"loads_to_test": load, "load_duration": duration})
    raise ConfigError(f"unknown workload type {shown(kind)} (synthetic, twitter or static)", path=path,
                      where="workload.type")


_TRACE_CACHE: dict[tuple[str, float], np.ndarray] = {}


def _cached_trace(p: Path) -> np.ndarray:
    try:
        key = (str(p.resolve()), p.stat().st_mtime)
    except OSError:
        return load_trace(p)  # raises the one-line error
    if key not in _TRACE_CACHE:
        _TRACE_CACHE.clear()
        _TRACE_CACHE[key] = load_trace(p)
    return _TRACE_CACHE[key]


def twitter(
    trace: str | Path,
    start_s: int | None = None,
    end_s: int | None = None,
    damping_factor: int | None = None,
    *,
    name: str | None = None,
) -> Workload:
    """A window of a trace file (IPA's named window when ``name`` is given)."""
    p = Path(trace)
    rates = window(_cached_trace(p), start_s, end_s, damping_factor, path=p)
    start = 0 if start_s is None else int(start_s)
    params = {"trace": str(p), "start_s": start, "end_s": start + len(rates),
              "damping_factor": damping_factor}
    label = f"twitter:{name}" if name else f"trace:{p.name}[{start}:{start + len(rates)}]"
    return Workload(label, rates, "trace", params)


def _exists(path: str) -> bool:
    """Whether a path names something; False for a name the system refuses (too long, ...)."""
    try:
        return Path(path).exists()
    except OSError:
        return False


def parse_window(text: str) -> tuple[int, int]:
    """``START-END`` or ``START:END`` in seconds."""
    for sep in ("-", ":"):
        if sep in text:
            a, _, b = text.partition(sep)
            try:
                return int(a), int(b)
            except ValueError:
                break
    raise InputError(f"--window {shown(text)}: expected START-END in whole seconds")


def resolve(
    spec: str | None,
    section: Mapping[str, Any] | None,
    base_dir: Path,
    config_path: Path | None = None,
    *,
    window_s: tuple[int, int] | None = None,
    damping_factor: int | None = None,
    trace: str | Path | None = None,
    flag: str = "--workload",
) -> Workload:
    """The workload a command line asks for.

    ``spec`` is one of:

    * ``None``: the config's ``workload`` section (the built-in synthetic default
      when there is none), or the whole ``trace`` when one is passed;
    * a synthetic pattern: ``synthetic:NAME``, or the bare names ``steady``,
      ``diurnal`` and ``step`` (seed and duration from the config's synthetic section);
    * an IPA window: ``twitter:NAME``, or the bare names ``bursty``, ``steady-low``,
      ``steady-high`` and ``fluctuating``; it needs a trace (``trace`` or
      ``workload.trace``);
    * a trace file path.

    ``window_s`` (start, end) and ``damping_factor`` override the window of a trace.
    ``flag`` is the option that gave ``spec``, for errors (``bench`` passes ``--workloads``).
    """
    section = dict(section or {})
    trace_path: Path | None = None
    if trace is not None:
        trace_path = Path(trace)
    elif isinstance(section.get("trace"), str):
        trace_path = base_dir / section["trace"]
    windowed = window_s is not None or damping_factor is not None

    if spec is None:
        if trace_path is not None and (windowed or trace is not None):
            if section.get("type") == "twitter" and not windowed:
                return from_section({**section, "trace": str(trace_path.resolve())}, base_dir, config_path)
            start, end = window_s if window_s is not None else (None, None)
            return twitter(trace_path, start, end, damping_factor)
        if windowed:
            raise InputError("--window and --damping select part of a trace: pass --trace FILE or a trace path")
        return from_section(section or None, base_dir, config_path)

    kind, name = "", spec
    if ":" in spec and not _exists(spec):
        kind, _, name = spec.partition(":")
    if kind == "synthetic" or (not kind and name in SYNTHETIC_PATTERNS and name not in IPA_WINDOWS):
        if windowed:
            raise InputError(f"--window and --damping select part of a trace; {shown(spec)} is a synthetic "
                             "workload (set its duration_s in the config)", where=flag)
        s: dict[str, Any] = {"type": "synthetic", "pattern": name}
        if section.get("type", "synthetic") == "synthetic":
            s.update({k: section[k] for k in ("duration_s", "seed") if k in section})
        if name not in SYNTHETIC_PATTERNS:
            raise InputError(f"unknown synthetic pattern {shown(name)} (known: {', '.join(SYNTHETIC_PATTERNS)})",
                             where=flag)
        return from_section(s, base_dir, config_path)
    if kind == "twitter" or (not kind and name in IPA_WINDOWS):
        if name not in IPA_WINDOWS:
            raise InputError(f"unknown IPA window {shown(name)} (known: {', '.join(IPA_WINDOWS)})",
                             where=flag)
        if trace_path is None:
            hint = f"; the built-in pattern is 'synthetic:{name}'" if name in SYNTHETIC_PATTERNS else ""
            raise InputError(
                f"workload {shown(name)} is a window of the Twitter trace: pass --trace FILE "
                f"(workload.tbz2 or workload.txt) or set workload.trace{hint}",
                where=flag,
            )
        ws, we, wd = IPA_WINDOWS[name]
        if window_s is not None:
            ws, we = window_s
        return twitter(trace_path, ws, we, wd if damping_factor is None else damping_factor, name=name)
    if kind:
        raise InputError(f"unknown workload kind {shown(kind)} in {shown(spec)} (synthetic:NAME, twitter:NAME or a path)",
                         where=flag)
    p = Path(spec)
    if not _exists(spec):
        known = ", ".join(dict.fromkeys([*SYNTHETIC_PATTERNS, *IPA_WINDOWS]))
        raise InputError(f"no such workload name or file {shown(spec)} (names: {known}; or a trace path)",
                         where=flag)
    start, end = window_s if window_s is not None else (None, None)
    return twitter(p, start, end, damping_factor)
