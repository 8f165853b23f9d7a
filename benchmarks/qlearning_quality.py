"""How close the q-learning optimizer gets to the exact optimum, and how fast.

For each settings profile, reward (the config's, and the energy-weighted one with
``delta``) and seed, one q-learning optimizer decides the rates 5, 10, ..., 60 rps in
order (``--order``: ascending, descending or shuffled), as the adapter loop would,
starting each decision from the configuration chosen before. By default every rate is
learned from scratch (a rate decided before continues its own table); with
``--options '{"warm_start": true}'`` a new rate starts from a copy of the table of the
nearest rate decided before. Each decision is compared with the exact optimum
(``energy-ilp`` when installed, else ``brute-force``).

Gap. Objectives here are negative and some are near zero, so the gap is taken relative
to ``max(|optimum|, gap_floor)``, with ``gap_floor`` = 1 objective unit (one CPU core at
``beta`` 1): ``gap_pct = 100*(optimum - objective)/max(|optimum|, 1)``. The table also
gives the gap relative to the objective range at that rate (optimum minus the worst
feasible configuration with the fewest replicas), which no constant shift can change.

Time. Per decision, the optimizer's own wall-clock decision time and the CPU time of the
call (less sensitive to other load on the machine). ``--cli-runs N`` also times N runs of
the whole ``ipa-ext optimize CONFIG --rate 20 --optimizer q-learning`` process (a cold
decision, imports included; a fresh process each time).

Writes ``decisions.csv`` (one row per decision), ``learning_curve.csv`` (mean episode
return, mean reward per step and penalised-step share per batch of episodes),
``summary.json`` and, with matplotlib (the ``plot`` extra), ``learning_curve.png`` and
``gaps.png``. Prints a table. Wall-clock figures depend on the machine and its load.

    python benchmarks/qlearning_quality.py [--profiles paper,alpha1] [--seeds 0,1] [--order shuffled]
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import platform
import random
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import timed_cli  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]

PROFILES: dict[str, dict[str, Any]] = {
    # The paper's Algorithm 1 parameters (the optimizer's defaults).
    "paper": {},
    # Rewards here are deterministic (they come from profiles), so a learning rate of 1
    # is sound and converges far faster; a smaller training budget suffices.
    "alpha1": {"alpha_q": 1.0, "episodes": 20000, "warm_episodes": 3000},
}
TARGETS = {"median_gap_pct": 2.0, "worst_gap_pct": 10.0, "infeasible": 0, "median_first_decision_s": 2.0,
           "median_later_decision_s": 1.0, "median_cli_s": 2.0}


def parse_rates(text: str) -> list[float]:
    if ":" in text:
        lo, hi, step = (float(x) for x in text.split(":"))
        n = int(round((hi - lo) / step)) + 1
        return [lo + i * step for i in range(n)]
    return [float(x) for x in text.split(",")]


def objective_range(problem: Any, rate: float) -> tuple[float, float] | None:
    """(best, worst) objective over feasible fewest-replica configurations (None if none)."""
    best = worst = None
    for combo in itertools.product(*problem.options(rate)):
        if problem.violations(combo, rate):
            continue
        obj = problem.objective_value(combo, rate)
        best = obj if best is None else max(best, obj)
        worst = obj if worst is None else min(worst, obj)
    return None if best is None else (best, worst)


def batches(returns: list[float], steps: list[int], viol: list[int], size: int):
    for i in range(0, len(returns), size):
        r, s, v = returns[i:i + size], steps[i:i + size], viol[i:i + size]
        yield i, i + len(r), sum(r) / len(r), sum(r) / max(1, sum(s)), sum(v) / max(1, sum(s))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=str(ROOT / "examples" / "video" / "config.yaml"))
    ap.add_argument("--rates", default="5:60:5", help="lo:hi:step or a comma list (default 5:60:5)")
    ap.add_argument("--order", choices=("ascending", "descending", "shuffled"), default="ascending",
                    help="order in which the rates are decided (shuffled: per seed)")
    ap.add_argument("--delta", type=float, default=0.05, help="weight of power_w in the energy-weighted reward")
    ap.add_argument("--profiles", default="paper,alpha1", help=f"comma list of {', '.join(PROFILES)}")
    ap.add_argument("--options", default="{}", help="JSON of extra q-learning options for every profile")
    ap.add_argument("--seeds", default="0", help="comma list of seeds")
    ap.add_argument("--reference", default=None, help="exact optimizer (default: energy-ilp if installed, else brute-force; "
                    "plain ilp would ignore the energy reward's delta)")
    ap.add_argument("--gap-floor", type=float, default=1.0)
    ap.add_argument("--batch", type=int, default=1000, help="episodes per learning-curve point")
    ap.add_argument("--cli-runs", type=int, default=0,
                    help="also time N runs of the whole `ipa-ext optimize CONFIG --rate 20 --optimizer q-learning`")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "qlearning_quality"))
    args = ap.parse_args(argv)
    unknown = [p for p in args.profiles.split(",") if p not in PROFILES]
    if unknown:
        ap.error(f"unknown profile(s) {', '.join(unknown)}")
    return args


def decide_sequence(args: argparse.Namespace, host: Any, config: Any, problem: Any, exact: dict, profile: str,
                    reward_name: str, seed: int, rows: list, curve: list) -> None:
    """One optimizer deciding every rate in order; appends decision rows and learning-curve points."""
    options = {**PROFILES[profile], **json.loads(args.options), "seed": seed, "record_episodes": True}
    q = host.registry.create("optimizer", "q-learning", options)
    current = config.settings.initial
    order = parse_rates(args.rates)
    if args.order == "descending":
        order.reverse()
    elif args.order == "shuffled":
        random.Random(seed).shuffle(order)
    for i, rate in enumerate(order):
        cpu = time.process_time()
        d = q.optimize(problem, rate, current, 1)
        cpu = time.process_time() - cpu
        opt, worst = exact[rate]
        row: dict[str, Any] = {
            "profile": profile, "reward": reward_name, "seed": seed, "rate_rps": rate,
            "first": i == 0, "optimum": opt, "objective": d.best.objective if d.best else None,
            "decision_time_s": d.decision_time_s, "cpu_s": cpu, "episodes": d.info.get("episodes"),
            "warm_start_rate_rps": d.info.get("warm_start_rate_rps"),
            "source": d.info.get("source"), "feasible_exists": opt is not None,
            "infeasible_decision": opt is not None and (d.best is None or not d.best.feasible),
        }
        if opt is not None and d.best is not None:
            row["gap_pct"] = 100 * (opt - d.best.objective) / max(abs(opt), args.gap_floor)
            span = opt - worst
            row["gap_range_pct"] = 100 * (opt - d.best.objective) / span if span > 0 else 0.0
            row["config"] = ";".join(f"{s.variant}/{s.cpu:g}/{s.batch}/{s.replicas}" for s in d.best.config)
            current = d.best.config
        rows.append(row)
        for start, end, mean_ret, per_step, viol in batches(
            d.info.get("episode_returns", []), d.info.get("episode_steps", []),
            d.info.get("episode_violations", []), args.batch,
        ):
            curve.append({
                "profile": profile, "reward": reward_name, "seed": seed, "rate_rps": rate,
                "episode_start": start, "episode_end": end, "mean_episode_return": mean_ret,
                "mean_reward_per_step": per_step, "penalised_step_share": viol,
            })
        print(f"{profile:7s} {reward_name:7s} seed {seed} rate {rate:5.1f}  gap "
              f"{row.get('gap_pct', float('nan')):7.2f}%  {d.decision_time_s:6.3f} s ({cpu:6.3f} s cpu)  "
              f"{row['episodes']} episodes  {row['source']}", file=sys.stderr)


def summarize(rows: list[dict[str, Any]], profile: str, reward_name: str, options: dict) -> dict[str, Any]:
    """The figures of one (profile, reward) over its seeds, and whether they meet the targets."""
    rs = [r for r in rows if r["profile"] == profile and r["reward"] == reward_name]
    gaps = [r["gap_pct"] for r in rs if "gap_pct" in r]
    rgaps = [r["gap_range_pct"] for r in rs if "gap_range_pct" in r]

    def median(key: str, first: bool) -> float | None:
        xs = [r[key] for r in rs if r["first"] == first]
        return statistics.median(xs) if xs else None

    res = {
        "profile": profile, "reward": reward_name, "options": options, "decisions": len(rs),
        "median_gap_pct": statistics.median(gaps) if gaps else None,
        "worst_gap_pct": max(gaps) if gaps else None,
        "median_gap_range_pct": statistics.median(rgaps) if rgaps else None,
        "worst_gap_range_pct": max(rgaps) if rgaps else None,
        "decisions_over_2pct": sum(g > 2 for g in gaps),
        "infeasible": sum(r["infeasible_decision"] for r in rs),
        "median_first_decision_s": median("decision_time_s", True),
        "median_first_cpu_s": median("cpu_s", True),
        "median_later_decision_s": median("decision_time_s", False),
        "median_later_cpu_s": median("cpu_s", False),
        "max_later_decision_s": max((r["decision_time_s"] for r in rs if not r["first"]), default=None),
        "median_episodes": statistics.median(r["episodes"] for r in rs) if rs else None,
        "max_episodes": max((r["episodes"] for r in rs), default=None),
        "warm_started": sum(r["warm_start_rate_rps"] not in (None, r["rate_rps"]) for r in rs),
        "fallback_decisions": sum(r["source"] == "fallback" for r in rs),
    }
    res["meets"] = {
        "median_gap": res["median_gap_pct"] is not None and res["median_gap_pct"] <= TARGETS["median_gap_pct"],
        "worst_gap": res["worst_gap_pct"] is not None and res["worst_gap_pct"] <= TARGETS["worst_gap_pct"],
        "infeasible": res["infeasible"] == 0,
    }
    for key in ("median_first_decision_s", "median_later_decision_s"):
        res["meets"][key[:-2]] = res[key] is not None and res[key] <= TARGETS[key]
    return res


def cli_timing(config: str, runs: int) -> dict[str, Any] | None:
    """Wall time of ``runs`` fresh ``ipa-ext optimize CONFIG --rate 20 --optimizer q-learning`` processes."""
    if runs <= 0:
        return None
    walls, cpus, decisions = [], [], []
    for _ in range(runs):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        wall, proc = timed_cli(["optimize", config, "--rate", "20", "--optimizer", "q-learning", "--json"])
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            raise SystemExit(f"ipa-ext optimize failed: {proc.stderr.strip()}")
        walls.append(wall)
        cpus.append(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime)
        decisions.append(json.loads(proc.stdout)["decision_time_s"])
    return {"command": f"ipa-ext optimize {config} --rate 20 --optimizer q-learning", "runs": runs,
            "wall_s": walls, "cpu_s": cpus, "decision_time_s": decisions, "median_wall_s": statistics.median(walls),
            "median_cpu_s": statistics.median(cpus), "median_decision_time_s": statistics.median(decisions),
            "meets": statistics.median(walls) <= TARGETS["median_cli_s"]}


def _seconds(wall: float | None, cpu: float | None) -> str:
    return "n/a" if wall is None or cpu is None else f"{wall:.3f} ({cpu:.3f})"


def print_table(results: list[dict[str, Any]], cli: dict[str, Any] | None, ref_name: str, out: Path) -> None:
    head = ["profile", "reward", "median gap %", "worst gap %", "worst gap % range", ">2%", "infeasible",
            "first s (cpu)", "later s (cpu)", "episodes median/max", "warm", "fallbacks"]
    cells = [[r["profile"], r["reward"], f"{r['median_gap_pct']:.3g}", f"{r['worst_gap_pct']:.3g}",
              f"{r['worst_gap_range_pct']:.3g}", f"{r['decisions_over_2pct']}/{r['decisions']}",
              str(r["infeasible"]), _seconds(r["median_first_decision_s"], r["median_first_cpu_s"]),
              _seconds(r["median_later_decision_s"], r["median_later_cpu_s"]),
              f"{r['median_episodes']:g}/{r['max_episodes']}", str(r["warm_started"]),
              str(r["fallback_decisions"])] for r in results]
    widths = [max(len(x) for x in col) for col in zip(head, *cells)]
    for line in [head, *cells]:
        print("  ".join(c.ljust(wd) for c, wd in zip(line, widths)).rstrip())
    if cli is not None:
        print(f"{cli['command']}: median {cli['median_wall_s']:.3f} s wall ({cli['median_cpu_s']:.3f} s cpu), "
              f"decision {cli['median_decision_time_s']:.3f} s ({cli['runs']} runs)")
    print(f"reference {ref_name}; targets: median gap <= {TARGETS['median_gap_pct']}%, worst <= "
          f"{TARGETS['worst_gap_pct']}%, 0 infeasible, median first decision <= "
          f"{TARGETS['median_first_decision_s']} s, later <= {TARGETS['median_later_decision_s']} s, "
          f"whole CLI <= {TARGETS['median_cli_s']} s; results in {out}")


def write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    with open(path, "w", newline="") as fh:
        wr = csv.DictWriter(fh, fields, extrasaction="ignore")
        wr.writeheader()
        wr.writerows(rows)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ipa_ext.config.config import load_config
    from ipa_ext.host import load_plugins

    config = load_config(args.config)
    host = load_plugins()
    # energy-ilp honours weights.delta (with delta 0 it is ilp); plain ilp ignores delta and
    # would be the wrong reference for the energy-weighted reward.
    ref_name = args.reference or ("energy-ilp" if "energy-ilp" in host.registry.names("optimizer") else "brute-force")
    reference = host.registry.create("optimizer", ref_name)
    rates = parse_rates(args.rates)
    seeds = [int(s) for s in args.seeds.split(",")]
    weights = dict(config.settings.weights)
    rewards = {"default": dict(weights), "energy": {**weights, "delta": args.delta}}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    rows: list[dict[str, Any]] = []
    curve: list[dict[str, Any]] = []
    for reward_name, w in rewards.items():
        problem = config.build_problem(host, weights=w)
        exact = {}
        for rate in rates:
            d = reference.optimize(problem, rate, config.settings.initial, 1)
            rng = objective_range(problem, rate)
            exact[rate] = (d.best.objective if d.best else None, rng[1] if rng else None)
        for profile in args.profiles.split(","):
            for seed in seeds:
                decide_sequence(args, host, config, problem, exact, profile, reward_name, seed, rows, curve)
    cli = cli_timing(args.config, args.cli_runs)

    write_csv(out / "decisions.csv", rows, [
        "profile", "reward", "seed", "rate_rps", "first", "optimum", "objective", "gap_pct", "gap_range_pct",
        "decision_time_s", "cpu_s", "episodes", "warm_start_rate_rps", "source", "feasible_exists",
        "infeasible_decision", "config"])
    write_csv(out / "learning_curve.csv", curve, list(curve[0]) if curve else ["profile"])
    results = [summarize(rows, profile, reward_name, {**PROFILES[profile], **json.loads(args.options)})
               for profile in args.profiles.split(",") for reward_name in rewards]
    summary: dict[str, Any] = {
        "reference": ref_name, "rates_rps": rates, "order": args.order, "seeds": seeds, "delta_energy": args.delta,
        "gap_floor": args.gap_floor, "targets": TARGETS, "machine": {
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "loadavg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "results": results, "cli": cli,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print_table(results, cli, ref_name, out)
    _plots(out, rows, curve)
    return 0


def _plots(out: Path, rows: list[dict[str, Any]], curve: list[dict[str, Any]]) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (the 'plot' extra): no PNG written")
        return
    profiles = sorted({c["profile"] for c in curve})
    rewards = sorted({c["reward"] for c in curve})
    if curve:
        fig, axes = plt.subplots(len(profiles), len(rewards), figsize=(6 * len(rewards), 3.8 * len(profiles)),
                                 squeeze=False)
        for pi, profile in enumerate(profiles):
            for ri, reward in enumerate(rewards):
                ax = axes[pi][ri]
                for seed in sorted({c["seed"] for c in curve}):
                    pts = [c for c in curve if (c["profile"], c["reward"], c["seed"]) == (profile, reward, seed)]
                    xs, ys, offset, last_rate, marks = [], [], 0, None, []
                    for c in pts:
                        if c["rate_rps"] != last_rate:
                            offset = xs[-1] if xs else 0
                            marks.append((offset, c["rate_rps"]))
                            last_rate = c["rate_rps"]
                        xs.append(offset + c["episode_end"])
                        ys.append(c["mean_episode_return"])
                    ax.plot(xs, ys, lw=0.9, label=f"seed {seed}")
                for x, rate in marks:
                    ax.axvline(x, c="grey", lw=0.4, ls=":")
                    ax.text(x, 1.0, f"{rate:g}", transform=ax.get_xaxis_transform(), fontsize=6,
                            va="bottom", ha="left", color="grey")
                ax.set_yscale("symlog", linthresh=10)
                ax.set_title(f"{profile} / {reward} reward (rps marked on top)", fontsize=9, pad=12)
                ax.set_xlabel("episodes, cumulative over the rate sequence", fontsize=8)
                ax.set_ylabel("mean episode return per batch", fontsize=8)
                ax.legend(fontsize=6)
        fig.tight_layout()
        fig.savefig(out / "learning_curve.png", dpi=110)
        plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4))
    for key in sorted({(r["profile"], r["reward"]) for r in rows}):
        rs = [r for r in rows if (r["profile"], r["reward"]) == key and "gap_pct" in r]
        by_rate: dict[float, list[float]] = {}
        for r in rs:
            by_rate.setdefault(r["rate_rps"], []).append(r["gap_pct"])
        xs = sorted(by_rate)
        ax.plot(xs, [max(by_rate[x]) for x in xs], marker="o", label=f"{key[0]} / {key[1]} (worst over seeds)")
    ax.axhline(2, ls="--", c="grey", lw=0.8)
    ax.axhline(10, ls=":", c="grey", lw=0.8)
    ax.set_xlabel("predicted rate (rps)")
    ax.set_ylabel("gap to the exact optimum (%)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "gaps.png", dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
