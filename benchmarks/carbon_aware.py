#!/usr/bin/env python3
"""Carbon-aware policies over one grid day on two zones: clover, energy-ilp with epsilon, and ipa.

    python benchmarks/carbon_aware.py [--zones US-CAL-CISO,DE-LU]
                                      [--policies clover,energy-ilp:epsilon=1000,energy-ilp:epsilon=3000,ipa]
                                      [--workload bursty] [--date 2023-06-01] [--alpha 10] [--out DIR]

Each zone's hourly 2023 Electricity Maps export (../shared/data/carbon-intensity) drives the
video example over IPA's bursty window (20 minutes) with one grid day squeezed into it
(``hours_per_run_hour: 72``), from the zone's local midnight on ``--date``. The example's
weights, with accuracy weighted ``--alpha`` (10 by default, as in docs/carbon.md, so that there
is accuracy to trade for carbon). For each zone and policy it prints accuracy, SLO violations,
J/request, gCO2/request, mean cores and mean power (energy and carbon estimated from the
profiles), and with the ``plot`` extra draws, per zone, the intensity over the day above each
policy's chosen accuracy and power per interval. A policy that is not registered is skipped
and named. Writes benchmarks/results/carbon_aware.json (``--json``) and the plots under ``--out``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CONFIG, RESULTS, SHARED, config_with, table, write_json  # noqa: E402

CARBON_DIR = SHARED / "data" / "carbon-intensity"
LOCAL_MIDNIGHT_UTC = {"US-CAL-CISO": ("T07:00Z", 0), "DE-LU": ("T22:00Z", -1)}
"""Local midnight in June as a UTC hour, and the day it falls on relative to the local date."""
HOURS_PER_RUN_HOUR = 72


def start_of(zone: str, date: str) -> str:
    import datetime as dt

    hour, shift = LOCAL_MIDNIGHT_UTC.get(zone, ("T00:00Z", 0))
    day = dt.date.fromisoformat(date) + dt.timedelta(days=shift)
    return f"{day.isoformat()}{hour}"


def run_policy(cfg_path: Path, host, policy: str, workload_name: str) -> dict:
    """One simulated run: its summary and, per interval, time, intensity, accuracy, power and cores."""
    from ipa_ext.config.config import load_config
    from ipa_ext.run.runner import execute, prepare, run_summary
    from ipa_ext.workloads import resolve

    config = load_config(cfg_path)
    workload = resolve(workload_name, None, CONFIG.parent)
    prep = prepare(config, host, optimizer=policy)
    series: list[dict] = []

    def on_record(r) -> None:
        if r.get("step", 0) == 0:
            return
        e, acc = r.get("energy") or {}, r.get("accuracy") or {}
        t = float(r["time_s"])
        series.append({"time_s": t, "g_per_kwh": config.carbon.at(t), "accuracy_pct": acc.get("pct"),
                       "power_w": e.get("power_w"), "cores": (r.get("interval") or {}).get("cores")})

    result, backend, _ = execute(prep, workload, handle_signals=False, on_record=on_record)
    return {"summary": run_summary(prep, result, backend, workload, policy), "series": series}


def row_of(zone: str, policy: str, s: dict) -> dict:
    e = s["energy"]
    return {"zone": zone, "policy": policy, "accuracy_pct": s["accuracy_pct_mean"],
            "slo_violation_pct": s["slo_violation_pct"], "j_per_request": e["j_per_served_request"],
            "g_per_request": s.get("carbon_g_per_served_request"), "carbon_g": s.get("carbon_g"),
            "mean_cores": s["mean_cores"], "mean_power_w": e["mean_power_w"], "energy_quality": e["quality"]}


def plot_zone(zone: str, runs: dict[str, dict], out: Path) -> Path | None:
    """Intensity over the day above each policy's accuracy and power per interval."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    first = next(iter(runs.values()))["series"]
    hours = [p["time_s"] * HOURS_PER_RUN_HOUR / 3600 for p in first]
    axes[0].step(hours, [p["g_per_kwh"] for p in first], where="post", color="black")
    axes[0].set_ylabel("gCO2/kWh (direct)")
    axes[0].set_title(f"{zone}: grid intensity and each policy's choice over one day")
    for policy, run in runs.items():
        h = [p["time_s"] * HOURS_PER_RUN_HOUR / 3600 for p in run["series"]]
        axes[1].step(h, [p["accuracy_pct"] for p in run["series"]], where="post", label=policy)
        axes[2].step(h, [p["power_w"] for p in run["series"]], where="post", label=policy)
    axes[1].set_ylabel("accuracy % (chosen)")
    axes[2].set_ylabel("power W (estimated)")
    axes[2].set_xlabel("grid hour of the day (local)")
    axes[1].legend(fontsize="small")
    fig.tight_layout()
    path = out / f"carbon_aware_{zone}.png"
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--zones", default="US-CAL-CISO,DE-LU")
    ap.add_argument("--policies", default="clover,energy-ilp:epsilon=1000,energy-ilp:epsilon=3000,ipa")
    ap.add_argument("--workload", default="bursty")
    ap.add_argument("--date", default="2023-06-01", help="the local day (default 2023-06-01)")
    ap.add_argument("--alpha", type=float, default=10.0, help="accuracy weight (default 10)")
    ap.add_argument("--out", default=str(RESULTS / "carbon_aware"), help="folder for the plots")
    ap.add_argument("--json", default=str(RESULTS / "carbon_aware.json"), help="where the JSON goes")
    args = ap.parse_args()

    from ipa_ext.host import load_plugins

    host = load_plugins()
    known = set(host.registry.names("optimizer"))
    policies = [p for p in args.policies.split(",") if p.split(":")[0] in known]
    for p in args.policies.split(","):
        if p not in policies:
            print(f"skipping {p}: no optimizer of that name is registered")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows, plots, runs_json = [], [], {}
    with tempfile.TemporaryDirectory() as tmp:
        for zone in args.zones.split(","):
            trace = CARBON_DIR / f"{zone}_2023_hourly.csv"
            carbon = {"trace": str(trace), "start": start_of(zone, args.date),
                      "hours_per_run_hour": HOURS_PER_RUN_HOUR}
            cfg = config_with(Path(tmp) / zone, carbon=carbon, weights_changes={"alpha": args.alpha})
            runs = {p: run_policy(cfg, host, p, args.workload) for p in policies}
            rows += [row_of(zone, p, r["summary"]) for p, r in runs.items()]
            runs_json[zone] = {"carbon": carbon, "series": {p: r["series"] for p, r in runs.items()}}
            pic = plot_zone(zone, runs, out)
            if pic is not None:
                plots.append(str(pic))
    quality = sorted({r["energy_quality"] for r in rows})
    print(f"{args.workload} window, one grid day from local midnight {args.date}, alpha {args.alpha:g}; "
          f"energy and carbon {', '.join(quality)} (from the profiles):")
    print(table(["zone", "policy", "accuracy %", "SLO viol. %", "J/request", "gCO2/request", "cores", "power W"],
                [[r["zone"], r["policy"], r["accuracy_pct"], r["slo_violation_pct"], r["j_per_request"],
                  r["g_per_request"], r["mean_cores"], r["mean_power_w"]] for r in rows]))
    path = write_json("carbon_aware", {"args": vars(args), "rows": rows, "runs": runs_json, "plots": plots},
                      Path(args.json))
    print(f"wrote {path}" + "".join(f"\nwrote {p}" for p in plots))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
