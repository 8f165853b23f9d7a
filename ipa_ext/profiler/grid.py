"""The sweep plan: which (stage, variant) models, CPU counts and batch sizes to measure, and the disjoint
core sets that pinned workers get. Options are checked against the pipeline and the machine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from ..config.modelref import ModelRef
from ..errors import InputError


@dataclass(frozen=True)
class Point:
    """One profile row to measure."""

    stage: str
    variant: str
    cpu: int
    batch: int

    @property
    def key(self) -> tuple[str, str, int, int]:
        return (self.stage, self.variant, self.cpu, self.batch)


@dataclass(frozen=True)
class Plan:
    """The (stage, variant) models in pipeline order, and the CPU counts and batches for each."""

    variants: tuple[tuple[str, str], ...]
    cpus: tuple[int, ...]
    batches: tuple[int, ...]
    replicas: int

    def points(self) -> list[Point]:
        return [Point(s, v, c, b) for s, v in self.variants for c in self.cpus for b in self.batches]


def parse_int_list(text: str, option: str, *, low: int = 1) -> tuple[int, ...]:
    """``1,2,4`` as sorted, distinct integers >= ``low``; anything else names the option."""
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        try:
            v = int(part)
        except ValueError:
            raise InputError(f"expected whole numbers separated by commas, got {part!r}", where=option) from None
        if v < low:
            raise InputError(f"must be >= {low}, got {v}", where=option)
        values.append(v)
    if len(set(values)) != len(values):
        raise InputError(f"a value is listed twice in {text!r}", where=option)
    return tuple(sorted(values))


def _names(text: str | None) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()] if text else []


def select(stages: Sequence[tuple[str, Sequence[str]]], models: Mapping[tuple[str, str], ModelRef],
           stage_option: str | None, variant_option: str | None
           ) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The (stage, variant) pairs ``--stages`` and ``--variants`` choose, and those skipped for naming
    no model (default: every variant of every stage).

    A variant may be given as ``NAME`` or ``STAGE/NAME``; unknown names list the known ones. A variant
    named in ``--variants`` without a model, or a choice where no variant has one, is an error.
    """
    stage_names = [s for s, _ in stages]
    chosen_stages = _names(stage_option) or stage_names
    for s in chosen_stages:
        if s not in stage_names:
            raise InputError(f"unknown stage {s!r} (stages: {', '.join(stage_names)})", where="--stages")
    wanted = _names(variant_option)
    pairs = [(s, v) for s, vs in stages if s in chosen_stages for v in vs]
    if wanted:
        known = {v for _, v in pairs} | {f"{s}/{v}" for s, v in pairs}
        for w in wanted:
            if w not in known:
                raise InputError(f"unknown variant {w!r} among the chosen stages (variants: "
                                 f"{', '.join(v for _, v in pairs)})", where="--variants")
        pairs = [(s, v) for s, v in pairs if v in wanted or f"{s}/{v}" in wanted]
    missing = tuple(p for p in pairs if p not in models)
    if missing and (wanted or len(missing) == len(pairs)):
        s, v = missing[0]
        raise InputError(f"variant {s}/{v} names no model: give it 'model: FILE.onnx' or 'zoo: NAME' in the "
                         "pipeline file", where="--variants" if wanted else "--stages")
    return tuple(p for p in pairs if p in models), missing


def core_sets(cpu: int, replicas: int, usable: Sequence[int]) -> list[list[int]]:
    """Disjoint sets of ``cpu`` CPUs, one per replica, from the CPUs this process may use, in order."""
    need = cpu * replicas
    if need > len(usable):
        asked = f"{replicas} replicas of {cpu} cores need {need} CPUs" if replicas > 1 else f"{cpu} cores asked for"
        raise InputError(f"{asked}; this machine lets ipa-ext use {len(usable)} ({_ranges(usable)})",
                         where="--replicas" if replicas > 1 else "--cpus")
    cpus = sorted(usable)
    return [cpus[i * cpu:(i + 1) * cpu] for i in range(replicas)]


def _ranges(cpus: Sequence[int]) -> str:
    """CPU numbers as ``0-3,6``."""
    xs = sorted(cpus)
    parts: list[str] = []
    start = prev = xs[0] if xs else 0
    for x in xs[1:] + [None]:  # type: ignore[list-item]
        if x is not None and x == prev + 1:
            prev = x
            continue
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
        if x is not None:
            start = prev = x
    return "CPUs " + ",".join(parts) if xs else "no CPUs"


def check_cpus(cpus: Sequence[int], replicas: int, usable: Sequence[int]) -> None:
    """Every CPU count (times the replicas) fits the CPUs this process may use."""
    for c in cpus:
        core_sets(c, replicas, usable)
