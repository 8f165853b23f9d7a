"""The workload a config section or a command line names: synthetic, a trace window or a static load."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..config.numeric import number
from ..config.show import shown
from ..errors import ConfigError, InputError
from .builtin import builtin_window
from .synthetic import MAX_DURATION_S, SYNTHETIC_PATTERNS, synthetic
from .traces import Workload
from .windows import IPA_WINDOWS, twitter

DEFAULT_SYNTHETIC: Mapping[str, Any] = {
    "pattern": "fluctuating",
    "duration_s": 1200,
    "seed": 0,
}
"""The workload of a config that names none: a 20-minute fluctuating synthetic series."""


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
        if trace is None and isinstance(name, str) and name in IPA_WINDOWS:
            overrides = sorted(k for k in ("start", "end", "damping_factor") if k in s)
            if overrides:
                raise ConfigError("the package ships IPA's windows as cut; another window or damping needs "
                                  "'trace': the path of workload.tbz2 or workload.txt", path=path,
                                  where=f"workload.{overrides[0]}")
            return builtin_window(name)
        if not isinstance(trace, str):
            raise ConfigError(
                "a Twitter workload needs 'window' (one of IPA's, shipped in the package) or 'trace': the "
                "path of workload.tbz2 or workload.txt",
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


def _exists(path: str) -> bool:
    """Whether a path names something; False for a name the system refuses (too long, ...)."""
    try:
        return Path(path).exists()
    except OSError:
        return False


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
      ``steady-high`` and ``fluctuating``: cut from ``trace`` (or ``workload.trace``) when
      one is given, else the copy shipped in the package;
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
        return _synthetic_pattern(name, section, base_dir, config_path, flag)
    if kind == "twitter" or (not kind and name in IPA_WINDOWS):
        return _ipa_window(name, trace_path, window_s, damping_factor, flag)
    if kind:
        raise InputError(f"unknown workload kind {shown(kind)} in {shown(spec)} (synthetic:NAME, twitter:NAME or a path)",
                         where=flag)
    if not _exists(spec):
        known = ", ".join(dict.fromkeys([*SYNTHETIC_PATTERNS, *IPA_WINDOWS]))
        raise InputError(f"no such workload name or file {shown(spec)} (names: {known}; or a trace path)",
                         where=flag)
    start, end = window_s if window_s is not None else (None, None)
    return twitter(Path(spec), start, end, damping_factor)


def _synthetic_pattern(name: str, section: Mapping[str, Any], base_dir: Path, config_path: Path | None,
                       flag: str) -> Workload:
    """A named synthetic pattern, with the config's synthetic duration and seed."""
    s: dict[str, Any] = {"type": "synthetic", "pattern": name}
    if section.get("type", "synthetic") == "synthetic":
        s.update({k: section[k] for k in ("duration_s", "seed") if k in section})
    if name not in SYNTHETIC_PATTERNS:
        raise InputError(f"unknown synthetic pattern {shown(name)} (known: {', '.join(SYNTHETIC_PATTERNS)})",
                         where=flag)
    return from_section(s, base_dir, config_path)


def _ipa_window(name: str, trace_path: Path | None, window_s: tuple[int, int] | None,
                damping_factor: int | None, flag: str) -> Workload:
    """One of IPA's named windows of the Twitter trace (``window_s``/``damping_factor`` override it)."""
    if name not in IPA_WINDOWS:
        raise InputError(f"unknown IPA window {shown(name)} (known: {', '.join(IPA_WINDOWS)})", where=flag)
    if trace_path is None:
        if window_s is None and damping_factor is None:
            return builtin_window(name)
        raise InputError(
            f"the package ships IPA's window {shown(name)} as cut; --window and --damping need the whole "
            "trace: pass --trace FILE (workload.tbz2 or workload.txt) or set workload.trace",
            where=flag,
        )
    ws, we, wd = IPA_WINDOWS[name]
    if window_s is not None:
        ws, we = window_s
    return twitter(trace_path, ws, we, wd if damping_factor is None else damping_factor, name=name)
