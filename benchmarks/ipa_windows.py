#!/usr/bin/env python3
"""The energy-efficiency benchmark on IPA's four Twitter windows with the video example.

    python benchmarks/ipa_windows.py [--trace workload.tbz2] [--deltas 0.003,0.01,0.03,0.1,0.3,1]
                                     [--delta D] [--carbon ZONE|none] [--out DIR]

1. **Grid.** Every policy (ipa, fa2-low, fa2-high, rim, ms, infaas, vpa, infadapter,
   plus energy-ilp, q-learning, clover and cocktail when plugins register them) on bursty,
   steady-low, steady-high and fluctuating: ``ipa-ext bench``'s tables, CSV, JSON and plots
   under ``--out``. The energy-aware optimizers run with ``weights.delta = --delta``. Each
   window sees one grid day of ``--carbon``'s zone (CAISO by default, from local midnight on
   1 June 2023, 72 grid hours per run hour), which prices the gCO2/request column and is the
   intensity clover decides with.
2. **Energy target.** For each delta of the sweep, the energy-weighted optimizer
   (energy-ilp when registered, else brute-force, the same problem solved exhaustively)
   against ``ipa``: at least 15 % fewer J per request, accuracy within 2 points and no
   more SLO violations, on at least 3 of the 4 windows.
3. **Floor.** A per-second oracle: the least power that serves each second's arrivals
   with a feasible configuration, reconfigured instantly with no queueing or drops.
   Its J per request bounds what any policy can save on these profiles, so a window where
   ``ipa`` is within 15 % of the floor cannot meet the target.
4. **Loop oracle.** IPA's loop as configured (10 s interval, 5 s reconfiguration delay,
   the same simulator), with a clairvoyant predictor: each decision provisions for the
   largest arrival rate of the seconds its configuration will serve, and the
   energy-weighted optimizer with only the power term picks the least power for it. A policy bound to that loop
   that provisions for the load it will see cannot save more than this without risking
   SLO violations.

The windows are the copies shipped in the package unless ``--trace`` names the trace to cut
them from. Prints tables and writes benchmarks/results/ipa_windows.json.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import CONFIG, RESULTS, config_with, exact_base, table, write_json  # noqa: E402

WINDOWS = ("bursty", "steady-low", "steady-high", "fluctuating")
BASELINES = ("ipa", "fa2-low", "fa2-high", "rim", "ms", "infaas", "vpa", "infadapter")
TARGET_REDUCTION_PCT = 15.0
ACCURACY_POINTS = 2.0


def summary_of(config, host, policy, workload, base, overrides):
    from ipa_ext.run.runner import execute, prepare, run_summary

    prep = prepare(config, host, optimizer=policy, base=base, overrides=overrides)
    result, backend, _ = execute(prep, workload, handle_signals=False)
    return run_summary(prep, result, backend, workload, policy)


def floor_j_per_request(config, host, workload, energy_opt):
    """Per-second oracle: the least power that serves each second's arrivals (see docstring).

    ``energy_opt`` must weigh ``delta`` (plain ``ilp`` ignores it, as IPA's objective does).
    """
    problem = config.build_problem(host, weights={"alpha": 0.0, "beta": 0.0, "gamma": 0.0, "delta": 1.0,
                                                  "epsilon": 0.0})
    opt = host.registry.create("optimizer", energy_opt)
    best: dict[int, float] = {}
    energy = 0.0
    for a in workload.rates.tolist():
        if a not in best:
            d = opt.optimize(problem, float(a))
            best[a] = d.best.terms["energy"] if d.feasible else float("nan")
        energy += best[a]
    served = float(workload.rates.sum())
    return energy / served


class Clairvoyant:
    """A predictor plugin that knows the workload: the decision at ``t`` (its configuration
    serves from ``t + delay`` to ``t + interval + delay``) gets the largest rate of those
    seconds. The adapter asks once per interval, the first time at ``t = interval``."""

    def __init__(self, rates, interval_s: int, delay_s: int) -> None:
        self.rates, self.interval_s, self.delay_s = [float(r) for r in rates], interval_s, delay_s
        self.calls = 0

    def factory(self):
        from ipa_ext.predictors import Predictor

        outer = self

        class Ahead(Predictor):
            name = "clairvoyant"

            def predict(self, history_rps):
                outer.calls += 1
                t = outer.calls * outer.interval_s
                if t <= 120:  # while the history is not yet capped, it confirms the clock
                    assert len(history_rps) == -(-t // 10), (t, len(history_rps))
                span = outer.rates[t + outer.delay_s: t + outer.interval_s + outer.delay_s]
                return max(span) if span else outer.rates[-1]

        return Ahead

    def register_predictors(self, register) -> None:
        register("clairvoyant", self.factory())


def loop_oracle(config, host, workload, energy_opt, base, overrides):
    """The loop oracle (see docstring) on one workload: its run summary."""
    import dataclasses

    from ipa_ext.hookspecs import hookimpl

    interval = int(config.section("adaptation").get("interval_s", 10))
    delay = int(config.section("simulation").get("reconfiguration_delay_s", 0))
    oracle = Clairvoyant(workload.rates.tolist(), interval, delay)

    class Plugin:
        @hookimpl
        def register_predictors(self, register):
            oracle.register_predictors(register)

    name = f"clairvoyant-{workload.name}"
    host.add_plugin(Plugin(), name)
    try:
        raw = {**config.raw, "predictor": {**config.section("predictor"), "name": "clairvoyant",
                                            "backup": "clairvoyant", "options": {}, "backup_options": {}}}
        summary = summary_of(dataclasses.replace(config, raw=raw), host, energy_opt, workload, base, overrides)
    finally:
        host.remove_plugin(name)
    assert oracle.calls == summary["decisions"], (oracle.calls, summary["decisions"])
    return summary


def target_sweep(config, host, workloads, ipa, deltas, energy_opt, base) -> list[dict]:
    """2. The energy target per delta: each window's saving against ipa, accuracy and SLO change."""
    weights = dict(config.settings.weights)
    sweep = []
    for delta in deltas:
        over = {"weights": {**weights, "delta": delta}}
        met = 0
        rows = []
        for w in workloads:
            e = summary_of(config, host, energy_opt, w, base, over)
            i = ipa[w.name]
            red = 100.0 * (1 - e["energy"]["j_per_served_request"] / i["energy"]["j_per_served_request"])
            dacc = e["accuracy_pct_mean"] - i["accuracy_pct_mean"]
            dslo = e["slo_violation_pct"] - i["slo_violation_pct"]
            ok = red >= TARGET_REDUCTION_PCT and abs(dacc) <= ACCURACY_POINTS and dslo <= 1e-9
            met += ok
            rows.append({"window": w.name, "ipa_j_per_request": i["energy"]["j_per_served_request"],
                         "energy_j_per_request": e["energy"]["j_per_served_request"],
                         "reduction_pct": red, "accuracy_diff_points": dacc,
                         "ipa_slo_pct": i["slo_violation_pct"], "energy_slo_pct": e["slo_violation_pct"],
                         "meets": ok})
        sweep.append({"delta": delta, "windows_met": met, "rows": rows})
    return sweep


def print_sweep(sweep: list[dict], energy_opt: str) -> dict:
    """Print the target sweep; returns the best delta's entry."""
    print("\nenergy target: >= 15 % fewer J/request than ipa, accuracy within 2 points, no more SLO "
          "violations, on >= 3 of 4 windows")
    trows = []
    for s in sweep:
        for r in s["rows"]:
            trows.append([s["delta"], r["window"], r["ipa_j_per_request"], r["energy_j_per_request"],
                          r["reduction_pct"], r["accuracy_diff_points"], r["ipa_slo_pct"], r["energy_slo_pct"],
                          "yes" if r["meets"] else "no"])
    print(table(["delta", "window", "ipa J/req", f"{energy_opt} J/req", "saving %", "d accuracy",
                 "ipa SLO %", "energy SLO %", "meets"], trows))
    best = max(sweep, key=lambda s: (s["windows_met"], sum(r["reduction_pct"] for r in s["rows"])))
    print(f"best delta {best['delta']:g}: {best['windows_met']} of 4 windows meet the target -> "
          f"{'MET' if best['windows_met'] >= 3 else 'NOT met'}")
    return best


def floor_section(config, host, workloads, ipa, energy_opt) -> list[dict]:
    """3. The per-second oracle floor per window, printed; returns its rows."""
    floor_rows = []
    for w in workloads:
        f = floor_j_per_request(config, host, w, energy_opt)
        i = ipa[w.name]["energy"]["j_per_served_request"]
        floor_rows.append({"window": w.name, "ipa_j_per_request": i, "floor_j_per_request": f,
                           "max_saving_pct": 100 * (1 - f / i)})
    print("\nper-second oracle floor (instant reconfiguration, no queueing, no drops):")
    print(table(["window", "ipa J/req", "floor J/req", "most any policy can save %"],
                [[r["window"], r["ipa_j_per_request"], r["floor_j_per_request"], r["max_saving_pct"]]
                 for r in floor_rows]))
    return floor_rows


def loop_oracle_section(config, host, workloads, ipa, energy_opt, base) -> list[dict]:
    """4. The loop oracle per window against ipa, printed; returns its rows."""
    loop_rows = []
    least_power = {"weights": {"alpha": 0.0, "beta": 0.0, "gamma": 0.0, "delta": 1.0, "epsilon": 0.0}}
    for w in workloads:
        o = loop_oracle(config, host, w, energy_opt, base, least_power)
        i = ipa[w.name]
        loop_rows.append({
            "window": w.name, "ipa_j_per_request": i["energy"]["j_per_served_request"],
            "oracle_j_per_request": o["energy"]["j_per_served_request"],
            "saving_pct": 100 * (1 - o["energy"]["j_per_served_request"] / i["energy"]["j_per_served_request"]),
            "accuracy_diff_points": o["accuracy_pct_mean"] - i["accuracy_pct_mean"],
            "ipa_slo_pct": i["slo_violation_pct"], "oracle_slo_pct": o["slo_violation_pct"],
        })
    print(f"\nloop oracle (IPA's loop; a predictor that knows the peak its configuration will serve; "
          f"{energy_opt} choosing the least power):")
    print(table(["window", "ipa J/req", "oracle J/req", "saving %", "d accuracy", "ipa SLO %", "oracle SLO %"],
                [[r["window"], r["ipa_j_per_request"], r["oracle_j_per_request"], r["saving_pct"],
                  r["accuracy_diff_points"], r["ipa_slo_pct"], r["oracle_slo_pct"]] for r in loop_rows]))
    return loop_rows


def grid_section(config, host, workloads, base, delta, out: Path):
    """1. Every policy on every window (energy-aware optimizers at ``delta``): cells, result files, plots."""
    from ipa_ext.run.compare import plot, run_grid, write_results

    names = host.registry.names("optimizer")
    policies = list(BASELINES)
    for extra in ("energy-ilp", "q-learning", "clover", "cocktail"):
        if extra in names:
            policies.append(extra)
    if "energy-ilp" not in names:
        policies.append("brute-force")
    out.mkdir(parents=True, exist_ok=True)
    cells = run_grid(config, host, policies, workloads, out, base=base,
                     overrides={"weights": {**dict(config.settings.weights), "delta": delta}})
    meta = {"config": str(CONFIG), "carbon": config.carbon.source if config.carbon else "none", "policies": ", ".join(policies), "workloads": ", ".join(WINDOWS),
            "base": base, "delta (energy-aware optimizers)": delta}
    paths = write_results(cells, out, meta)
    pics = plot(cells, out)
    print(f"\ngrid (delta {delta:g} for energy-aware optimizers):")
    print(paths["md"].read_text())
    return cells, paths, pics


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trace", help="the Twitter trace to cut the windows from (default: the package's copies)")
    ap.add_argument("--deltas", default="0.003,0.01,0.03,0.1,0.3,1")
    ap.add_argument("--delta", type=float, help="delta for the grid's energy-aware optimizers "
                                                "(default: the sweep's best)")
    ap.add_argument("--out", default=str(RESULTS / "ipa_windows"))
    ap.add_argument("--carbon", default="US-CAL-CISO",
                    help="zone of ../shared/data/carbon-intensity whose day (from local midnight, 1 June 2023, "
                         "72 grid hours per run hour) prices the grams of CO2; 'none' for no carbon section")
    args = ap.parse_args()

    from ipa_ext.config.config import load_config
    from ipa_ext.host import load_plugins
    from ipa_ext.workloads import resolve

    host = load_plugins()
    config = load_config(CONFIG)
    if args.carbon != "none":
        from carbon_aware import CARBON_DIR, HOURS_PER_RUN_HOUR, start_of

        carbon = {"trace": str(CARBON_DIR / f"{args.carbon}_2023_hourly.csv"),
                  "start": start_of(args.carbon, "2023-06-01"), "hours_per_run_hour": HOURS_PER_RUN_HOUR}
        config = load_config(config_with(Path(tempfile.mkdtemp()), carbon=carbon))
    base = exact_base(host)
    energy_opt = "energy-ilp" if "energy-ilp" in host.registry.names("optimizer") else "brute-force"
    workloads = [resolve(w, None, CONFIG.parent, trace=args.trace) for w in WINDOWS]
    print(f"base optimizer of the policies: {base}; energy-weighted optimizer: {energy_opt}"
          + ("" if energy_opt == "energy-ilp" else " (energy-ilp is not registered: the same "
             "problem solved exhaustively)"))
    ipa = {w.name: summary_of(config, host, "ipa", w, base, None) for w in workloads}
    sweep = target_sweep(config, host, workloads, ipa, [float(x) for x in args.deltas.split(",")], energy_opt, base)
    best = print_sweep(sweep, energy_opt)
    floor_rows = floor_section(config, host, workloads, ipa, energy_opt)
    loop_rows = loop_oracle_section(config, host, workloads, ipa, energy_opt, base)
    delta = args.delta if args.delta is not None else best["delta"]
    out = Path(args.out)
    cells, paths, pics = grid_section(config, host, workloads, base, delta, out)
    path = write_json("ipa_windows", {
        "base": base, "energy_optimizer": energy_opt, "grid_delta": delta,
        "grid": [c.row() for c in cells], "target_sweep": sweep,
        "target_met": best["windows_met"] >= 3, "best_delta": best["delta"], "floor": floor_rows,
        "loop_oracle": loop_rows,
        "files": [str(p) for p in paths.values()] + ([str(p) for p in pics] if isinstance(pics, list) else []),
    })
    print(f"wrote {path} and {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
