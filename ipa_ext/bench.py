"""The energy-efficiency benchmark: every policy on every workload, one table.

Each (workload, policy) cell is one adaptation run on the simulation backend
with the same config, predictor and workload; only the optimizer differs. A
cell writes its log, per-second CSV and summary under
``OUT/<workload>/<policy>/``; the grid writes ``results.csv``,
``results.json`` and ``results.md``, and PNG plots when matplotlib is
installed (the ``plot`` extra).
"""

from __future__ import annotations

import csv
import json
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from .adapter import read_log
from .config import Config
from .host import PluginHost
from .reports import write_json, write_seconds_csv
from .runner import execute, prepare, run_summary
from .workloads import Workload

RESULT_COLUMNS = (
    "workload", "policy", "status", "accuracy_pct", "slo_violation_pct", "dropped", "late",
    "served", "j_per_request", "energy_j", "mean_power_w", "mean_cores", "core_seconds",
    "carbon_g", "latency_p99_s", "decision_p50_ms", "decision_p99_ms", "reconfigurations",
    "energy_quality", "note",
)


def safe_name(name: str) -> str:
    """A file-system friendly version of a workload or policy name."""
    return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name).strip("_") or "x"


@dataclass
class Cell:
    workload: str
    policy: str
    summary: dict[str, Any]
    dir: Path

    def row(self) -> dict[str, Any]:
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
            "latency_p99_s": s["latency_s"]["p99"],
            "decision_p50_ms": None if dt["p50"] is None else dt["p50"] * 1e3,
            "decision_p99_ms": None if dt["p99"] is None else dt["p99"] * 1e3,
            "reconfigurations": s["reconfigurations"],
            "energy_quality": e["quality"],
            "note": note,
        }


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
) -> list[Cell]:
    """Run every policy on every workload; policies are validated before anything runs.

    ``overrides`` replace problem settings for every policy (e.g. the weights).
    """
    prepared = {p: prepare(config, host, optimizer=p, base=base, overrides=overrides) for p in policies}
    cells: list[Cell] = []
    total = len(policies) * len(workloads)
    n = 0
    for wl in workloads:
        for p in policies:
            if should_stop is not None and should_stop():
                return cells
            n += 1
            d = out / safe_name(wl.name) / safe_name(p)
            d.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            prep = prepared[p]
            result, backend, _ = execute(prep, wl, log_path=d / "adaptation.jsonl")
            summary = run_summary(prep, result, backend, wl, p)
            write_seconds_csv(d / "seconds.csv", backend, result, config.carbon)
            write_json(d / "summary.json", summary)
            cells.append(Cell(wl.name, p, summary, d))
            if on_cell is not None:
                on_cell(n, total, wl.name, p, time.perf_counter() - start)
            if result.interrupted:
                return cells
    return cells


def write_results(cells: Sequence[Cell], out: Path, meta: Mapping[str, Any]) -> dict[str, Path]:
    rows = [c.row() for c in cells]
    paths = {"csv": out / "results.csv", "json": out / "results.json", "md": out / "results.md"}
    with open(paths["csv"], "w", encoding="utf-8", newline="") as f:
        w = csv.DictWriter(f, fieldnames=RESULT_COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if v is None else v) for k, v in r.items()})
    write_json(paths["json"], {"meta": dict(meta), "results": rows})
    paths["md"].write_text(markdown(rows, meta), encoding="utf-8")
    return paths


def _fmt(v: Any, nd: int = 2) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


MD_COLUMNS = (
    ("policy", "policy", 0), ("accuracy %", "accuracy_pct", 2), ("SLO viol. %", "slo_violation_pct", 2),
    ("dropped", "dropped", 0), ("J/request", "j_per_request", 3), ("energy J", "energy_j", 0),
    ("power W", "mean_power_w", 1), ("cores", "mean_cores", 2), ("p99 latency s", "latency_p99_s", 3),
    ("decision p50 ms", "decision_p50_ms", 2), ("decision p99 ms", "decision_p99_ms", 2),
)


def markdown(rows: Sequence[Mapping[str, Any]], meta: Mapping[str, Any]) -> str:
    """One Markdown table per workload."""
    lines = ["# Energy-efficiency benchmark", ""]
    for k, v in meta.items():
        lines.append(f"- {k}: {v}")
    lines.append("")
    quality = {r.get("energy_quality") for r in rows if r.get("energy_quality")}
    if quality:
        lines += [f"Energy figures are {', '.join(sorted(quality))}.", ""]
    for wl in dict.fromkeys(r["workload"] for r in rows):
        lines += [f"## {wl}", ""]
        lines.append("| " + " | ".join(h for h, _, _ in MD_COLUMNS) + " |")
        lines.append("|" + "|".join("---" for _ in MD_COLUMNS) + "|")
        for r in rows:
            if r["workload"] != wl:
                continue
            if r["status"] == "n/a":
                cells = [r["policy"], f"n/a: {r['note']}"] + [""] * (len(MD_COLUMNS) - 2)
            else:
                cells = [_fmt(r[k], nd) if nd or k == "policy" else _fmt(
                    round(r[k]) if isinstance(r[k], float) else r[k]) for _, k, nd in MD_COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- plots


def plot(cells: Sequence[Cell], out: Path) -> list[Path] | str:
    """PNG plots; returns their paths, or why there are none."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (pip install 'ipa-ext[plot]')"
    paths: list[Path] = []
    by_wl: dict[str, list[Cell]] = {}
    for c in cells:
        by_wl.setdefault(c.workload, []).append(c)
    for wl, group in by_wl.items():
        fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
        ax_load, ax_power, ax_acc, ax_cores = axes
        drawn_load = False
        first_pred: list | None = None
        for c in group:
            if c.row()["status"] == "n/a":
                continue
            lines = read_log(c.dir / "adaptation.jsonl")
            t = [l["interval"]["start_s"] for l in lines]
            dur = [max(l["interval"]["end_s"] - l["interval"]["start_s"], 1e-9) for l in lines]
            if not drawn_load:
                ax_load.step(t, [l["interval"]["arrivals"] / d for l, d in zip(lines, dur)], where="post",
                             color="black", lw=1.2, label="load (arrivals)")
                drawn_load = True
            pred = [l.get("predicted_rps") for l in lines]
            if first_pred is None or pred != first_pred:  # identical predictions: one line
                ax_load.step(t, pred, where="post", lw=0.9, ls="--",
                             label="predicted" if first_pred is None else f"predicted ({c.policy})")
                first_pred = first_pred or pred
            ax_power.step(t, [(l.get("energy") or {}).get("power_w") for l in lines], where="post", lw=1,
                          label=c.policy)
            ax_acc.step(t, [l["accuracy"]["pct"] for l in lines], where="post", lw=1, label=c.policy)
            ax_cores.step(t, [l["interval"]["cores"] for l in lines], where="post", lw=1, label=c.policy)
        ax_load.set_ylabel("requests/s")
        ax_power.set_ylabel("power W (estimated)")
        ax_acc.set_ylabel("accuracy %")
        ax_cores.set_ylabel("cores")
        ax_cores.set_xlabel("time s")
        ax_load.set_title(f"{wl}: one line per policy")
        for ax in axes:
            ax.grid(alpha=0.3)
        ax_load.legend(fontsize=7, ncol=3)
        ax_power.legend(fontsize=7, ncol=4)
        fig.tight_layout()
        p = out / f"{safe_name(wl)}.png"
        fig.savefig(p, dpi=110)
        plt.close(fig)
        paths.append(p)
    fig, ax = plt.subplots(figsize=(8, 6))
    markers = "osD^v<>xP*"
    wls = list(by_wl)
    policies = list(dict.fromkeys(c.policy for c in cells))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    color = {p: colors[i % len(colors)] for i, p in enumerate(policies)}
    shown: set[str] = set()
    for i, wl in enumerate(wls):
        for c in by_wl[wl]:
            r = c.row()
            if r["status"] != "ok" or r["j_per_request"] is None or r["accuracy_pct"] is None:
                continue
            ax.scatter(r["j_per_request"], r["accuracy_pct"], marker=markers[i % len(markers)], s=45,
                       color=color[c.policy], label=c.policy if c.policy not in shown else None)
            shown.add(c.policy)
    for i, wl in enumerate(wls):
        ax.scatter([], [], marker=markers[i % len(markers)], color="gray", label=wl)
    ax.set_xlabel("J per served request (estimated)")
    ax.set_ylabel("mean accuracy %")
    ax.set_title("energy per request vs accuracy")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    p = out / "energy_vs_accuracy.png"
    fig.savefig(p, dpi=110)
    plt.close(fig)
    paths.append(p)
    return paths


def load_results(path: Path) -> list[dict[str, Any]]:
    return json.loads(Path(path).read_text())["results"]
