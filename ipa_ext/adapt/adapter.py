"""The adaptation loop, backend-agnostic, as IPA's adapter runs it.

One step per ``interval_s``, on the backend's clock:

1. read the request-rate history (``monitoring_duration_s``) from the backend;
2. forecast the rate (:class:`~ipa_ext.adapt.forecast.Forecaster`: 10 s max buckets,
   backup predictor while history is short, ``margin_pct``);
3. ask the optimizer for the k best candidates (``num_state_limit``);
4. choose the candidate with the fewest variant and batch changes from the
   current configuration (ties: the better objective);
5. apply it through the backend;
6. let the interval pass and take its energy: from the energy meter when one is
   configured and the backend is live, otherwise the backend's modelled energy;
7. append one JSON line to the adaptation log.

When no configuration is feasible the current one stays and the line says why.
The first line (step 0) covers the interval before the first decision, under
the initial configuration, so every second of the run is in exactly one line.

A live backend's transient faults (:class:`~ipa_ext.errors.TransientError`:
Prometheus or the API server down) never end the run: at start the loop tries
again every interval; in a step it keeps the running configuration, logs one
line, records the fault in the step's line (``fault``) and tries again next
interval. A :class:`~ipa_ext.errors.ConfigError` ends the run. The energy
window of a step opens when the step begins, so decision time is measured too.
SIGINT and SIGTERM stop the loop after the current step; the log is flushed
and closed either way.

Decisions of a deterministic optimizer are memoised by (predicted rate,
current configuration); the configuration is part of the key only when the
decision can depend on it (``baseline_mode``, or an optimizer that says so).
"""

from __future__ import annotations

import json
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Protocol, Sequence, TextIO

from ..backends import Backend, IntervalOutcome, RunContext
from ..errors import ConfigError, TransientError
from ..model import Configuration, changes
from ..optimize.pool import CandidatePool
from ..optimizers import Decision, Optimizer
from ..problem.carbon import CarbonIntensity
from ..problem.problem import Evaluation, Problem
from .forecast import Forecast, Forecaster

JOULES_PER_KWH = 3.6e6

log = logging.getLogger("ipa_ext.adapter")


@dataclass(frozen=True)
class AdapterSettings:
    """Loop settings (config section ``adaptation``; monitoring from ``predictor``)."""

    interval_s: float = 10.0
    monitoring_duration_s: float = 120.0
    memoize: bool = True
    num_candidates: int | None = None
    """k; defaults to the problem's ``num_state_limit``."""

    def __post_init__(self) -> None:
        if not (self.interval_s >= 1 and math.isfinite(self.interval_s)):
            raise ValueError(f"interval_s must be >= 1, got {self.interval_s!r}")
        if not (self.monitoring_duration_s >= 1 and math.isfinite(self.monitoring_duration_s)):
            raise ValueError(f"monitoring_duration_s must be >= 1, got {self.monitoring_duration_s!r}")
        if self.num_candidates is not None and self.num_candidates < 1:
            raise ValueError(f"num_candidates must be >= 1, got {self.num_candidates!r}")


# --------------------------------------------------------------------------- energy seam


@dataclass(frozen=True)
class IntervalEnergy:
    """Energy of one interval, per stage and in total, and where the figure came from."""

    total_j: float
    by_stage_j: Mapping[str, float]
    quality: str
    """``measured`` or ``estimated``."""
    source: str
    idle_j: float | None = None
    unattributed_j: float | None = None

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "total_j": self.total_j,
            "stages_j": dict(self.by_stage_j),
            "quality": self.quality,
            "source": self.source,
        }
        if self.idle_j is not None:
            d["idle_j"] = self.idle_j
        if self.unattributed_j is not None:
            d["unattributed_j"] = self.unattributed_j
        return d


class IntervalMeter(Protocol):
    """Measures the energy of one adaptation interval on a live backend.

    The energy meter (energy sources, attribution to stages by CPU-time share)
    plugs in here: ``begin_interval`` before the interval, ``end_interval``
    after it with the backend's outcome (whose ``busy_cpu_s_by_stage`` drives
    the attribution).
    """

    def begin_interval(self, key: str) -> None: ...

    def end_interval(self, key: str, outcome: IntervalOutcome) -> IntervalEnergy: ...


def modelled_energy(outcome: IntervalOutcome) -> IntervalEnergy | None:
    """The backend's own energy figure for an interval (None when it has none)."""
    if outcome.energy_j_by_stage is None:
        return None
    return IntervalEnergy(
        total_j=float(sum(outcome.energy_j_by_stage.values())),
        by_stage_j=dict(outcome.energy_j_by_stage),
        quality=outcome.energy_quality or "estimated",
        source=outcome.energy_source or "backend",
    )


# --------------------------------------------------------------------------- choice and memo


def least_change(candidates: Sequence[Evaluation], current: Configuration | None) -> int:
    """Index of the candidate with the fewest variant and batch changes (IPA's rule).

    Ties go to the earlier (better) candidate; without a current configuration
    the first candidate wins.
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    if isinstance(candidates, CandidatePool):  # vectorised over the pool's option arrays
        return candidates.least_change(current)
    if current is None:
        return 0
    best, best_n = 0, None
    for i, c in enumerate(candidates):
        if len(c.config) != len(current):
            continue
        n = changes(c.config, current)
        if best_n is None or n < best_n:
            best, best_n = i, n
    return best


def depends_on_current(optimizer: Optimizer, problem: Problem) -> bool:
    """Whether a decision can depend on the current configuration (for the memo key)."""
    flag = getattr(optimizer, "uses_current", None)
    if flag is not None:
        return bool(flag)
    return problem.settings.baseline_mode is not None


class DecisionMemo:
    """Decisions keyed by (problem, rate, k, current configuration when it matters)."""

    def __init__(self) -> None:
        self._d: dict[tuple[Any, ...], Decision] = {}
        self.hits = 0
        self.misses = 0

    def get(self, key: tuple[Any, ...]) -> Decision | None:
        d = self._d.get(key)
        if d is None:
            self.misses += 1
        else:
            self.hits += 1
        return d

    def put(self, key: tuple[Any, ...], decision: Decision) -> None:
        self._d[key] = decision

    def __len__(self) -> int:
        return len(self._d)


# --------------------------------------------------------------------------- the log


def json_safe(x: Any) -> Any:
    """JSON-safe values: NaN and infinities become None, keys become strings."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


class AdaptationLog:
    """Appends one JSON object per line; flushes at most every ``flush_s`` and on close."""

    def __init__(self, path: str | Path, *, flush_s: float = 1.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: TextIO | None = open(self.path, "w", encoding="utf-8")
        self.flush_s = flush_s
        self._last_flush = time.monotonic()
        self.lines = 0

    def write(self, record: Mapping[str, Any]) -> None:
        if self._f is None:
            raise ValueError("adaptation log is closed")
        try:
            text = json.dumps(record, separators=(",", ":"), allow_nan=False)
        except ValueError:  # NaN or infinity somewhere: write null instead
            text = json.dumps(json_safe(dict(record)), separators=(",", ":"), allow_nan=False)
        self._f.write(text + "\n")
        self.lines += 1
        now = time.monotonic()
        if now - self._last_flush >= self.flush_s:
            self._f.flush()
            self._last_flush = now

    def close(self) -> None:
        if self._f is not None:
            self._f.flush()
            self._f.close()
            self._f = None


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Read an adaptation log back (one dict per line)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


# --------------------------------------------------------------------------- the loop


@dataclass
class StepSummary:
    """The few facts of a step a run summary needs."""

    start_s: float
    end_s: float
    predicted_rps: float | None
    decision_time_s: float | None
    memo_hit: bool
    feasible: bool | None
    changed: bool


@dataclass
class RunResult:
    """What :meth:`Adapter.run` returns besides the log."""

    steps: list[StepSummary] = field(default_factory=list)
    outcomes_energy_j: float | None = 0.0
    energy_quality: str | None = None
    energy_source: str | None = None
    stage_energy_j: dict[str, float] = field(default_factory=dict)
    idle_j: float | None = None
    """Measured energy attributed to idle (None for modelled energy)."""
    unattributed_j: float | None = None
    carbon_g: float | None = None
    optimizer_calls: int = 0
    memo_hits: int = 0
    infeasible: int = 0
    first_infeasible_reason: str | None = None
    faults: int = 0
    """Transient faults the loop rode out (at start and in steps)."""
    interrupted: str | None = None
    """The signal that stopped the run early, if one did."""
    wall_s: float = 0.0
    seconds: float = 0.0
    arrivals: float = 0.0
    served: float = 0.0
    dropped: float = 0.0
    late: float = 0.0
    queued_end: float = 0.0
    core_s: float = 0.0
    accuracy_pct_sum: float = 0.0
    accuracy_sum: float = 0.0
    latency_sum_s: float = 0.0
    latency_max_s: float | None = None

    def add(self, o: IntervalOutcome) -> None:
        """Accumulate one interval's outcome."""
        self.seconds += o.duration_s
        self.arrivals += o.arrivals
        self.served += o.served
        self.dropped += o.dropped
        self.late += o.late
        self.queued_end = o.queued
        self.core_s += sum(o.reserved_core_s_by_stage.values())
        if o.served > 0:
            if o.accuracy_pct is not None:
                self.accuracy_pct_sum += o.accuracy_pct * o.served
            if o.accuracy is not None:
                self.accuracy_sum += o.accuracy * o.served
            if o.latency_mean_s is not None:
                self.latency_sum_s += o.latency_mean_s * o.served
        if o.latency_max_s is not None:
            self.latency_max_s = max(self.latency_max_s or 0.0, o.latency_max_s)


class Adapter:
    """Runs the adaptation loop over a backend (see the module docstring)."""

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

    def _energy(self, key: str, outcome: IntervalOutcome) -> IntervalEnergy | None:
        if self.meter is not None:
            return self.meter.end_interval(key, outcome)
        return modelled_energy(outcome)

    def _carbon_g(self, outcome: IntervalOutcome, energy: IntervalEnergy | None) -> float | None:
        if self.carbon is None or energy is None:
            return None
        c = self.carbon
        if len(c.times_s) < 2:
            return energy.total_j * c.at(outcome.start_s) / JOULES_PER_KWH
        # intensity may change inside the interval: weight by time (energy spread evenly)
        dur = outcome.end_s - outcome.start_s
        if dur <= 0:
            return 0.0
        edges = [outcome.start_s] + [t for t in c.times_s if outcome.start_s < t < outcome.end_s] + [outcome.end_s]
        g = sum(c.at(a) * (b - a) for a, b in zip(edges, edges[1:])) / dur
        return energy.total_j * g / JOULES_PER_KWH

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
        backend = self.backend
        stage_names = self.problem.pipeline.stage_names
        if not self._start(context, result):
            result.stage_energy_j = {n: 0.0 for n in stage_names}
            return
        interval = self.settings.interval_s
        step = 0
        totals_j = {n: 0.0 for n in stage_names}
        total_j = 0.0
        energy_ok = True
        carbon_total: float | None = 0.0 if self.carbon is not None else None
        last_config: Configuration | None = context.initial

        while not self.stop_event.is_set() and not backend.finished():
            t = backend.now_s()
            key = f"step-{step}"
            if self.meter is not None:
                self.meter.begin_interval(key)
            record: dict[str, Any] = {"step": step, "time_s": t}
            evaluation: Evaluation | None = None
            decision: Decision | None = None
            memo_hit = False
            success: tuple[bool, ...] = tuple(False for _ in stage_names)
            forecast: Forecast | None = None
            history: Sequence[float] = ()
            current = last_config
            config = current
            chosen_rank = None
            n_changes = 0
            fault: dict[str, Any] | None = None
            phase = "configuration"
            try:
                current = backend.current_configuration()
                last_config = config = current
                if step > 0:
                    phase = "observe"
                    history = backend.observe_rates(self.settings.monitoring_duration_s)
                    forecast = self.forecaster.forecast(history)
                    problem = self.problem_at(t)
                    decision, memo_hit = self.decide(problem, forecast.rate_rps, current)
                    if not memo_hit:
                        result.optimizer_calls += 1
                    if decision.feasible:
                        chosen_rank = least_change(decision.candidates, current)
                        evaluation = decision.candidates[chosen_rank]
                        n_changes = changes(evaluation.config, current)
                        phase = "apply"
                        success = tuple(backend.apply(evaluation.config))
                        config = evaluation.config
                        # what runs now: the new stages that were applied, the old ones otherwise
                        last_config = tuple(n if ok else o for n, o, ok in zip(config, current, success))
                    else:
                        result.infeasible += 1
                        if result.first_infeasible_reason is None:
                            result.first_infeasible_reason = decision.reason
                        if not any(getattr(sc, "parts", None) for sc in current):
                            try:
                                evaluation = problem.evaluate(current, forecast.rate_rps)
                            except (ConfigError, KeyError, ValueError):
                                evaluation = None
            except TransientError as exc:
                # keep what runs; nothing (more) was applied
                config, evaluation, n_changes = current, None, 0
                success = tuple(False for _ in stage_names)
                fault = self._fault(phase, exc, result, "keeping the current configuration, retrying next interval")
            if step == 0 and fault is None:
                record["decision"] = {"kind": "initial"}
            if forecast is not None:
                record["monitored"] = {
                    "window_s": self.settings.monitoring_duration_s,
                    "seconds": len(history),
                    "buckets_rps": list(forecast.buckets_rps),
                    "last_rps": float(history[-1]) if len(history) else None,
                }
                record["predicted_rps"] = forecast.rate_rps
                record["prediction"] = {
                    "predictor": forecast.predictor,
                    "backup": forecast.backup,
                    "raw_rps": forecast.raw_rps,
                    "margin_pct": self.forecaster.margin_pct,
                }
            if decision is not None:
                record["decision"] = {
                    "kind": "optimizer",
                    "optimizer": decision.optimizer,
                    "feasible": decision.feasible,
                    "reason": decision.reason,
                    "decision_time_s": decision.decision_time_s,
                    "memoised": memo_hit,
                    "candidates": len(decision.candidates),
                    "chosen_rank": chosen_rank,
                    "changes": n_changes,
                    "config_changed": fault is None and evaluation is not None and config != current,
                }
                if decision.info:
                    record["decision"]["info"] = dict(decision.info)
            elif fault is not None:
                record["decision"] = {"kind": "fault"}
            if fault is not None:
                record["fault"] = fault
            record["config"] = (
                {n: _stage_dict(sc) for n, sc in zip(stage_names, config)} if config is not None else None
            )
            record["change_successful"] = list(success)
            if evaluation is not None:
                record["objective"] = {
                    "value": evaluation.objective,
                    "terms": dict(evaluation.terms),
                    "weighted": dict(evaluation.weighted),
                    "latency_s": evaluation.latency_s,
                    "sla_s": evaluation.sla_s,
                    "violations": list(evaluation.violations),
                }
            outcome = backend.advance(interval, self.stop_event)
            energy = self._energy(key, outcome)
            record["interval"] = {
                "start_s": outcome.start_s,
                "end_s": outcome.end_s,
                "arrivals": outcome.arrivals,
                "served": outcome.served,
                "dropped": outcome.dropped,
                "late": outcome.late,
                "queued": outcome.queued,
                "slo_violation_pct": _pct(outcome.slo_violations, outcome.arrivals),
                "latency_mean_s": outcome.latency_mean_s,
                "latency_max_s": outcome.latency_max_s,
                "cores": (sum(outcome.reserved_core_s_by_stage.values()) / outcome.duration_s
                          if outcome.duration_s > 0 else None),
            }
            if energy is not None:
                e = energy.as_dict()
                e["power_w"] = energy.total_j / outcome.duration_s if outcome.duration_s > 0 else None
                # per request: over the served requests, or the arrivals where a live
                # backend does not observe completions
                basis, requests = "served", outcome.served
                if not math.isfinite(requests):
                    basis, requests = "arrivals", outcome.arrivals
                ok = math.isfinite(requests) and requests > 0
                e["j_per_request"] = energy.total_j / requests if ok else None
                e["stages_j_per_request"] = {
                    n: (float(j) / requests if ok else None) for n, j in energy.by_stage_j.items()
                }
                e["requests_basis"] = basis
                record["energy"] = e
                for n in stage_names:
                    totals_j[n] += float(energy.by_stage_j.get(n, 0.0))
                total_j += energy.total_j
                if energy.idle_j is not None:
                    result.idle_j = (result.idle_j or 0.0) + energy.idle_j
                if energy.unattributed_j is not None:
                    result.unattributed_j = (result.unattributed_j or 0.0) + energy.unattributed_j
                result.energy_quality = _merge_label(result.energy_quality, energy.quality)
                result.energy_source = _merge_label(result.energy_source, energy.source)
            else:
                energy_ok = False
                record["energy"] = None
            cg = self._carbon_g(outcome, energy)
            if cg is not None and carbon_total is not None:
                record["carbon_g"] = cg
                carbon_total += cg
            record["accuracy"] = {
                "pct": outcome.accuracy_pct,
                "objective": outcome.accuracy,
                "source": "profiles",
            }
            if outcome.extra:
                record["backend"] = dict(outcome.extra)
            result.add(outcome)
            if self.log is not None:
                self.log.write(record)
            if self.on_record is not None:
                self.on_record(record)
            result.steps.append(
                StepSummary(
                    outcome.start_s,
                    outcome.end_s,
                    forecast.rate_rps if forecast is not None else None,
                    decision.decision_time_s if decision is not None else None,
                    memo_hit,
                    decision.feasible if decision is not None else None,
                    n_changes > 0 or (evaluation is not None and config != current),
                )
            )
            if self.on_step is not None:
                self.on_step(outcome.end_s)
            step += 1
        result.stage_energy_j = totals_j
        result.outcomes_energy_j = total_j if energy_ok else None
        result.carbon_g = carbon_total if energy_ok else None


def _pct(part: float, whole: float) -> float | None:
    """``100 * part / whole``; 0 with no requests, None when the requests were not observed (NaN)."""
    if not math.isfinite(whole):
        return None
    return 100.0 * part / whole if whole > 0 else 0.0


def _merge_label(old: str | None, new: str) -> str:
    if old is None or old == new:
        return new
    parts = old.split("+")
    return old if new in parts else old + "+" + new


def _stage_dict(sc: Any) -> dict[str, Any]:
    return sc.as_dict()


def iter_log(path: str | Path) -> Iterable[dict[str, Any]]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)
