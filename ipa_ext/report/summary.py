"""Run reports: ``summary.json``, the per-second CSV and the summary table.

Energy figures always carry their quality (``estimated`` from the profiles'
power model, or ``measured``) and source.
"""

from __future__ import annotations

import csv
import json
import math
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..adapt.log import json_safe
from ..adapt.results import RunResult
from ..backends import Backend
from ..problem.carbon import CarbonIntensity
from ..units import grams_co2
from ..workloads import Workload
from .tables import key_values


def percentile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in 0..100), None for no values."""
    if not values:
        return None
    xs = sorted(values)
    if len(xs) == 1:
        return float(xs[0])
    pos = (len(xs) - 1) * q / 100.0
    lo = int(math.floor(pos))
    hi = min(lo + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (pos - lo))


def summarize(
    *,
    result: RunResult,
    backend: Backend,
    workload: Workload | None,
    optimizer: str,
    predictor: Mapping[str, Any],
    sla_s: float,
    config_path: str | None,
    carbon: CarbonIntensity | None,
    backend_options: Mapping[str, Any] | None = None,
    adaptation: Mapping[str, Any] | None = None,
    accuracy_scoring: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The run's ``summary.json`` content.

    ``accuracy_scoring`` (``normalize_accuracy``, ``method``, ``stages``) says
    how the accuracy objective term is scored, for :func:`summary_lines`.
    """
    r = result
    summary: dict[str, Any] = {
        "config": config_path,
        "backend": backend.name,
        "backend_options": dict(backend_options or {}),
        "adaptation": dict(adaptation or {}),
        "optimizer": optimizer,
        "predictor": dict(predictor),
        "workload": workload.describe() if workload is not None else None,
        "seconds": r.seconds,
        "interrupted": r.interrupted,
        "sla_s": sla_s,
    }
    summary.update(_service(r, accuracy_scoring))
    summary["energy"] = _energy(r)
    summary["carbon_g"] = r.carbon_g if carbon is not None else None
    summary["carbon_g_per_served_request"] = (r.carbon_g / r.served if carbon is not None and r.carbon_g is not None
                                              and r.served > 0 else None)
    summary["carbon_intensity"] = carbon.source if carbon is not None else None
    summary["latency_s"] = _latency(r, backend)
    summary.update(_decisions(r))
    summary["wall_s"] = r.wall_s
    return summary


def _service(r: RunResult, accuracy_scoring: Mapping[str, Any] | None) -> dict[str, Any]:
    """Requests, SLO violations, accuracy and cores of a run."""
    viol = r.late + r.dropped
    return {
        "requests": {
            "arrived": r.arrivals,
            "served": r.served,
            "dropped": r.dropped,
            "late": r.late,
            "queued_end": r.queued_end,
        },
        "slo_violation_pct": 100.0 * viol / r.arrivals if r.arrivals > 0 else 0.0,
        "dropped_pct": 100.0 * r.dropped / r.arrivals if r.arrivals > 0 else 0.0,
        "accuracy_pct_mean": r.accuracy_pct_sum / r.served if r.served > 0 else None,
        "accuracy_objective_mean": r.accuracy_sum / r.served if r.served > 0 else None,
        "accuracy_scoring": dict(accuracy_scoring) if accuracy_scoring is not None else None,
        "core_seconds": r.core_s,
        "mean_cores": r.core_s / r.seconds if r.seconds > 0 else None,
    }


def _energy(r: RunResult) -> dict[str, Any]:
    """A run's energy in total, per stage and per request, with its quality and source."""
    energy_j = r.outcomes_energy_j
    return {
        "total_j": energy_j,
        "stages_j": dict(r.stage_energy_j) if energy_j is not None else None,
        "idle_j": r.idle_j,
        "unattributed_j": r.unattributed_j,
        "j_per_served_request": energy_j / r.served if energy_j is not None and r.served > 0 else None,
        "mean_power_w": energy_j / r.seconds if energy_j is not None and r.seconds > 0 else None,
        "quality": r.energy_quality,
        "source": r.energy_source,
    }


def _latency(r: RunResult, backend: Backend) -> dict[str, Any]:
    """Mean, percentiles (from the backend, when it keeps a distribution) and maximum latency."""
    quant = backend.latency_quantiles((0.5, 0.95, 0.99)) or {}
    return {
        "mean": r.latency_sum_s / r.served if r.served > 0 else None,
        "p50": quant.get(0.5),
        "p95": quant.get(0.95),
        "p99": quant.get(0.99),
        "max": r.latency_max_s,
    }


def _decisions(r: RunResult) -> dict[str, Any]:
    """How many decisions, reconfigurations and solves a run made, and how long decisions took."""
    times = [s.decision_time_s for s in r.steps if s.decision_time_s is not None]
    return {
        "decisions": sum(1 for s in r.steps if s.feasible is not None),
        "infeasible_decisions": r.infeasible,
        "first_infeasible_reason": r.first_infeasible_reason,
        "reconfigurations": sum(1 for s in r.steps if s.changed),
        "optimizer_calls": r.optimizer_calls,
        "memo_hits": r.memo_hits,
        "decision_time_s": {
            "p50": percentile(times, 50),
            "p99": percentile(times, 99),
            "mean": sum(times) / len(times) if times else None,
            "max": max(times) if times else None,
        },
    }


def safe_name(name: str) -> str:
    """A file-system friendly version of a workload or policy name."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_") or "x"


def write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented JSON (NaN and infinities as null)."""
    path.write_text(json.dumps(json_safe(obj), indent=2) + "\n", encoding="utf-8")


def predicted_per_second(result: RunResult, n: int) -> list[float | None]:
    """The predicted rate in force during each second (None before the first decision)."""
    out: list[float | None] = [None] * n
    for s in result.steps:
        if s.predicted_rps is None:
            continue
        for t in range(int(s.start_s), min(int(s.end_s), n)):
            out[t] = s.predicted_rps
    return out


def write_seconds_csv(path: Path, backend: Backend, result: RunResult,
                      carbon: CarbonIntensity | None = None) -> int:
    """Write the per-second CSV; returns the number of rows (0 when the backend keeps none)."""
    series = backend.per_second()
    if series is None:
        return 0
    if hasattr(series, "write_csv"):  # a live backend's own table of real requests (the local backend's)
        return int(series.write_csv(path, predicted_per_second(result, len(series))))
    cols = series.cols
    n = len(series)
    configs = backend.configurations() if hasattr(backend, "configurations") else []  # type: ignore[attr-defined]
    stages = series.stages
    pred = predicted_per_second(result, n)
    # the simulation's energy is the profiles' power model: say so in the column names
    header = ["time_s", "arrivals", "served", "dropped", "late", "queued", "predicted_rps",
              "capacity_rps", "cores", "power_w_estimated", "energy_j_estimated", "accuracy_pct",
              "latency_mean_s", "latency_max_s"]
    header += [f"{s}_energy_j_estimated" for s in stages]
    if carbon is not None:
        header.append("carbon_g_estimated")
    for s in stages:
        header += [f"{s}_variant", f"{s}_cpu", f"{s}_batch", f"{s}_replicas"]
    cfg_text: dict[int, str] = {}
    for i, cfg in enumerate(configs):
        cfg_text[i] = ",".join(f"{sc.variant},{sc.cpu:g},{sc.batch},{sc.replicas}" for sc in cfg)
    g = "%.6g"
    models = series.models
    nst = len(stages)
    # per configuration: the constant part of each row
    fixed: dict[int, tuple[str, str, str, str, Any]] = {}
    for m in models:
        fixed[m.index] = (g % m.capacity_rps, g % m.total_cores, g % m.accuracy_pct, cfg_text.get(m.index, ""), m)
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(",".join(header) + "\n")
        a_col, s_col, d_col, l_col, q_col = (cols[k] for k in ("arrivals", "served", "dropped", "late", "queued"))
        ls_col, lm_col = cols["latency_sum_s"], cols["latency_max_s"]
        ci = series.config_index
        t0 = series.start_s
        lines = []
        for i in range(n):
            served = s_col[i]
            p = pred[i]
            cap, cores, acc, cfg, m = fixed[ci[i]]
            stage_e = [m.idle_w[k] + served * m.energy_j_per_request[k] for k in range(nst)]
            e = sum(stage_e)
            row = [
                "%d" % (t0 + i), g % a_col[i], g % served, g % d_col[i], g % l_col[i], g % q_col[i],
                "" if p is None else g % p, cap, cores, g % e, g % e,
                acc if served > 0 else "",
                g % (ls_col[i] / served) if served > 0 else "",
                g % lm_col[i] if served > 0 else "",
            ]
            row += [g % x for x in stage_e]
            if carbon is not None:
                row.append(g % grams_co2(e, carbon.at(t0 + i)))
            row.append(cfg)
            lines.append(",".join(row))
            if len(lines) >= 10000:
                f.write("\n".join(lines) + "\n")
                lines.clear()
        if lines:
            f.write("\n".join(lines) + "\n")
    return n


def read_seconds_csv(path: Path) -> dict[str, list[Any]]:
    """Read a per-second CSV back into columns (numbers where they parse)."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    out: dict[str, list[Any]] = {h: [] for h in header}
    for row in body:
        for h, v in zip(header, row):
            try:
                out[h].append(float(v) if v != "" else None)
            except ValueError:
                out[h].append(v)
    return out


def _f(v: Any, fmt: str = ".4g") -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return format(v, fmt)
    return str(v)


def summary_lines(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(label, value) pairs of the summary table."""
    e = s["energy"]
    q = f" ({e['quality']}, {e['source']})" if e.get("quality") else ""
    req = s["requests"]
    lat = s["latency_s"]
    dt = s["decision_time_s"]
    wl = s.get("workload") or {}
    rows = [
        ("workload", f"{wl.get('name', 'n/a')} ({wl.get('seconds', 0)} s, {wl.get('requests', 0)} requests)"),
        ("optimizer", str(s["optimizer"])),
        ("predictor", f"{s['predictor'].get('name')} (backup {s['predictor'].get('backup')}, "
                      f"margin {s['predictor'].get('margin_pct'):g}%)"),
        ("simulated", f"{_f(s['seconds'], 'g')} s" + (f" (interrupted by {s['interrupted']})" if s.get('interrupted') else "")),
        ("mean accuracy", f"{_f(s['accuracy_pct_mean'], '.2f')} % (objective term "
                          f"{_f(s['accuracy_objective_mean'], '.3f')}{_scoring(s.get('accuracy_scoring'))})"),
        ("core-seconds", f"{_f(s['core_seconds'], '.1f')} (mean {_f(s['mean_cores'], '.2f')} cores)"),
        ("SLO violations", f"{_f(s['slo_violation_pct'], '.2f')} % (late {_f(req['late'], '.0f')}, "
                           f"dropped {_f(req['dropped'], '.0f')} of {_f(req['arrived'], '.0f')})"),
        ("dropped", f"{_f(req['dropped'], '.0f')} ({_f(s['dropped_pct'], '.2f')} %)"),
        ("energy", f"{_f(e['total_j'], '.1f')} J{q}" + (
            f", idle {_f(e['idle_j'], '.1f')} J, unattributed {_f(e['unattributed_j'], '.1f')} J"
            if e.get("idle_j") is not None else "")),
        ("J per served request", _f(e["j_per_served_request"], ".4f")),
        ("mean power", f"{_f(e['mean_power_w'], '.2f')} W"),
    ]
    if s.get("carbon_g") is not None:
        label = f"{e['quality']}, " if e.get("quality") else ""
        rows.append(("carbon", f"{_f(s['carbon_g'], '.3f')} gCO2 ({label}intensity {s.get('carbon_intensity')})"))
        rows.append(("gCO2 per served request", _f(s.get("carbon_g_per_served_request"), ".3g")))
    rows += [
        ("latency", f"mean {_f(lat['mean'], '.3f')} s, p50 {_f(lat['p50'], '.3f')} s, "
                    f"p99 {_f(lat['p99'], '.3f')} s, SLA {_f(s['sla_s'], '.3f')} s"),
        ("decisions", f"{s['decisions']} ({s['infeasible_decisions']} infeasible, "
                      f"{s['reconfigurations']} changes, {s['optimizer_calls']} optimizer calls, "
                      f"{s['memo_hits']} memoised)"),
        ("decision time", f"p50 {_f(_ms(dt['p50']), '.2f')} ms, p99 {_f(_ms(dt['p99']), '.2f')} ms"),
    ]
    return rows


def accuracy_term_note(normalize_accuracy: bool, method: str, stages: int) -> str:
    """How the accuracy objective term is scored, in words (it is not a percentage)."""
    if normalize_accuracy:
        text = "rank-normalised: in each stage the least accurate variant scores 0, the most accurate 1"
    else:
        text = "each stage's accuracy % / 100"
    if stages > 1:
        text += {"sum": f"; summed over {stages} stages", "average": f"; averaged over {stages} stages",
                 "multiply": f"; multiplied over {stages} stages"}.get(method, "")
    return text


def _scoring(sc: Mapping[str, Any] | None) -> str:
    if not sc:
        return ""
    return ", " + accuracy_term_note(bool(sc.get("normalize_accuracy")), str(sc.get("method")), int(sc.get("stages", 1)))


def _ms(v: float | None) -> float | None:
    return None if v is None else v * 1e3


def summary_table(s: Mapping[str, Any]) -> str:
    """The summary as the text table the commands print."""
    return key_values(summary_lines(s))
