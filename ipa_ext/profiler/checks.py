"""Sanity checks of a measured profile, reported rather than corrected: latency should fall with more
cores, and throughput should not fall with a larger batch."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Mapping


@dataclass(frozen=True)
class Violation:
    """One place where the profile does not behave as expected."""

    stage: str
    variant: str
    kind: str
    """``latency-cores`` (the median latency does not fall with more cores) or
    ``throughput-batch`` (throughput falls with a larger batch)."""
    fixed: str
    """What is held fixed: ``batch 4`` or ``cpu 2``."""
    before: tuple[float, float]
    """(cpu or batch, figure) of the smaller setting."""
    after: tuple[float, float]

    @property
    def change(self) -> float:
        """Relative change of the figure from the smaller to the larger setting."""
        return (self.after[1] - self.before[1]) / self.before[1] if self.before[1] else 0.0

    def describe(self) -> str:
        if self.kind == "latency-cores":
            return (f"{self.stage}/{self.variant} {self.fixed}: median latency does not fall with more cores: "
                    f"cpu {self.before[0]:g} {self.before[1] * 1e3:.2f} ms -> cpu {self.after[0]:g} "
                    f"{self.after[1] * 1e3:.2f} ms ({self.change:+.1%})")
        return (f"{self.stage}/{self.variant} {self.fixed}: throughput falls with a larger batch: "
                f"batch {self.before[0]:g} {self.before[1]:.4g} rps -> batch {self.after[0]:g} "
                f"{self.after[1]:.4g} rps ({self.change:+.1%})")

    def as_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "variant": self.variant, "kind": self.kind, "fixed": self.fixed,
                "before": list(self.before), "after": list(self.after), "change": self.change,
                "message": self.describe()}


def _num(row: Mapping[str, Any], key: str) -> float | None:
    value = row.get(key)
    try:
        return float(value) if value not in (None, "") else None
    except (TypeError, ValueError):
        return None


def monotonicity(rows: Iterable[Mapping[str, Any]]) -> list[Violation]:
    """Violations among ``rows`` (dicts with stage, variant, cpu, batch, latency_s, throughput_rps and,
    when present, latency_p50_s, which is used for the core check as the steadier figure)."""
    table: dict[tuple[str, str], dict[tuple[float, int], Mapping[str, Any]]] = {}
    for r in rows:
        cpu, batch = _num(r, "cpu"), _num(r, "batch")
        if cpu is None or batch is None:
            continue
        table.setdefault((str(r["stage"]), str(r["variant"])), {})[(cpu, int(batch))] = r
    out: list[Violation] = []
    for (stage, variant), cells in table.items():
        cpus = sorted({c for c, _ in cells})
        batches = sorted({b for _, b in cells})
        for b in batches:
            series = [(c, _latency(cells[(c, b)])) for c in cpus if (c, b) in cells]
            out += [Violation(stage, variant, "latency-cores", f"batch {b}", x, y)
                    for x, y in zip(series, series[1:]) if x[1] is not None and y[1] is not None and y[1] >= x[1]]
        for c in cpus:
            series = [(float(b), _num(cells[(c, b)], "throughput_rps")) for b in batches if (c, b) in cells]
            out += [Violation(stage, variant, "throughput-batch", f"cpu {c:g}", x, y)
                    for x, y in zip(series, series[1:]) if x[1] is not None and y[1] is not None and y[1] < x[1]]
    return out


def _latency(row: Mapping[str, Any]) -> float | None:
    p50 = _num(row, "latency_p50_s")
    return p50 if p50 is not None else _num(row, "latency_s")
