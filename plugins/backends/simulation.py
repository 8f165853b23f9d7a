"""The ``simulation`` backend: replays a workload through :class:`ipa_ext.simulate.simulator.PipelineSimulator`.

Its clock is simulated: ``advance`` runs the next seconds of the workload
through the running configuration as fast as the CPU allows. Options (the
config's ``simulation:`` section, overridden by ``backend.options``):

=========================  ========  ====================================================
option                     default   meaning
=========================  ========  ====================================================
drop_limit_s               the SLA   requests that cannot finish within it are dropped
                                     (IPA's ``drop_limit`` is accepted as an alias)
reconfiguration_delay_s    5         seconds before an applied configuration takes effect
max_batch_wait_s           1         batching timeout (MLServer's ``max_batch_time``)
record_seconds             true      keep per-second records (for the per-second CSV)
service_times              spread    ``spread``: each batch's service time drawn between the
                                     profile's p50 and p99 where the profile has a p50
                                     (measured profiles); ``profiled``: the p99 for every
                                     batch, as IPA's simulator does
seed                       0         seed of those draws (runs with one seed repeat exactly)
arrivals                   poisson   how requests arrive within a second, for the waits at
                                     the replicas in ``spread`` mode: ``poisson`` or
                                     ``uniform`` (the local load generator's spreads)
=========================  ========  ====================================================

Energy comes from the profiles' power model and is labelled ``estimated``.
"""

from __future__ import annotations

import threading
from typing import Any, Sequence

from ipa_ext import hookimpl
from ipa_ext.backends import Backend, IntervalOutcome, RunContext
from ipa_ext.config.numeric import option
from ipa_ext.errors import ConfigError
from ipa_ext.model import Configuration
from ipa_ext.simulate.simulator import ARRIVALS, SERVICE_TIMES, PipelineSimulator

DEFAULT_RECONFIGURATION_DELAY_S = 5.0



def _number(name: str, value: Any, *, positive: bool = False) -> float:
    return option(name, value, positive=positive, minimum=0)


class SimulationBackend(Backend):
    """Replays the workload through a :class:`PipelineSimulator` on a simulated clock."""

    name = "simulation"
    live = False

    def __init__(
        self,
        drop_limit_s: float | None = None,
        reconfiguration_delay_s: float = DEFAULT_RECONFIGURATION_DELAY_S,
        max_batch_wait_s: float = 1.0,
        record_seconds: bool = True,
        drop_limit: float | None = None,
        service_times: str = "spread",
        seed: int = 0,
        arrivals: str = "poisson",
    ) -> None:
        if drop_limit_s is not None and drop_limit is not None:
            raise ValueError("give drop_limit_s or IPA's drop_limit, not both")
        limit = drop_limit_s if drop_limit_s is not None else drop_limit
        self.drop_limit_s = None if limit is None else _number("drop_limit_s", limit, positive=True)
        self.reconfiguration_delay_s = _number("reconfiguration_delay_s", reconfiguration_delay_s)
        self.max_batch_wait_s = _number("max_batch_wait_s", max_batch_wait_s)
        if not isinstance(record_seconds, bool):
            raise ValueError(f"record_seconds must be true or false, got {record_seconds!r}")
        self.record_seconds = record_seconds
        if service_times not in SERVICE_TIMES:
            raise ValueError(f"service_times must be one of {', '.join(SERVICE_TIMES)}, got {service_times!r}")
        self.service_times = service_times
        self.seed = option("seed", seed, integer=True, minimum=0)
        if arrivals not in ARRIVALS:
            raise ValueError(f"arrivals must be one of {', '.join(ARRIVALS)}, got {arrivals!r}")
        self.arrivals = arrivals
        self.sim: PipelineSimulator | None = None
        self.rates: Sequence[int] = ()

    def start(self, context: RunContext) -> None:
        if context.workload is None:
            raise ConfigError("the simulation backend needs a workload to replay", where="workload")
        if context.initial is None:
            raise ConfigError("the simulation backend needs the starting configuration", path=context.config_path,
                              where="initial")
        self.rates = context.workload.rates.tolist()
        self.sim = PipelineSimulator(
            context.problem,
            context.initial,
            drop_limit_s=self.drop_limit_s,
            reconfiguration_delay_s=self.reconfiguration_delay_s,
            max_batch_wait_s=self.max_batch_wait_s,
            record_seconds=self.record_seconds,
            service_times=self.service_times,
            seed=self.seed,
            arrivals=self.arrivals,
        )

    def _sim(self) -> PipelineSimulator:
        if self.sim is None:
            raise RuntimeError("simulation backend used before start()")
        return self.sim

    def now_s(self) -> float:
        return float(self._sim().t)

    def finished(self) -> bool:
        return self._sim().t >= len(self.rates)

    def observe_rates(self, duration_s: float) -> Sequence[float]:
        t = self._sim().t
        lo = max(0, t - int(round(duration_s)))
        return self.rates[lo:t]  # type: ignore[return-value]

    def current_configuration(self) -> Configuration:
        return self._sim().target.config

    def apply(self, config: Configuration) -> tuple[bool, ...]:
        self._sim().schedule(config)
        return tuple(True for _ in config)

    def advance(self, duration_s: float, stop: threading.Event | None = None) -> IntervalOutcome:
        sim = self._sim()
        start = sim.t
        end = min(len(self.rates), start + max(1, int(round(duration_s))))
        tot = sim.run(self.rates[start:end])
        names = sim.stage_names

        def by_stage(values: list[float]) -> dict[str, float]:
            return dict(zip(names, values))

        served = tot.served
        has_power = all(m.has_power for m in sim.models)
        return IntervalOutcome(
            start_s=float(start),
            end_s=float(end),
            arrivals=tot.arrivals,
            served=served,
            dropped=tot.dropped,
            late=tot.late,
            queued=sim.queued,
            busy_cpu_s_by_stage=by_stage(tot.stage_busy_cpu_s),
            reserved_core_s_by_stage=by_stage(tot.stage_core_s),
            energy_j_by_stage=by_stage(tot.stage_energy_j) if has_power else None,
            energy_quality="estimated" if has_power else None,
            energy_source="profiles" if has_power else None,
            accuracy_pct=tot.acc_pct_sum / served if served > 0 else None,
            accuracy=tot.acc_sum / served if served > 0 else None,
            latency_mean_s=tot.lat_sum / served if served > 0 else None,
            latency_max_s=tot.lat_max if served > 0 else None,
        )

    def per_second(self) -> Any:
        return self._sim().series

    def latency_quantiles(self, qs: Sequence[float]) -> dict[float, float | None] | None:
        h = self._sim().histogram
        return {q: h.quantile(q) for q in qs}

    def configurations(self) -> list[Configuration]:
        """Every configuration that ran or was applied, by index (see ``SecondSeries.config_index``)."""
        return list(self._sim().configs)


@hookimpl
def register_backends(register) -> None:
    register("simulation", SimulationBackend)
