#!/usr/bin/env python3
"""Load predictors: forecast quality on days 15-21 of the Twitter trace, and each predictor in the loop.

    python benchmarks/predictors.py [--trace workload.tbz2] [--weights FILE] [--delta 1]
                                    [--margins 0,5,10,20,30,50] [--out DIR]

1. **Quality.** Days 15-21 prepared as IPA's LSTM data (zero seconds dropped), damped by 8
   (as the LSTM's training data and IPA's fluctuating and steady-high windows) and undamped
   (as the bursty and steady-low windows); every 10 s each predictor sees the last twelve
   10 s bucket maxima and forecasts the peak of the next 20 s, provisioned as the loop does
   (clamped at 0, margin added, rounded). Per predictor: MAE, SMAPE (M3 form, 0-200 %),
   MAPE %, the share of intervals under-predicted and the mean shortfall (rps and % of the
   peak), for every margin.
2. **Loop.** Every predictor with ilp and energy-ilp (``weights.delta = --delta``) on
   IPA's four windows with the video example: SLO violations % and J per request.
   ``lstm`` is IPA's use of the model (the load as it comes); ``lstm-scaled`` sets the
   predictor's ``scale`` to the training damping over the window's (8 on the undamped
   windows, 1 on the others). The issue's target: on fluctuating and bursty, the LSTM
   under-predicts no more often (quality at the window's damping) and causes no more SLO
   violations than moving-window-max, at >= 5 % fewer J/request; checked at margin 0,
   and for the smallest margin at which the first two hold. A clairvoyant predictor in the
   same loop (``ipa_windows.py``'s) bounds what any forecast can save.
3. **Margin sweep.** The loop again for every ``--margins`` value; plotted as SLO
   violations against J per request, one line per predictor (needs matplotlib).

Prints tables and writes benchmarks/results/predictors.json (plots next to it).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CONFIG, RESULTS, TRACE, table, write_json  # noqa: E402

PREDICTORS = ("reactive", "max", "mean", "moving-window-max", "ar", "lstm", "lstm-scaled")
LSTMS = ("lstm", "lstm-scaled")
WINDOWS = ("bursty", "steady-low", "steady-high", "fluctuating")
TARGET_WINDOWS = ("fluctuating", "bursty")
OPTIMIZERS = ("ilp", "energy-ilp")
TEST_DAYS = (15, 21)
TRAIN_DAMPING = 8
DAMPINGS = (8, 1)
TARGET_SAVING_PCT = 5.0


def predictor_spec(label, weights, damping):
    """(plugin name, options) of a predictor label on a load damped by ``damping``."""
    if label not in LSTMS:
        return label, {}
    options = {"weights": str(Path(weights).resolve())} if weights else {}
    if label == "lstm-scaled":
        options["scale"] = TRAIN_DAMPING / (damping or 1)
    return "lstm", options


def raw_forecasts(host, x, weights, damping):
    """Each predictor's raw output (clamped at 0, as the forecaster) for every sample, and its time."""
    out, secs = {}, {}
    for label in PREDICTORS:
        name, options = predictor_spec(label, weights, damping)
        p = host.registry.create("predictor", name, options)
        start = time.perf_counter()
        out[label] = np.maximum(np.array([p.predict(row) for row in x.tolist()]), 0.0)
        secs[label] = time.perf_counter() - start
    return out, secs


def quality_part(host, series, weights, margins):
    from ipa_ext.forecasting import metrics
    from ipa_ext.forecasting.train import SECONDS_PER_DAY, clean_series, ipa_samples

    a, b = TEST_DAYS
    rows, samples = [], {}
    for damping in DAMPINGS:
        kept = clean_series(series[(a - 1) * SECONDS_PER_DAY: b * SECONDS_PER_DAY], damping)
        x, y = ipa_samples(kept)
        samples[damping] = int(len(y))
        raw, secs = raw_forecasts(host, x, weights, damping)
        for label in PREDICTORS:
            for m in margins:
                f = np.round(raw[label] * (1 + m / 100.0))  # the forecaster's margin and rounding
                rows.append({"predictor": label, "damping": damping, "margin_pct": m, **metrics.quality(y, f),
                             "predict_us": 1e6 * secs[label] / len(y)})
    return {"days": list(TEST_DAYS), "samples": samples, "rows": rows}


def loop_summary(config, host, label, weights, opt, window, margin, over, backup=None):
    from ipa_ext.run.runner import execute, prepare, run_summary

    name, options = predictor_spec(label, weights, window.params.get("damping_factor"))
    pred = {**config.section("predictor"), "name": name, "margin_pct": margin, "options": options}
    if backup:
        pred.update(backup=backup, backup_options={})
    cfg = dataclasses.replace(config, raw={**config.raw, "predictor": pred})
    prep = prepare(cfg, host, optimizer=opt, overrides=over if opt == "energy-ilp" else None)
    result, backend, _ = execute(prep, window, handle_signals=False)
    s = run_summary(prep, result, backend, window, opt)
    return {"predictor": label, "optimizer": opt, "window": window.name.split(":")[-1], "margin_pct": margin,
            "damping": window.params.get("damping_factor") or 1, "options": options,
            "slo_violation_pct": s["slo_violation_pct"], "j_per_request": s["energy"]["j_per_served_request"],
            "accuracy_pct": s["accuracy_pct_mean"], "energy_quality": s["energy"]["quality"]}


def oracle_summary(config, host, opt, window, over):
    """The same loop with ipa_windows.py's clairvoyant predictor (it knows the peak each decision
    will serve): what a perfect forecast could save with this optimizer."""
    from ipa_windows import Clairvoyant

    from ipa_ext.hookspecs import hookimpl

    interval = int(config.section("adaptation").get("interval_s", 10))
    delay = int(config.section("simulation").get("reconfiguration_delay_s", 0))
    oracle = Clairvoyant(window.rates.tolist(), interval, delay)

    class Plugin:
        @hookimpl
        def register_predictors(self, register):
            oracle.register_predictors(register)

    plugin = f"clairvoyant-{opt}-{window.name}"
    host.add_plugin(Plugin(), plugin)
    try:
        return loop_summary(config, host, "clairvoyant", None, opt, window, 0.0, over, backup="clairvoyant")
    finally:
        host.remove_plugin(plugin)


def loop_part(config, host, workloads, weights, margins, delta):
    over = {"weights": {**dict(config.settings.weights), "delta": delta}}
    runs = [loop_summary(config, host, label, weights, opt, w, m, over)
            for m in margins for opt in OPTIMIZERS for w in workloads for label in PREDICTORS]
    return runs + [oracle_summary(config, host, opt, w, over) for opt in OPTIMIZERS for w in workloads]


def _target_row(quality, runs, opt, window, label, margin):
    cell = {(r["predictor"], r["margin_pct"]): r for r in runs if r["optimizer"] == opt and r["window"] == window}
    lstm, mwm = cell[(label, margin)], cell[("moving-window-max", 0.0)]
    damping = lstm["damping"]
    q = {(r["predictor"], r["margin_pct"]): r for r in quality["rows"] if r["damping"] == damping}
    under, mwm_under = q[(label, margin)]["under_pct"], q[("moving-window-max", 0.0)]["under_pct"]
    saving = 100 * (1 - lstm["j_per_request"] / mwm["j_per_request"])
    oracle = 100 * (1 - cell[("clairvoyant", 0.0)]["j_per_request"] / mwm["j_per_request"])
    ok = {"under_ok": under <= mwm_under, "slo_ok": lstm["slo_violation_pct"] <= mwm["slo_violation_pct"] + 1e-9,
          "saving_ok": saving >= TARGET_SAVING_PCT}
    return {"optimizer": opt, "window": window, "predictor": label, "margin_pct": margin,
            "under_pct": under, "mwm_under_pct": mwm_under, "slo_pct": lstm["slo_violation_pct"],
            "mwm_slo_pct": mwm["slo_violation_pct"], "j_per_request": lstm["j_per_request"],
            "mwm_j_per_request": mwm["j_per_request"], "saving_pct": saving, "oracle_saving_pct": oracle, **ok, "met": all(ok.values())}


def target_check(quality, runs, margins):
    """The issue's target against moving-window-max at margin 0: each LSTM at margin 0, and
    at the smallest margin where it under-predicts no more often and has no more SLO violations."""
    out = []
    for opt in OPTIMIZERS:
        for w in TARGET_WINDOWS:
            for label in LSTMS:
                rows = [_target_row(quality, runs, opt, w, label, m) for m in sorted(margins)]
                safe = next((r for r in rows if r["under_ok"] and r["slo_ok"]), None)
                out.append({**rows[0], "kind": "margin 0"})
                if safe is not None and safe["margin_pct"] != 0:
                    out.append({**safe, "kind": "smallest safe margin"})
                elif safe is None and len(rows) > 1:
                    out.append({**rows[-1], "kind": "no safe margin (largest shown)"})
    return out


def plot(runs, margins, out):
    try:
        from ipa_ext.plotting import pyplot, series_styles
    except ImportError:
        return []
    try:
        plt = pyplot()
    except ImportError:
        return []
    styles = series_styles(PREDICTORS)
    files = []
    for opt in OPTIMIZERS:
        fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
        for ax, w in zip(axes.flat, WINDOWS):
            for name in PREDICTORS:
                pts = sorted(((r["margin_pct"], r["j_per_request"], r["slo_violation_pct"]) for r in runs
                              if r["optimizer"] == opt and r["window"] == w and r["predictor"] == name))
                ax.plot([p[1] for p in pts], [p[2] for p in pts], label=name, ms=4, lw=1.2, **styles[name])
                if name in ("lstm-scaled", "moving-window-max"):
                    for m, xj, ys in pts:
                        ax.annotate(f"{m:g}", (xj, ys), fontsize=6, xytext=(2, 2), textcoords="offset points")
            ax.set_title(w)
            ax.set_xlabel("J per request (estimated)")
            ax.set_ylabel("SLO violations %")
        axes[0][0].legend(fontsize=8)
        fig.suptitle(f"{opt}: predictor margin sweep ({', '.join(f'{m:g}' for m in margins)} %)")
        fig.tight_layout()
        path = out / f"predictors_margin_{opt}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def print_tables(quality, runs, target):
    for damping in DAMPINGS:
        print(f"\nforecast quality, days {quality['days'][0]}-{quality['days'][1]}, damping {damping} "
              f"({quality['samples'][damping]:,} intervals; the next 20 s peak, rounded as provisioned; margin 0):")
        rows = [r for r in quality["rows"] if r["damping"] == damping]
        print(table(["predictor", "MAE", "SMAPE %", "MAPE %", "under %", "short rps", "short %", "over rps",
                     "us/call"],
                    [[r["predictor"], r["mae"], r["smape_pct"], r["mape_pct"], r["under_pct"], r["under_mean"],
                      r["under_mean_pct"], r["over_mean"], r["predict_us"]] for r in rows if r["margin_pct"] == 0]))
        margins = sorted({r["margin_pct"] for r in rows})
        print(f"under-predicted intervals % by margin (damping {damping}):")
        print(table(["predictor", *[f"+{m:g}%" for m in margins]],
                    [[n, *[r["under_pct"] for r in rows if r["predictor"] == n]] for n in PREDICTORS]))
    for opt in OPTIMIZERS:
        print(f"\nin the loop, {opt}, margin 0: SLO violations % / J per request (estimated)")
        print(table(["predictor", *WINDOWS], [
            [n, *[next(f"{r['slo_violation_pct']:.3f} / {r['j_per_request']:.4f}" for r in runs
                       if r["optimizer"] == opt and r["window"] == w and r["predictor"] == n and r["margin_pct"] == 0)
                  for w in WINDOWS]] for n in (*PREDICTORS, "clairvoyant")]))
    print("\ntarget (an LSTM vs moving-window-max at margin 0): under-predicts no more often, no more SLO "
          f"violations, >= {TARGET_SAVING_PCT:g} % fewer J/request")
    print(table(["optimizer", "window", "predictor", "margin", "under %", "mwm under %", "SLO %", "mwm SLO %",
                 "saving %", "oracle saving %", "met", "row"],
                [[t["optimizer"], t["window"], t["predictor"], t["margin_pct"], t["under_pct"], t["mwm_under_pct"],
                  t["slo_pct"], t["mwm_slo_pct"], t["saving_pct"], t["oracle_saving_pct"],
                  "yes" if t["met"] else "no", t["kind"]] for t in target]))
    print("(oracle saving: the clairvoyant predictor's J/request against moving-window-max's, same loop and "
          "optimizer: the most any forecast can save there)")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", default=str(TRACE))
    ap.add_argument("--weights", help="LSTM weights file (default: the shipped Twitter weights)")
    ap.add_argument("--delta", type=float, default=1.0, help="energy-ilp's weights.delta (default 1)")
    ap.add_argument("--margins", default="0,5,10,20,30,50")
    ap.add_argument("--out", default=str(RESULTS))
    args = ap.parse_args()

    from ipa_ext.config.config import load_config
    from ipa_ext.host import load_plugins
    from ipa_ext.workloads import load_trace, resolve

    host = load_plugins()
    config = load_config(CONFIG)
    margins = [float(m) for m in args.margins.split(",")]
    if 0.0 not in margins:
        margins.insert(0, 0.0)
    start = time.perf_counter()
    quality = quality_part(host, load_trace(args.trace), args.weights, margins)
    t_quality = time.perf_counter() - start
    workloads = [resolve(w, None, CONFIG.parent, trace=args.trace) for w in WINDOWS]
    runs = loop_part(config, host, workloads, args.weights, margins, args.delta)
    target = target_check(quality, runs, margins)
    print_tables(quality, runs, target)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    pics = plot(runs, margins, out)
    path = write_json("predictors", {
        "trace": args.trace, "weights": args.weights or "shipped", "delta": args.delta, "margins": margins,
        "quality": quality, "loop": runs, "target": target,
        "target_met_at_margin_0": {lab: all(t["met"] for t in target if t["predictor"] == lab
                                            and t["kind"] == "margin 0") for lab in LSTMS},
        "plots": [str(p) for p in pics],
        "seconds": {"quality": t_quality, "total": time.perf_counter() - start},
    }, out / "predictors.json")
    print(f"\nwrote {path}" + "".join(f" and {p}" for p in pics))
    return 0


if __name__ == "__main__":
    sys.exit(main())
