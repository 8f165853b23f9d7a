"""Decision time of the ``ilp`` optimizer: median and p95 over many decisions at varying rates.

Two workloads, each for every solver available (or those named):

* the bundled video example (``examples/video/config.yaml``), for ``ilp`` and for
  ``infadapter`` (variant mixing: the core mixing MILP, docs/optimizers.md);
* synthetic pipelines on IPA's scalability grid: 1-9 stages x 1-9 variants,
  each variant profiled at 4 cpu x 4 batch values (cpu 1, 2, 4, 8; batch 1, 2,
  4, 8), allocation mode ``variable`` so every cpu is a choice (144 options per
  stage at 9 variants).

Every decision is timed by the optimizer itself (``Decision.decision_time_s``:
option building, the MILP, verification and scoring). One warm-up decision per
problem comes first; its time is reported as ``first_ms``. Prints a table and
writes JSON (default ``benchmarks/results/decision_latency.json``).

    python benchmarks/decision_latency.py                       # everything
    python benchmarks/decision_latency.py --stages 1,5,9 --variants 1,5,9
    python benchmarks/decision_latency.py --solvers highs --accuracy-method multiply
    python benchmarks/decision_latency.py --policies cocktail --stages ''   # a policy, video only

``--policies`` also times the named optimizers (policies such as ``cocktail``) on the same
problems, in the ``solver`` column under their own names.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = (math.sqrt(5) - 1) / 2


def rates(n: int, low: float, high: float) -> list[float]:
    """n rates spread over [low, high] in a fixed, non-monotone order (golden-ratio sequence)."""
    return [round(low + (high - low) * ((i * GOLDEN) % 1.0), 3) for i in range(1, n + 1)]


def synthetic_pipeline(n_stages: int, n_variants: int, seed: int = 0):
    """A plausible pipeline: more accurate variants are slower; cpus speed up with diminishing
    returns; batching amortises latency and energy per request."""
    from ipa_ext.model import Pipeline, Profile, Stage, Variant

    rng = random.Random(f"{seed}-{n_stages}-{n_variants}")
    stages = []
    for s in range(n_stages):
        name = f"task{s}"
        base_s = rng.uniform(0.01, 0.04)
        variants, profiles = [], {}
        for v in range(n_variants):
            vname = f"m{v}"
            variants.append(Variant(vname, round(50 + 40 * (v + 1) / n_variants + rng.uniform(-1, 1), 3)))
            lat1 = base_s * 1.35 ** v
            for cpu in (1.0, 2.0, 4.0, 8.0):
                for batch in (1, 2, 4, 8):
                    lat = lat1 * batch ** 0.8 / cpu ** 0.7 * rng.uniform(0.95, 1.05)
                    thr = batch / lat
                    idle = 2.0 * cpu
                    epr = 6.4 * cpu * lat / batch  # 80 % of 8 W per busy core
                    profiles[(vname, cpu, batch)] = Profile(name, vname, cpu, batch, round(lat, 6), round(thr, 4),
                                                            None, idle, round(epr, 6))
        stages.append(Stage(name, tuple(variants), profiles))
    return Pipeline(f"synthetic-{n_stages}x{n_variants}", tuple(stages))


def measure(optimizer, problem, rate_list: Sequence[float], k: int) -> dict[str, Any]:
    """Time one warm-up and then one decision per rate; medians, p95, max and the problem's size."""
    first = optimizer.optimize(problem, rate_list[0], None, k)
    times, infeasible, variables, solves = [], 0, [], []
    for r in rate_list:
        d = optimizer.optimize(problem, r, None, k)
        times.append(d.decision_time_s)
        infeasible += not d.feasible
        variables.append(d.info.get("variables", 0))
        solves.append(d.info.get("solves", 0))
    times.sort()
    p95 = times[max(0, math.ceil(0.95 * len(times)) - 1)]
    return {
        "decisions": len(times),
        "median_ms": statistics.median(times) * 1e3,
        "p95_ms": p95 * 1e3,
        "max_ms": times[-1] * 1e3,
        "first_ms": first.decision_time_s * 1e3,
        "infeasible": infeasible,
        "options": first.info.get("options"),
        "variables_median": statistics.median(variables),
        "solves_max": max(solves),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--decisions", type=int, default=50, help="timed decisions per problem (default 50)")
    ap.add_argument("--solvers", help="comma-separated solvers (default: every available one)")
    ap.add_argument("--stages", default="1,2,3,4,5,6,7,8,9", help="stage counts of the grid")
    ap.add_argument("--variants", default="1,2,3,4,5,6,7,8,9", help="variant counts of the grid")
    ap.add_argument("--accuracy-method", default="sum", choices=("sum", "average", "multiply"))
    ap.add_argument("--allocation-mode", default="variable", choices=("base", "variable"))
    ap.add_argument("-k", type=int, default=1, help="num_state_limit (default 1)")
    ap.add_argument("--no-video", action="store_true", help="skip the video example")
    ap.add_argument("--brute-force", action="store_true", help="also time brute force on the video example")
    ap.add_argument("--policies", default="", help="comma-separated optimizers to time too (e.g. cocktail)")
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "decision_latency.json")
    return ap.parse_args(argv)


def new_result(args: argparse.Namespace, solvers: Sequence[str]) -> dict[str, Any]:
    """The JSON result's frame: the machine, the settings, empty video and grid parts."""
    import pulp

    return {
        "benchmark": "decision_latency",
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "pulp": pulp.__version__,
            "highspy": _version("highspy"),
        },
        "settings": {
            "decisions": args.decisions, "k": args.k, "accuracy_method": args.accuracy_method,
            "allocation_mode": args.allocation_mode, "solvers": solvers, "policies": _policies(args),
        },
        "video": {},
        "grid": [],
    }


def time_video(args: argparse.Namespace, host, solvers: Sequence[str], result: dict[str, Any], rows: list) -> None:
    """Time ilp and infadapter (per solver, and brute force when asked) on the video example."""
    from dataclasses import replace

    from ipa_ext.config.config import load_config
    from ipa_ext.problem import Problem

    config = load_config(ROOT / "examples" / "video" / "config.yaml")
    problem = config.build_problem(host)
    if args.accuracy_method != problem.settings.accuracy_method:
        problem = Problem(problem.pipeline, replace(problem.settings, accuracy_method=args.accuracy_method),
                          problem.objectives)
    video_rates = rates(args.decisions, 1, 120)
    for solver in solvers:
        m = measure(_optimizer(host, "ilp", solver), problem, video_rates, args.k)
        result["video"][solver] = m
        rows.append(["video", "2x5", solver, m])
        m = measure(_optimizer(host, "infadapter", solver), problem, video_rates, args.k)
        result["video"][f"infadapter/{solver}"] = m
        rows.append(["video", "2x5", f"infadapter/{solver}", m])
    for name in (["brute-force"] if args.brute_force else []) + _policies(args):
        m = measure(_optimizer(host, name), problem, video_rates, args.k)
        result["video"][name] = m
        rows.append(["video", "2x5", name, m])


def time_grid(args: argparse.Namespace, host, solvers: Sequence[str], result: dict[str, Any], rows: list) -> None:
    """Time ilp (per solver) on each synthetic pipeline of the stages x variants grid."""
    from ipa_ext.problem import Problem, Settings

    objectives = [host.registry.create("objective", n) for n in host.registry.names("objective")]
    stage_counts = [int(x) for x in args.stages.split(",") if x]
    variant_counts = [int(x) for x in args.variants.split(",") if x]
    for n_stages in stage_counts:
        for n_variants in variant_counts:
            pipe = synthetic_pipeline(n_stages, n_variants)
            settings = Settings(accuracy_method=args.accuracy_method, allocation_mode=args.allocation_mode,
                                sla_factor=5, scaling_cap=100, threshold=4,
                                weights={"alpha": 2, "beta": 1, "gamma": 1e-6, "delta": 0, "epsilon": 0})
            problem = Problem(pipe, settings, objectives)
            grid_rates = rates(args.decisions, 5, 100)
            for solver in [*solvers, *_policies(args)]:
                opt = _optimizer(host, "ilp", solver) if solver in solvers else _optimizer(host, solver)
                m = measure(opt, problem, grid_rates, args.k)
                result["grid"].append({"stages": n_stages, "variants": n_variants, "solver": solver, **m})
                rows.append(["synthetic", f"{n_stages}x{n_variants}", solver, m])


def print_table(rows: list) -> None:
    """One line per timed problem."""
    headers = ["workload", "size", "solver", "median_ms", "p95_ms", "max_ms", "first_ms", "options", "vars", "infeasible"]
    table = [headers] + [
        [w, size, s, f"{m['median_ms']:.1f}", f"{m['p95_ms']:.1f}", f"{m['max_ms']:.1f}", f"{m['first_ms']:.1f}",
         str(m["options"]), f"{m['variables_median']:g}", str(m["infeasible"])]
        for w, size, s, m in rows
    ]
    widths = [max(len(r[i]) for r in table) for i in range(len(headers))]
    for r in table:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    from ipa_ext.host import load_plugins
    from ipa_ext.optimize.solvers import available_solvers, choose_solver

    solvers = args.solvers.split(",") if args.solvers else list(available_solvers())
    solvers = [choose_solver(s) for s in solvers]
    host = load_plugins()
    result = new_result(args, solvers)
    started = time.perf_counter()
    rows: list = []
    if not args.no_video:
        time_video(args, host, solvers, result, rows)
    time_grid(args, host, solvers, result, rows)
    result["wall_s"] = time.perf_counter() - started
    print_table(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({result['wall_s']:.0f} s; {args.decisions} decisions per row; "
          f"{args.accuracy_method} accuracy, {args.allocation_mode} allocation, k={args.k})")
    return 0


def _policies(args: argparse.Namespace) -> list[str]:
    return [p for p in args.policies.split(",") if p]


def _optimizer(host, name: str, solver: str | None = None):
    return host.registry.create("optimizer", name, {"solver": solver} if solver else {})


def _version(module: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(module)
    except Exception:
        return None


if __name__ == "__main__":
    sys.exit(main())
