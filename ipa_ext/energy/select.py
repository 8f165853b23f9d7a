"""Choosing energy sources by name (with options) or automatically, by the ranks sources declare.

Automatic choice: for each kind of hardware the sources declare they cover
(:attr:`~ipa_ext.energy.source.EnergySource.covers`), the first available of
the sources that declare an ``auto_rank``, measured ones before estimated
ones, higher rank first. Sources passed over in favour of the chosen one, and
a choice that is only estimated, are explained in the notes; hardware with no
available source adds nothing. A source named explicitly must be available,
or the user gets one line with its status and fix hint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ..errors import ConfigError
from .source import EnergySource, EnergySourceError, ProbeResult, Status

KIND = "energy source"


@dataclass(frozen=True)
class Choice:
    """Sources to measure with, and why others were not used."""

    sources: tuple[EnergySource, ...]
    notes: tuple[str, ...]


def create(host: Any, name: str, options: Mapping[str, Any] | None = None, where: str | None = None) -> EnergySource:
    """Instantiate a registered source (unknown names list the registered ones)."""
    return host.registry.create(KIND, name, options or {}, where=where)


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
    if not names:
        return choose_automatically(host)
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


def ranked(host: Any) -> dict[str, list[str]]:
    """The sources that take part in automatic choice, by what they cover (in order of first
    registration), each list best first: measured before estimated, then higher ``auto_rank``."""
    groups: dict[str, list[tuple[bool, int, str]]] = {}
    for name in host.registry.names(KIND):
        factory = host.registry.get(KIND, name).factory
        rank = getattr(factory, "auto_rank", None)
        if rank is None:
            continue
        measured = getattr(factory, "quality", "measured") == "measured"
        groups.setdefault(str(getattr(factory, "covers", "cpu")), []).append((measured, rank, name))
    return {covers: [n for _, _, n in sorted(group, key=lambda t: (not t[0], -t[1]))]
            for covers, group in groups.items()}


def probe_order(host: Any) -> list[str]:
    """Every registered source: those automatic choice tries, in the order it tries them,
    then the ones it never chooses, in registration order."""
    auto = [n for names in ranked(host).values() for n in names]
    return auto + [n for n in host.registry.names(KIND) if n not in auto]


def first_available(host: Any, names: Sequence[str]) -> tuple[str, EnergySource | None, list[str]]:
    """The first of ``names`` that is available here (its name and source), and why the ones
    before it were not."""
    passed: list[str] = []
    for n in names:
        src = create(host, n)
        res = src.probe()
        if res.available:
            return n, src, passed
        src.close()
        passed.append(describe(n, res))
    return "", None, passed


def choose_automatically(host: Any) -> Choice:
    """The best available source for each kind of hardware (see the module docstring)."""
    chosen: list[EnergySource] = []
    notes: list[str] = []
    unavailable: list[str] = []
    for names in ranked(host).values():
        name, src, passed = first_available(host, names)
        if src is None:
            unavailable += passed
            continue
        chosen.append(src)
        notes += passed
        if src.quality != "measured":
            notes.append(f"using {name}: figures are estimated, not measured")
    if not chosen:
        raise EnergySourceError("no energy source is available: " + ("; ".join(unavailable) or
                                "no registered source declares an auto_rank"))
    return Choice(tuple(chosen), tuple(notes))
