"""Overhead of energy measurement: one ``read()`` per source and one meter window begin/end.

Sources run on what this machine has: a fake powercap tree (two sockets with
package/core/uncore/dram plus psys: 9 RAPL domains) in a temporary directory,
the estimate source on the real ``/proc``, NVML through the fake module the
tests use, and the real perf child process when perf can run here.
Targets: RAPL read <= 50 us per domain; window begin+end <= 200 us.

    python benchmarks/energy_overhead.py [--n 2000] [--out benchmarks/results/energy_overhead.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "tests" / "fake_nvml"))

from ipa_ext.testing.powercap import server_tree  # noqa: E402

from ipa_ext.energy import Domain, EnergySource, ProbeResult, Reading, Status  # noqa: E402
from ipa_ext.energy.meter import Meter  # noqa: E402
from ipa_ext_plugins.energy.estimate import EstimateSource  # noqa: E402
from ipa_ext_plugins.energy.nvml import NvmlSource  # noqa: E402
from ipa_ext_plugins.energy.perf import PerfSource  # noqa: E402
from ipa_ext_plugins.energy.rapl import RaplSource  # noqa: E402

RAPL_TARGET_US_PER_DOMAIN = 50.0
WINDOW_TARGET_US = 200.0


class Constant(EnergySource):
    """A source that costs nothing to read: isolates the meter's own window overhead."""

    name = "constant"

    def probe(self) -> ProbeResult:
        return ProbeResult(Status.AVAILABLE)

    def domains(self) -> list[Domain]:
        return [Domain("x", "outlet")]

    def read(self) -> Reading:
        return Reading(time.monotonic(), {"x": 0.0}, "measured")


def timed(fn: Callable[[], object], n: int) -> list[float]:
    for _ in range(min(50, n)):
        fn()
    out = []
    for _ in range(n):
        t = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t) / 1000.0)
    return out


def row(name: str, samples: list[float], domains: int, target: str, ok: bool | None) -> dict:
    samples = sorted(samples)
    med = statistics.median(samples)
    return {"case": name, "n": len(samples), "median_us": med, "p95_us": samples[int(0.95 * (len(samples) - 1))],
            "domains": domains, "median_us_per_domain": med / domains if domains else None,
            "target": target, "meets_target": ok}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="timed repetitions per case")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "energy_overhead.json"))
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server_tree(Path(tmp))
        rapl = RaplSource(tmp, poll=False)
        nd = len(rapl.domains())
        s = timed(rapl.read, args.n)
        med = statistics.median(s)
        rows.append(row("rapl read (fake powercap, poller off)", s, nd, f"<= {RAPL_TARGET_US_PER_DOMAIN:g} us/domain",
                        med / nd <= RAPL_TARGET_US_PER_DOMAIN))
        meter = Meter(rapl)
        k = iter(range(10**9))

        def window() -> None:
            key = f"w{next(k)}"
            meter.begin(key)
            meter.end(key)

        s = timed(window, args.n)
        rows.append(row("meter window begin+end (rapl, 9 domains)", s, nd, f"<= {WINDOW_TARGET_US:g} us",
                        statistics.median(s) <= WINDOW_TARGET_US))
    cm = Meter(Constant())
    k2 = iter(range(10**9))

    def window_constant() -> None:
        key = f"w{next(k2)}"
        cm.begin(key)
        cm.end(key)

    s = timed(window_constant, args.n)
    rows.append(row("meter window begin+end (no-cost source)", s, 1, f"<= {WINDOW_TARGET_US:g} us",
                    statistics.median(s) <= WINDOW_TARGET_US))
    est = EstimateSource(watts_per_core=3.0, idle_w=10.0)
    rows.append(row("estimate read (whole system, /proc/stat)", timed(est.read, args.n), 3, "-", None))
    tree = EstimateSource(watts_per_core=3.0, idle_w=10.0, pid=os.getpid())
    rows.append(row("estimate read (process tree, /proc scan)", timed(tree.read, max(50, args.n // 20)), 3, "-", None))
    import fake_pynvml

    fake_pynvml.GPUS = [{"name": "fake", "energy_mj": 1000, "power_mw": 1000, "mig": False}]
    nv = NvmlSource(module="fake_pynvml")
    rows.append(row("nvml read (fake NVML, 1 GPU counter)", timed(nv.read, args.n), 1, "-", None))
    nv.close()
    perf = PerfSource(interval_ms=100)
    if perf.events:
        try:
            perf.read()
            rows.append(row(f"perf read (live perf child, {len(perf.events)} event)", timed(perf.read, args.n),
                            len(perf.events), "-", None))
        except Exception as exc:  # perf cannot run here: say so instead of a row
            print(f"perf: skipped ({exc})", file=sys.stderr)
        finally:
            perf.close()

    w = max(len(r["case"]) for r in rows)
    print(f"{'case':<{w}}  {'n':>5}  {'median us':>9}  {'p95 us':>8}  {'us/domain':>9}  target")
    for r in rows:
        per = "-" if r["median_us_per_domain"] is None else f"{r['median_us_per_domain']:.1f}"
        verdict = "" if r["meets_target"] is None else (" ok" if r["meets_target"] else " MISSED")
        print(f"{r['case']:<{w}}  {r['n']:>5}  {r['median_us']:>9.1f}  {r['p95_us']:>8.1f}  {per:>9}  "
              f"{r['target']}{verdict}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"python": platform.python_version(), "machine": platform.machine(),
                               "cpus": os.cpu_count(), "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
