"""Choosing energy sources by name (with options) or automatically: the best measured source available.

Automatic choice: the first available of ``rapl`` then ``perf`` for the CPU,
else ``estimate`` (labelled estimated, with the reasons the others were
passed over), plus ``nvml`` when it is available. A source named explicitly
must be available, or the user gets one line with its status and fix hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from .source import EnergySource, EnergySourceError, ProbeResult, Status

CPU_PREFERENCE = ("rapl", "perf")
FALLBACK = "estimate"
GPU_SOURCES = ("nvml",)


@dataclass(frozen=True)
class Choice:
    """Sources to measure with, and why others were not used."""

    sources: tuple[EnergySource, ...]
    notes: tuple[str, ...]


def create(host: Any, name: str, options: Mapping[str, Any] | None = None, where: str | None = None) -> EnergySource:
    """Instantiate a registered source (unknown names list the registered ones)."""
    return host.registry.create("energy source", name, options or {}, where=where)


def describe(name: str, res: ProbeResult) -> str:
    text = f"{name}: {res.status.value}"
    if res.detail:
        text += f": {res.detail}"
    if res.hint and res.status is not Status.AVAILABLE:
        text += f" (hint: {res.hint})"
    return text


def require_available(src: EnergySource, name: str) -> ProbeResult:
    res = src.probe()
    if not res.available:
        src.close()
        raise EnergySourceError(f"energy source {describe(name, res)}")
    return res


def choose(host: Any, names: Sequence[str] = (), options: Mapping[str, Mapping[str, Any]] | None = None) -> Choice:
    """Sources by name (each must be available), or the automatic choice when ``names`` is empty."""
    options = options or {}
    unknown = set(options) - set(names) if names else set()
    if unknown:
        raise ConfigError(f"options given for source(s) not chosen: {', '.join(sorted(unknown))}")
    if names:
        if len(set(names)) != len(names):
            raise ConfigError("a source is named twice")
        out: list[EnergySource] = []
        try:
            for n in names:
                src = create(host, n, options.get(n))
                out.append(src)
                require_available(src, n)
        except BaseException:
            for s in out:
                s.close()
            raise
        return Choice(tuple(out), ())
    registered = set(host.registry.names("energy source"))
    notes: list[str] = []
    chosen: list[EnergySource] = []
    for n in CPU_PREFERENCE:
        if n not in registered:
            continue
        src = create(host, n)
        res = src.probe()
        if res.available:
            chosen.append(src)
            break
        notes.append(describe(n, res))
    if not chosen:
        if FALLBACK not in registered:
            raise EnergySourceError("no energy source is available: " + "; ".join(notes))
        src = create(host, FALLBACK)
        require_available(src, FALLBACK)
        chosen.append(src)
        notes.append(f"using {FALLBACK}: figures are estimated, not measured")
    for n in GPU_SOURCES:
        if n in registered:
            src = create(host, n)
            res = src.probe()
            if res.available:
                chosen.append(src)
            else:
                src.close()
    return Choice(tuple(chosen), tuple(notes))
