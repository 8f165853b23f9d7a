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
import math
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from .errors import ConfigError, InputError

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
                    names = ", ".join(m.name for m in txt[:5])
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


def parse_trace(text: str, path: str | Path | None = None) -> np.ndarray:
    """Parse whitespace-separated per-second request counts.

    Every token must be a non-negative integer; the first one that is not is
    reported with its position. An empty trace is an error.
    """
    tokens = text.split()
    if not tokens:
        raise InputError("empty trace: expected whitespace-separated per-second request counts", path=path)
    try:
        arr = np.array(tokens, dtype=np.int64)
    except (ValueError, OverflowError):
        arr = None
    if arr is not None and (len(arr) == 0 or arr.min() >= 0):
        return arr
    for i, tok in enumerate(tokens):
        try:
            v = int(tok)
        except ValueError:
            raise InputError(
                f"value {i + 1} ({tok[:20]!r}, second {i}) is not an integer request count",
                path=path,
            ) from None
        if v < 0:
            raise InputError(f"value {i + 1} ({tok!r}, second {i}) is negative", path=path)
    raise InputError("cannot parse trace", path=path)  # pragma: no cover - unreachable


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
        d = int(damping_factor)
        if d != damping_factor or d < 1:
            raise InputError(f"damping_factor must be a whole number >= 1, got {damping_factor!r}",
                             path=path, where="damping_factor")
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
            f"unknown synthetic pattern {pattern!r} (known: {', '.join(SYNTHETIC_PATTERNS)})",
            where="workload.pattern",
        )
    n = int(duration_s)
    if n < 1 or n != duration_s:
        raise ConfigError(f"must be a whole number of seconds >= 1, got {duration_s!r}", where="workload.duration_s")
    if n > MAX_DURATION_S:
        raise ConfigError(f"must be at most {MAX_DURATION_S} seconds (a year), got {duration_s!r}",
                          where="workload.duration_s")
    if isinstance(seed, bool) or int(seed) != seed or seed < 0:
        raise ConfigError(f"must be a whole number >= 0, got {seed!r}", where="workload.seed")
    for key, v in (("base_rps", base_rps), ("peak_rps", peak_rps), ("period_s", period_s)):
        if v is not None and not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ConfigError(f"must be a number >= 0, got {v!r}", where=f"workload.{key}")
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
            f"unknown key {extra[0]!r} for workload type {section.get('type')!r} "
            f"(known: {', '.join(allowed)})",
            path=path,
            where=f"workload.{extra[0]}",
        )


def _int(section: Mapping[str, Any], key: str, path: Path | None, default: Any = None) -> Any:
    v = section.get(key, default)
    if v is None:
        return None
    if isinstance(v, bool):
        raise ConfigError(f"expected a whole number, got {v!r}", path=path, where=f"workload.{key}")
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ConfigError(f"expected a whole number, got {v!r}", path=path, where=f"workload.{key}") from None
    if not math.isfinite(f) or f != int(f):
        raise ConfigError(f"expected a whole number, got {v!r}", path=path, where=f"workload.{key}")
    return int(f)


def from_section(section: Mapping[str, Any] | None, base_dir: Path, path: Path | None = None) -> Workload:
    """Build the workload a config's ``workload`` section describes (the default when absent)."""
    s = dict(DEFAULT_SYNTHETIC if not section else section)
    kind = s.get("type", "synthetic" if "pattern" in s or not section else None)
    if kind is None:
        raise ConfigError("missing 'type' (synthetic, twitter or static)", path=path, where="workload.type")
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
        start, end, damping = _int(s, "start", path), _int(s, "end", path), _int(s, "damping_factor", path)
        if name is not None:
            if name not in IPA_WINDOWS:
                raise ConfigError(
                    f"unknown IPA window {name!r} (known: {', '.join(IPA_WINDOWS)})", path=path,
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
    raise ConfigError(f"unknown workload type {kind!r} (synthetic, twitter or static)", path=path,
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


def parse_window(text: str) -> tuple[int, int]:
    """``START-END`` or ``START:END`` in seconds."""
    for sep in ("-", ":"):
        if sep in text:
            a, _, b = text.partition(sep)
            try:
                return int(a), int(b)
            except ValueError:
                break
    raise InputError(f"--window {text!r}: expected START-END in whole seconds")


def resolve(
    spec: str | None,
    section: Mapping[str, Any] | None,
    base_dir: Path,
    config_path: Path | None = None,
    *,
    window_s: tuple[int, int] | None = None,
    damping_factor: int | None = None,
    trace: str | Path | None = None,
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
    if ":" in spec and not Path(spec).exists():
        kind, _, name = spec.partition(":")
    if kind == "synthetic" or (not kind and name in SYNTHETIC_PATTERNS and name not in IPA_WINDOWS):
        if windowed:
            raise InputError(f"--window and --damping select part of a trace; {spec!r} is a synthetic "
                             "workload (set its duration_s in the config)", where="--workload")
        s: dict[str, Any] = {"type": "synthetic", "pattern": name}
        if section.get("type", "synthetic") == "synthetic":
            s.update({k: section[k] for k in ("duration_s", "seed") if k in section})
        if name not in SYNTHETIC_PATTERNS:
            raise InputError(f"unknown synthetic pattern {name!r} (known: {', '.join(SYNTHETIC_PATTERNS)})",
                             where="--workload")
        return from_section(s, base_dir, config_path)
    if kind == "twitter" or (not kind and name in IPA_WINDOWS):
        if name not in IPA_WINDOWS:
            raise InputError(f"unknown IPA window {name!r} (known: {', '.join(IPA_WINDOWS)})",
                             where="--workload")
        if trace_path is None:
            hint = f"; the built-in pattern is 'synthetic:{name}'" if name in SYNTHETIC_PATTERNS else ""
            raise InputError(
                f"workload {name!r} is a window of the Twitter trace: pass --trace FILE "
                f"(workload.tbz2 or workload.txt) or set workload.trace{hint}",
                where="--workload",
            )
        ws, we, wd = IPA_WINDOWS[name]
        if window_s is not None:
            ws, we = window_s
        return twitter(trace_path, ws, we, wd if damping_factor is None else damping_factor, name=name)
    if kind:
        raise InputError(f"unknown workload kind {kind!r} in {spec!r} (synthetic:NAME, twitter:NAME or a path)",
                         where="--workload")
    p = Path(spec)
    if not p.exists():
        known = ", ".join(dict.fromkeys([*SYNTHETIC_PATTERNS, *IPA_WINDOWS]))
        raise InputError(f"no such workload name or file {spec!r} (names: {known}; or a trace path)",
                         where="--workload")
    start, end = window_s if window_s is not None else (None, None)
    return twitter(p, start, end, damping_factor)
