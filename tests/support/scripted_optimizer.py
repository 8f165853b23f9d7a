"""A test-only optimizer plugin (``plugins: {load: [this file]}``): ``scripted`` returns, at its n-th decision,
the n-th configuration of its ``steps`` option (the last one after that), so a test can drive plain stages,
mixes and ensembles through the real adaptation loop.

Each step maps stage names to ``{variant, cpu, batch, replicas}``, ``{mix: [[CONFIG, SHARE], ...]}`` or
``{ensemble: [CONFIG, ...]}``; a stage a step leaves out keeps what runs.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from ipa_ext import hookimpl
from ipa_ext.model import StageConfig
from ipa_ext.optimizers import Optimizer
from ipa_ext.problem.mix import StageEnsemble, StageMix


def _plain(spec: Mapping[str, Any]) -> StageConfig:
    return StageConfig(str(spec["variant"]), float(spec["cpu"]), int(spec["batch"]), int(spec["replicas"]))


def stage_config(spec: Mapping[str, Any]) -> StageConfig:
    if "mix" in spec:
        return StageMix.of([(_plain(c), float(s)) for c, s in spec["mix"]])
    if "ensemble" in spec:
        return StageEnsemble.of([_plain(c) for c in spec["ensemble"]])
    return _plain(spec)


class Scripted(Optimizer):
    name = "scripted"

    def __init__(self, steps: list[Mapping[str, Any]]) -> None:
        self.steps = list(steps)
        self.calls = 0

    def solve(self, problem, rate_rps, current, k):
        step = self.steps[min(self.calls, len(self.steps) - 1)]
        self.calls += 1
        names = problem.pipeline.stage_names
        config = tuple(stage_config(step[n]) if n in step else current[i] for i, n in enumerate(names))
        plain = tuple(StageConfig(sc.variant, sc.cpu, sc.batch, sc.replicas) for sc in config)
        scored = problem.evaluate(plain, rate_rps)  # the main parts' terms: enough for the loop's log
        return [dataclasses.replace(scored, config=config, violations=())], {"step": self.calls}


@hookimpl
def register_optimizers(register) -> None:
    register("scripted", Scripted)
