"""The rate-independent state and action spaces of a problem: per stage a local state
``(variant, cpu, batch, replica offset)`` and bounded single-step actions (docs/q-learning.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ipa_ext.model import Configuration
from ipa_ext.problem import Problem

from .algorithm import State


@dataclass(frozen=True)
class StageAxes:
    """One stage's axes: variants in accuracy order, CPUs per variant, batches per (variant, cpu)."""

    name: str
    variants: tuple[str, ...]
    cpus: tuple[tuple[float, ...], ...]
    batches: tuple[tuple[tuple[int, ...], ...], ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "variants": [
                {"name": v, "cpus": [{"cpu": c, "batches": list(self.batches[i][j])}
                                     for j, c in enumerate(self.cpus[i])]}
                for i, v in enumerate(self.variants)
            ],
        }


LOCAL_ACTIONS = (("variant", -1), ("variant", 1), ("cpu", -1), ("cpu", 1),
                 ("batch", -1), ("batch", 1), ("replicas", -1), ("replicas", 1))


def nearest(values: Sequence[float], target: float) -> int:
    """The index of the value nearest ``target`` (the smaller on a tie)."""
    return min(range(len(values)), key=lambda i: (abs(values[i] - target), values[i]))


class Layout:
    """The rate-independent state and action spaces of a problem (see module docstring)."""

    def __init__(self, stages: Sequence[StageAxes], offsets: tuple[int, int], pinned: bool) -> None:
        self.stages = tuple(stages)
        self.offsets = (0, 0) if pinned else offsets
        self.pinned = pinned
        lo, hi = self.offsets
        self.local_states: list[list[tuple[int, int, int, int]]] = []
        self.local_index: list[dict[tuple[int, int, int, int], int]] = []
        self.local_actions: list[list[tuple[str, int]]] = []
        self.local_next: list[list[list[int]]] = []
        self.action_names = ["stay"]
        self.action_map: list[tuple[int, int]] = [(-1, -1)]
        for si, ax in enumerate(self.stages):
            states = [(v, c, b, d)
                      for v in range(len(ax.variants))
                      for c in range(len(ax.cpus[v]))
                      for b in range(len(ax.batches[v][c]))
                      for d in range(lo, hi + 1)]
            index = {t: i for i, t in enumerate(states)}
            dims = {
                "variant": len(ax.variants) > 1,
                "cpu": any(len(c) > 1 for c in ax.cpus),
                "batch": any(len(b) > 1 for bs in ax.batches for b in bs),
                "replicas": hi > lo,
            }
            acts = [a for a in LOCAL_ACTIONS if dims[a[0]]]
            nxt = [[self._move(ax, t, a, index) for a in acts] for t in states]
            self.local_states.append(states)
            self.local_index.append(index)
            self.local_actions.append(acts)
            self.local_next.append(nxt)
            for j, (dim, step) in enumerate(acts):
                self.action_names.append(f"{ax.name}:{dim}{step:+d}")
                self.action_map.append((si, j))

    def _move(self, ax: StageAxes, t: tuple[int, int, int, int], act: tuple[str, int],
              index: Mapping[tuple[int, int, int, int], int]) -> int:
        v, c, b, d = t
        dim, step = act
        if dim == "variant":
            v2 = v + step
            if not 0 <= v2 < len(ax.variants):
                return -1
            c2 = nearest(ax.cpus[v2], ax.cpus[v][c])
            b2 = nearest(ax.batches[v2][c2], ax.batches[v][c][b])
            t2 = (v2, c2, b2, d)
        elif dim == "cpu":
            c2 = c + step
            if not 0 <= c2 < len(ax.cpus[v]):
                return -1
            t2 = (v, c2, nearest(ax.batches[v][c2], ax.batches[v][c][b]), d)
        elif dim == "batch":
            t2 = (v, c, b + step, d)
        else:
            t2 = (v, c, b, d + step)
        return index.get(t2, -1)

    @property
    def n_actions(self) -> int:
        return len(self.action_names)

    def as_dict(self) -> dict[str, Any]:
        return {
            "stages": [ax.as_dict() for ax in self.stages],
            "replica_offsets": list(self.offsets),
            "pinned_replicas": self.pinned,
        }

    def state_key(self, state: State) -> str:
        return ";".join(",".join(str(x) for x in self.local_states[i][li]) for i, li in enumerate(state))

    def parse_key(self, key: str) -> State:
        """The state of a file key; raises ValueError when it is not in this layout."""
        parts = key.split(";")
        if len(parts) != len(self.stages):
            raise ValueError(f"expected {len(self.stages)} stage(s)")
        out = []
        for i, part in enumerate(parts):
            t = tuple(int(x) for x in part.split(","))
            if len(t) != 4 or t not in self.local_index[i]:
                raise ValueError(f"stage {i}: {part!r} is not a state of this layout")
            out.append(self.local_index[i][t])  # type: ignore[index]
        return tuple(out)


def build_layout(problem: Problem, current: Configuration | None, offsets: tuple[int, int]) -> Layout:
    """The layout of ``problem``'s option space (``stage_choices``) with replica offsets."""
    stages = []
    for i, stage in enumerate(problem.pipeline.stages):
        cur = current[i] if current else None
        choices = problem.stage_choices(i, cur)
        acc = {v.name: v.accuracy for v in stage.variants}
        by_variant: dict[str, dict[float, list[int]]] = {}
        for v, c, b in choices:
            by_variant.setdefault(v, {}).setdefault(c, []).append(b)
        names = sorted(by_variant, key=lambda v: (acc[v], v))
        cpus = tuple(tuple(sorted(by_variant[v])) for v in names)
        batches = tuple(tuple(tuple(sorted(by_variant[v][c])) for c in cpus[k]) for k, v in enumerate(names))
        stages.append(StageAxes(stage.name, tuple(names), cpus, batches))
    return Layout(stages, offsets, problem.settings.baseline_mode == "switch")


def layout_from_dict(d: Mapping[str, Any]) -> Layout:
    stages = []
    for s in d["stages"]:
        variants, cpus, batches = [], [], []
        for v in s["variants"]:
            variants.append(str(v["name"]))
            cpus.append(tuple(float(c["cpu"]) for c in v["cpus"]))
            batches.append(tuple(tuple(int(b) for b in c["batches"]) for c in v["cpus"]))
            if not cpus[-1] or any(not b for b in batches[-1]):
                raise ValueError(f"variant {variants[-1]!r} has no cpu or batch")
        if not variants:
            raise ValueError(f"stage {s['name']!r} has no variants")
        stages.append(StageAxes(str(s["name"]), tuple(variants), tuple(cpus), tuple(batches)))
    lo, hi = d["replica_offsets"]
    pinned = d["pinned_replicas"]
    if not isinstance(pinned, bool):
        raise ValueError("pinned_replicas must be true or false")
    return Layout(stages, (int(lo), int(hi)), pinned)
