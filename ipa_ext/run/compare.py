"""The energy-efficiency benchmark: every policy on every workload, one table.

Each (workload, policy) cell is one adaptation run on the simulation backend
(or a backend that replays the workload in real time, such as ``local``)
with the same config, predictor and workload; only the optimizer differs. A
cell writes its log, per-second CSV and summary under
``OUT/<workload>/<policy>/``; the grid writes ``results.csv``,
``results.json`` and ``results.md``, and PNG plots when matplotlib is
installed (the ``plot`` extra, :mod:`ipa_ext.report.bench_plots`). A cell that
repeats an earlier policy of its workload (same configuration in every
interval, or the same figures) is marked ``same_as`` and explained under its
table; energy columns carry their quality.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..config.config import Config
from ..host import PluginHost
from ..report.summary import safe_name, write_json, write_seconds_csv
from ..workloads import Workload
from .runner import execute, prepare, run_summary

RESULT_COLUMNS = (
    "workload", "policy", "status", "same_as", "accuracy_pct", "slo_violation_pct", "dropped", "late",
    "served", "j_per_request", "energy_j", "mean_power_w", "mean_cores", "core_seconds",
    "carbon_g", "carbon_g_per_request", "latency_p99_s", "decision_p50_ms", "decision_p99_ms",
    "reconfigurations", "energy_quality", "note", "optimizer_notes",
)

FIGURE_KEYS = (
    "accuracy_pct", "slo_violation_pct", "dropped", "late", "served", "j_per_request", "energy_j",
    "mean_power_w", "mean_cores", "core_seconds", "carbon_g", "carbon_g_per_request", "latency_p99_s",
    "reconfigurations",
)
"""A cell's figures apart from decision times: two cells with equal ones read as the same row."""


@dataclass
class Cell:
    """One (workload, policy) run: its summary, folder and what it decided."""

    workload: str
    policy: str
    summary: dict[str, Any]
    dir: Path
    decisions_digest: str = ""
    """A hash of the configuration in force in every interval, in order."""
    intervals: int = 0
    notes: tuple[str, ...] = ()
    """The optimizer's own notes on its decisions (e.g. weights it ignores), without repeats."""
    same_as: str | None = None
    """An earlier policy of the same workload that decided the same (or gave the same figures)."""
    same_kind: str | None = None
    """``decisions`` (the same configuration in every interval) or ``figures`` (same results only)."""

    def row(self) -> dict[str, Any]:
        """The cell's row of the results table."""
        s = self.summary
        e = s["energy"]
        dt = s["decision_time_s"]
        decisions = s["decisions"]
        status, note = "ok", ""
        if decisions and s["infeasible_decisions"] == decisions:
            status = "n/a"
            note = s.get("first_infeasible_reason") or "no feasible decision"
        elif s["infeasible_decisions"]:
            note = f"{s['infeasible_decisions']} of {decisions} decisions infeasible"
        if s.get("interrupted"):
            status, note = "interrupted", f"stopped by {s['interrupted']}"
        return {
            "workload": self.workload,
            "policy": self.policy,
            "status": status,
            "same_as": self.same_as,
            "accuracy_pct": s["accuracy_pct_mean"],
            "slo_violation_pct": s["slo_violation_pct"],
            "dropped": s["requests"]["dropped"],
            "late": s["requests"]["late"],
            "served": s["requests"]["served"],
            "j_per_request": e["j_per_served_request"],
            "energy_j": e["total_j"],
            "mean_power_w": e["mean_power_w"],
            "mean_cores": s["mean_cores"],
            "core_seconds": s["core_seconds"],
            "carbon_g": s.get("carbon_g"),
            "carbon_g_per_request": s.get("carbon_g_per_served_request"),
            "latency_p99_s": s["latency_s"]["p99"],
            "decision_p50_ms": None if dt["p50"] is None else dt["p50"] * 1e3,
            "decision_p99_ms": None if dt["p99"] is None else dt["p99"] * 1e3,
            "reconfigurations": s["reconfigurations"],
            "energy_quality": e["quality"],
            "note": note,
            "optimizer_notes": "; ".join(self.notes),
        }


class _Recorder:
    """Collects, from the log lines of one run, a digest of its configurations and the optimizer's notes."""

    def __init__(self) -> None:
        self.hash = hashlib.sha256()
        self.count = 0
        self.notes: dict[str, None] = {}

    def __call__(self, record: Mapping[str, Any]) -> None:
        self.hash.update(json.dumps(record.get("config"), sort_keys=True).encode())
        self.hash.update(b"\n")
        self.count += 1
        info = (record.get("decision") or {}).get("info") or {}
        for n in info.get("notes") or ():
            self.notes.setdefault(str(n), None)


def mark_same(cells: Sequence[Cell]) -> None:
    """Set ``same_as`` on every cell that repeats an earlier policy of its workload.

    Same configuration in every interval: ``decisions``; otherwise equal
    figures (:data:`FIGURE_KEYS`): ``figures``. A cell points at the first
    such policy, never at one that is itself marked.
    """
    originals: dict[str, list[Cell]] = {}
    for c in cells:
        c.same_as = c.same_kind = None
        row = c.row()
        if row["status"] != "ok":
            continue
        refs = originals.setdefault(c.workload, [])
        for ref in refs:
            if c.decisions_digest and c.decisions_digest == ref.decisions_digest and c.intervals == ref.intervals:
                c.same_as, c.same_kind = ref.policy, "decisions"
                break
            if _same_figures(row, ref.row()):
                c.same_as, c.same_kind = ref.policy, "figures"
                break
        if c.same_as is None:
            refs.append(c)


def _same_figures(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    for k in FIGURE_KEYS:
        x, y = a.get(k), b.get(k)
        if x is None or y is None:
            if x is not y:
                return False
        elif not math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-9):
            return False
    return True


def run_grid(
    config: Config,
    host: PluginHost,
    policies: Sequence[str],
    workloads: Sequence[Workload],
    out: Path,
    *,
    base: str | None = None,
    on_cell: Callable[[int, int, str, str, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    overrides: Mapping[str, Any] | None = None,
    backend: str | None = None,
    backend_options: Mapping[str, Any] | None = None,
) -> list[Cell]:
    """Run every policy on every workload; policies are validated before anything runs.

    ``overrides`` replace problem settings for every policy (e.g. the weights);
    ``backend`` and ``backend_options`` choose the backend as ``ipa-ext adapt`` does.
    Cells that repeat an earlier policy of their workload are marked (:func:`mark_same`).
    """
    prepared = {p: prepare(config, host, optimizer=p, base=base, overrides=overrides, backend=backend,
                           backend_options=backend_options) for p in policies}
    cells: list[Cell] = []
    grid = [(wl, p) for wl in workloads for p in policies]
    for n, (wl, p) in enumerate(grid, start=1):
        if should_stop is not None and should_stop():
            break
        d = out / safe_name(wl.name) / safe_name(p)
        d.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        prep = prepared[p]
        rec = _Recorder()
        result, backend, _ = execute(prep, wl, log_path=d / "adaptation.jsonl", on_record=rec)
        summary = run_summary(prep, result, backend, wl, p)
        report = getattr(backend, "run_report", None)
        if callable(report):
            summary["backend_report"] = report()
        write_seconds_csv(d / "seconds.csv", backend, result, config.carbon)
        write_json(d / "summary.json", summary)
        cells.append(Cell(wl.name, p, summary, d, rec.hash.hexdigest(), rec.count, tuple(rec.notes)))
        if on_cell is not None:
            on_cell(n, len(grid), wl.name, p, time.perf_counter() - start)
        if result.interrupted:
            break
    mark_same(cells)
    return cells


def write_results(cells: Sequence[Cell], out: Path, meta: Mapping[str, Any]) -> dict[str, Path]:
    """``results.csv``, ``results.json`` and ``results.md`` of a grid; returns their paths."""
    mark_same(cells)
    rows = [c.row() for c in cells]
    paths = {"csv": out / "results.csv", "json": out / "results.json", "md": out / "results.md"}
    with open(paths["csv"], "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RESULT_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    write_json(paths["json"], {"meta": dict(meta), "results": rows})
    paths["md"].write_text(markdown(rows, meta, explanations(cells)), encoding="utf-8")
    return paths


def explanations(cells: Sequence[Cell]) -> dict[tuple[str, str], str]:
    """Per (workload, policy), why a marked cell repeats its reference."""
    out: dict[tuple[str, str], str] = {}
    for c in cells:
        if c.same_as is None:
            continue
        if c.same_kind == "decisions":
            text = (f"{c.policy} chose the same configuration as {c.same_as} in all {c.intervals} intervals, "
                    "so every figure but the decision time is the same.")
        else:
            text = (f"{c.policy} chose other configurations than {c.same_as} but ends with the same figures "
                    "(decision times aside).")
        if c.notes:
            text += " " + " ".join(f"{c.policy}: {n}." if not n.endswith(".") else f"{c.policy}: {n}"
                                   for n in c.notes)
        out[(c.workload, c.policy)] = text
    return out


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


MD_COLUMNS = (
    ("policy", "policy", 0), ("accuracy %", "accuracy_pct", 2), ("SLO viol. %", "slo_violation_pct", 2),
    ("dropped", "dropped", 0), ("J/request", "j_per_request", 3), ("gCO2/request", "carbon_g_per_request", -3),
    ("energy J", "energy_j", 0),
    ("power W", "mean_power_w", 1), ("cores", "mean_cores", 2), ("p99 latency s", "latency_p99_s", 3),
    ("decision p50 ms", "decision_p50_ms", 2), ("decision p99 ms", "decision_p99_ms", 2),
)
ENERGY_KEYS = ("j_per_request", "carbon_g_per_request", "energy_j", "mean_power_w")
"""Columns whose header (or, when a table mixes qualities, every value) says measured or estimated."""


def _cell_text(r: Mapping[str, Any], key: str, nd: int, quality_in_cells: bool) -> str:
    v = r[key]
    if key == "policy":
        return str(v)
    if nd < 0:  # significant digits: grams per request are small numbers
        text = "n/a" if v is None else f"{v:.{-nd}g}"
    else:
        text = _fmt(v, nd) if nd else _fmt(round(v) if isinstance(v, float) else v)
    if quality_in_cells and key in ENERGY_KEYS and v is not None and r.get("energy_quality"):
        text += f" ({r['energy_quality']})"
    return text


def _table(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One workload's Markdown table: energy columns labelled with their quality, repeats marked."""
    qualities = {r.get("energy_quality") for r in rows if r["status"] != "n/a"} - {None}
    one = next(iter(qualities)) if len(qualities) == 1 else None
    marked = any(r.get("same_as") for r in rows)
    columns = [c for c in MD_COLUMNS  # grams only where a carbon section gave an intensity
               if c[1] != "carbon_g_per_request" or any(r.get(c[1]) is not None for r in rows)]
    heads = []
    for h, k, _ in columns:
        if k in ENERGY_KEYS and one:
            h = f"{h} ({one})"
        heads.append(h)
        if k == "policy" and marked:
            heads.append("same as")
    lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---" for _ in heads) + "|"]
    for r in rows:
        if r["status"] == "n/a":
            cells = [r["policy"], f"n/a: {r['note']}"] + [""] * (len(heads) - 2)
        else:
            cells = [_cell_text(r, k, nd, one is None) for _, k, nd in columns]
            if marked:
                cells.insert(1, f"= {r['same_as']}" if r.get("same_as") else "")
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any],
             why: Mapping[tuple[str, str], str] | None = None) -> str:
    """One Markdown table per workload; under each, why a policy repeats another (``why``)."""
    lines = ["# Energy-efficiency benchmark", ""]
    for k, v in meta.items():
        lines.append(f"- {k}: {v}")
    lines.append("")
    quality = {r.get("energy_quality") for r in rows if r.get("energy_quality")}
    if quality:
        lines += [f"Energy figures are {', '.join(sorted(quality))}; each energy column says which.", ""]
    for wl in dict.fromkeys(r["workload"] for r in rows):
        group = [r for r in rows if r["workload"] == wl]
        lines += [f"## {wl}", ""]
        lines += _table(group)
        notes = [(r, (why or {}).get((wl, r["policy"]))) for r in group if r.get("same_as")]
        if notes:
            lines += ["", "Policies that repeat another (`same as`):", ""]
            for r, text in notes:
                lines.append(f"- **{r['policy']} = {r['same_as']}**: {text or 'the same figures.'}")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- plots


def plot(cells: Sequence[Cell], out: Path) -> list[Path] | str:
    """PNG plots; returns their paths, or why there are none (see :mod:`ipa_ext.report.bench_plots`)."""
    from ..report.bench_plots import plot_grid

    return plot_grid(cells, out)


def load_results(path: Path) -> list[dict[str, Any]]:
    """Read a grid's ``results.json`` back (its rows)."""
    return json.loads(Path(path).read_text())["results"]
