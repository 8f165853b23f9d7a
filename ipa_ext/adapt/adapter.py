"""The adaptation loop, backend-agnostic, as IPA's adapter runs it: one step (decide, apply, record) per interval.

What a step does, how faults and signals are handled and what is memoised: docs/adaptation.md.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from dataclasses import replace
from typing import Any, Callable, Mapping

from ..backends import Backend, IntervalOutcome, RunContext
from ..errors import ConfigError, TransientError
from ..model import Configuration, changes
from ..optimizers import Decision, Optimizer
from ..problem.carbon import CarbonIntensity
from ..problem.problem import Problem
from .choice import DecisionMemo, depends_on_current, least_change
from .forecast import Forecaster
from .interval_energy import (
    EnergyTotals,
    IntervalEnergy,
    IntervalMeter,
    energy_record,
    interval_carbon_g,
    modelled_energy,
)
from .log import AdaptationLog, json_safe, read_log
from .results import AdapterSettings, RunResult, StepSummary
from .step import Step, configuration_record, decision_record, interval_record

__all__ = [
    "AdaptationLog", "Adapter", "AdapterSettings", "DecisionMemo", "IntervalEnergy", "IntervalMeter",
    "RunResult", "StepSummary", "depends_on_current", "json_safe", "least_change", "modelled_energy",
    "read_log",
]

log = logging.getLogger("ipa_ext.adapter")


class Adapter:
    """Runs the adaptation loop over a backend: one :class:`~ipa_ext.adapt.step.Step` per interval."""

    def __init__(
        self,
        problem: Problem,
        optimizer: Optimizer,
        backend: Backend,
        forecaster: Forecaster,
        settings: AdapterSettings | None = None,
        *,
        log: AdaptationLog | None = None,
        meter: IntervalMeter | None = None,
        carbon: CarbonIntensity | None = None,
        on_step: Callable[[float], None] | None = None,
        on_record: Callable[[Mapping[str, Any]], None] | None = None,
        on_fault: Callable[[str, TransientError], None] | None = None,
    ) -> None:
        self.problem = problem
        self.optimizer = optimizer
        self.backend = backend
        self.forecaster = forecaster
        self.settings = settings or AdapterSettings()
        self.log = log
        self.meter = meter if backend.live else None
        self.carbon = carbon
        self.on_step = on_step
        self.on_record = on_record
        self.on_fault = on_fault
        self.memo = DecisionMemo()
        self._problems: dict[float, Problem] = {}
        self.stop_event = threading.Event()
        self._signal: str | None = None

    # ------------------------------------------------------------------ pieces

    def problem_at(self, t_s: float) -> Problem:
        """The problem at time ``t_s``: a carbon-intensity trace changes the carbon term over time
        (whether ``epsilon`` comes from the config's weights or from the optimizer's options)."""
        c = self.carbon
        if c is None or len(c.times_s) < 2:
            return self.problem
        g = c.at(t_s)
        p = self._problems.get(g)
        if p is None:
            p = Problem(
                self.problem.pipeline,
                replace(self.problem.settings, carbon_intensity_g_per_kwh=g),
                self.problem.objectives,
            )
            self._problems[g] = p
        return p

    def decide(self, problem: Problem, rate_rps: float, current: Configuration) -> tuple[Decision, bool]:
        """The optimizer's decision, memoised when the optimizer is deterministic."""
        k = self.settings.num_candidates or problem.settings.num_state_limit
        memo = self.settings.memoize and bool(getattr(self.optimizer, "deterministic", False))
        key: tuple[Any, ...] = ()
        if memo:
            key = (id(problem), rate_rps, k, current if depends_on_current(self.optimizer, problem) else None)
            hit = self.memo.get(key)
            if hit is not None:
                return hit, True
        decision = self.optimizer.optimize(problem, rate_rps, current, k)
        if memo:
            self.memo.put(key, decision)
        return decision, False

    # ------------------------------------------------------------------ run

    def _on_signal(self, signum: int, frame: Any) -> None:
        self._signal = signal.Signals(signum).name
        self.stop_event.set()

    def run(self, context: RunContext, *, handle_signals: bool = True) -> RunResult:
        """Run until the backend is finished or a stop is requested; always closes the log."""
        previous: dict[int, Any] = {}
        if handle_signals and threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous[sig] = signal.signal(sig, self._on_signal)
        start_wall = time.perf_counter()
        result = RunResult()
        try:
            self._run(context, result)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if self.log is not None:
                self.log.close()
            self.backend.close()
            result.interrupted = self._signal
            result.wall_s = time.perf_counter() - start_wall
            result.memo_hits = self.memo.hits
        return result

    def _fault(self, phase: str, exc: TransientError, result: RunResult, then: str) -> dict[str, Any]:
        """Log a transient fault as one line, count it, tell ``on_fault``; returns its log entry."""
        result.faults += 1
        log.warning("%s; %s", exc, then)
        if self.on_fault is not None:
            self.on_fault(phase, exc)
        return {"phase": phase, "component": getattr(exc, "component", "") or "backend", "message": str(exc)}

    def _start(self, context: RunContext, result: RunResult) -> bool:
        """Start the backend, retrying every interval while it reports transient faults.

        False when a stop was requested before it started."""
        while True:
            try:
                self.backend.start(context)
                return True
            except TransientError as exc:
                self._fault("start", exc, result, f"retrying in {self.settings.interval_s:g} s")
                if self.stop_event.wait(self.settings.interval_s):
                    return False

    def _run(self, context: RunContext, result: RunResult) -> None:
        stage_names = self.problem.pipeline.stage_names
        if not self._start(context, result):
            result.stage_energy_j = {n: 0.0 for n in stage_names}
            return
        totals = EnergyTotals(stage_names, carbon=self.carbon is not None)
        running: Configuration | None = context.initial
        index = 0
        while not self.stop_event.is_set() and not self.backend.finished():
            step = Step(index, self.backend.now_s(), running, running, tuple(False for _ in stage_names))
            if self.meter is not None:
                self.meter.begin_interval(step.key)
            running = self._decide_and_apply(step, result)
            record = decision_record(step, self.forecaster, self.settings.monitoring_duration_s)
            record.update(configuration_record(step, stage_names))
            outcome = self.backend.advance(self.settings.interval_s, self.stop_event)
            self._record(step, record, outcome, result, totals)
            index += 1
        totals.finish(result)

    # ------------------------------------------------------------------ one step

    def _decide_and_apply(self, step: Step, result: RunResult) -> Configuration | None:
        """Observe, forecast, decide and apply; a transient fault keeps what runs.

        Returns the configuration running after the step."""
        running = step.current
        phase = "configuration"
        try:
            step.current = step.config = running = self.backend.current_configuration()
            if step.index > 0:
                phase = "observe"
                self._observe_and_decide(step, result)
                if step.decision is not None and step.decision.feasible:
                    phase = "apply"
                    running = self._apply(step)
        except TransientError as exc:
            # keep what runs; nothing (more) was applied
            step.config, step.evaluation, step.n_changes = step.current, None, 0
            step.success = tuple(False for _ in step.success)
            step.fault = self._fault(phase, exc, result, "keeping the current configuration, retrying next interval")
        return running

    def _observe_and_decide(self, step: Step, result: RunResult) -> None:
        """Read the rate history, forecast, and get the optimizer's decision; choose by least change."""
        current = step.current
        assert current is not None
        step.history = self.backend.observe_rates(self.settings.monitoring_duration_s)
        step.forecast = forecast = self.forecaster.forecast(step.history)
        problem = self.problem_at(step.time_s)
        decision, step.memo_hit = self.decide(problem, forecast.rate_rps, current)
        step.decision = decision
        if not step.memo_hit:
            result.optimizer_calls += 1
        if decision.feasible:
            step.chosen_rank = least_change(decision.candidates, current)
            step.evaluation = decision.candidates[step.chosen_rank]
            step.n_changes = changes(step.evaluation.config, current)
            return
        result.infeasible += 1
        if result.first_infeasible_reason is None:
            result.first_infeasible_reason = decision.reason
        if not any(getattr(sc, "parts", None) for sc in current):
            try:
                step.evaluation = problem.evaluate(current, forecast.rate_rps)
            except (ConfigError, KeyError, ValueError):
                step.evaluation = None

    def _apply(self, step: Step) -> Configuration:
        """Apply the chosen configuration; returns what runs now (new stages that took it, old ones otherwise)."""
        assert step.evaluation is not None and step.current is not None
        step.success = tuple(self.backend.apply(step.evaluation.config))
        step.config = step.evaluation.config
        return tuple(n if ok else o for n, o, ok in zip(step.config, step.current, step.success))

    def _record(
        self, step: Step, record: dict[str, Any], outcome: IntervalOutcome, result: RunResult, totals: EnergyTotals
    ) -> None:
        """Take the interval's energy, complete the step's log line, write it and count the step."""
        record["interval"] = interval_record(outcome)
        energy = self.meter.end_interval(step.key, outcome) if self.meter is not None else modelled_energy(outcome)
        record["energy"] = energy_record(energy, outcome) if energy is not None else None
        totals.add(energy, result)
        if self.carbon is not None and energy is not None:
            grams = interval_carbon_g(self.carbon, outcome, energy)
            record["carbon_g"] = grams
            totals.add_carbon(grams)
        record["accuracy"] = {"pct": outcome.accuracy_pct, "objective": outcome.accuracy, "source": "profiles"}
        if outcome.extra:
            record["backend"] = dict(outcome.extra)
        result.add(outcome)
        if self.log is not None:
            self.log.write(record)
        if self.on_record is not None:
            self.on_record(record)
        result.steps.append(step.summary(outcome))
        if self.on_step is not None:
            self.on_step(outcome.end_s)
