"""What the simulator knows about one running configuration, derived from the profiles."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..model import Configuration
from ..problem.mix import stage_parts
from ..problem.problem import Problem


@dataclass(frozen=True)
class ActiveModel:
    """What the simulator needs to know about one running configuration."""

    index: int
    config: Configuration
    capacity_rps: float
    stage_capacity_rps: tuple[float, ...]
    latency_s: float
    batch_waits: tuple[float, ...]
    """Per stage, ``batch - 1``: the requests a batch waits for."""
    idle_w: tuple[float, ...]
    energy_j_per_request: tuple[float, ...]
    cpu_s_per_request: tuple[float, ...]
    cores: tuple[float, ...]
    accuracy_pct: float
    accuracy: float
    has_power: bool

    @property
    def total_cores(self) -> float:
        """Cores reserved by all stages."""
        return float(sum(self.cores))


def build_model(problem: Problem, config: Configuration, index: int = 0) -> ActiveModel:
    """Derive capacity, latency, power and accuracy of a configuration from the profiles."""
    pipeline = problem.pipeline
    if len(config) != len(pipeline.stages):
        raise ValueError("configuration and pipeline have different stage counts")
    caps, lats, fills, idles, eprs, cpus, cores, accs_pct, accs = [], [], [], [], [], [], [], [], []
    has_power = True
    for i, sc in enumerate(config):
        stage = pipeline.stages[i]
        cap = lat = fill = idle = epr = cps = cr = ap = ao = 0.0
        for part, share in stage_parts(sc):
            prof = stage.profile(part.variant, part.cpu, part.batch)
            if prof is None:
                raise KeyError(
                    f"no profile for stage {stage.name!r} variant {part.variant!r} "
                    f"cpu {part.cpu:g} batch {part.batch}"
                )
            cap += part.replicas * prof.throughput_rps
            lat = max(lat, prof.latency_s)
            fill = max(fill, float(part.batch - 1))
            idle += part.replicas * prof.idle_power_w
            dyn = prof.dynamic_energy_j
            if dyn is None:
                has_power = False
                dyn = 0.0
            epr += share * dyn
            cps += share * part.cpu / prof.throughput_rps
            cr += part.cpu * part.replicas
            ap += share * stage.variant(part.variant).accuracy
            ao += share * problem.stage_accuracies[i][part.variant]
        caps.append(cap)
        lats.append(lat)
        fills.append(fill)
        idles.append(idle)
        eprs.append(epr)
        cpus.append(cps)
        cores.append(cr)
        accs_pct.append(ap)
        accs.append(ao)
    method = problem.settings.accuracy_method
    if method == "multiply":
        acc = math.prod(accs)
    elif method == "average":
        acc = sum(accs) / len(accs)
    else:
        acc = sum(accs)
    return ActiveModel(
        index=index,
        config=tuple(config),
        capacity_rps=min(caps),
        stage_capacity_rps=tuple(caps),
        latency_s=sum(lats),
        batch_waits=tuple(f for f in fills if f > 0),
        idle_w=tuple(idles),
        energy_j_per_request=tuple(eprs),
        cpu_s_per_request=tuple(cpus),
        cores=tuple(cores),
        accuracy_pct=sum(accs_pct) / len(accs_pct),
        accuracy=acc,
        has_power=has_power,
    )
