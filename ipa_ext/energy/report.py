"""Summaries of energy interval logs: total joules, mean and peak watts per event, interval statistics, a plot.

Works on any :class:`~ipa_ext.energy.logs.EnergyLog`. The total sums root
domains only (perf's ``energy-cores`` sits inside ``energy-pkg``). Intervals
without a value are counted as gaps and reported, not filled in.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..report.plotting import envelope, nan, pyplot, series_styles
from ..report.tables import table
from .logs import EnergyLog
from .source import root_domains

IRREGULAR = 0.1
"""An interval more than 10 % away from the median length is irregular."""


def summarise(log: EnergyLog) -> dict[str, Any]:
    """The report of a log as a JSON-ready dict."""
    durs = log.durations_s
    med = statistics.median(durs)
    irregular = [i for i, d in enumerate(durs) if med > 0 and abs(d - med) > IRREGULAR * med]
    events = []
    for s in log.series:
        counted = [(e, d, t) for e, d, t in zip(s.energy_j, durs, log.times_s) if e is not None]
        energy = sum(e for e, _, _ in counted)
        span = sum(d for _, d, _ in counted)
        powers = [(e / d, t) for e, d, t in counted if d > 0]
        peak = max(powers, default=(0.0, None))
        events.append({
            "event": s.event,
            "domain": s.domain.id,
            "parent": s.domain.parent,
            "source": s.source,
            "quality": s.quality,
            "energy_j": energy,
            "mean_w": energy / span if span > 0 else 0.0,
            "peak_w": peak[0],
            "peak_at_s": peak[1],
            "min_w": min((p for p, _ in powers), default=0.0),
            "intervals": len(counted),
            "gap_intervals": len(s.energy_j) - len(counted),
            "gap_s": sum(d for e, d in zip(s.energy_j, durs) if e is None),
        })
    roots = {d.id for d in root_domains([s.domain for s in log.series])}
    qualities = sorted({s.quality for s in log.series})
    return {
        "log": log.path,
        "format": log.format,
        "quality": qualities[0] if len(qualities) == 1 else "mixed",
        "total_j": sum(e["energy_j"] for e in events if e["domain"] in roots),
        "total_of": [e["event"] for e in events if e["domain"] in roots],
        "duration_s": log.times_s[-1] - (log.times_s[0] - durs[0]),
        "intervals": {
            "count": len(durs),
            "median_s": med,
            "mean_s": statistics.fmean(durs),
            "min_s": min(durs),
            "max_s": max(durs),
            "stdev_s": statistics.pstdev(durs),
            "irregular": len(irregular),
            "irregular_at_s": [log.times_s[i] for i in irregular[:10]],
        },
        "events": events,
        "complete": not log.truncated and all(e["gap_intervals"] == 0 for e in events),
        "truncated": log.truncated,
        "warnings": list(log.warnings),
    }


def format_report(summary: dict[str, Any]) -> str:
    """The human-readable report, in the spirit of ``perf stat``."""
    iv = summary["intervals"]
    lines = [f" Energy report for '{summary['log']}' ({summary['format']}, {summary['quality']}):", ""]
    rows = [[e["event"], f"{e['energy_j']:.2f}", f"{e['mean_w']:.2f}", f"{e['peak_w']:.2f}",
             "-" if e["peak_at_s"] is None else f"{e['peak_at_s']:.1f}", e["intervals"], e["gap_intervals"]]
            for e in summary["events"]]
    lines.append(table(["event", "joules", "mean W", "peak W", "peak at s", "intervals", "gaps"], rows))
    lines += [
        "",
        f" {summary['total_j']:.2f} J total ({' + '.join(summary['total_of'])}; nested events not added)",
        f" {summary['duration_s']:.3f} seconds in {iv['count']} intervals: median {iv['median_s']:.4f} s, "
        f"min {iv['min_s']:.4f} s, max {iv['max_s']:.4f} s, stdev {iv['stdev_s']:.4f} s, "
        f"{iv['irregular']} irregular (>10% off the median)",
    ]
    if not summary["complete"]:
        lines.append(" incomplete: " + ("truncated log; " if summary["truncated"] else "")
                     + "gaps are not filled in, so totals are lower bounds")
    for w in summary["warnings"]:
        lines.append(f" warning: {w}")
    return "\n".join(lines)


def plot_power(log: EnergyLog, path: str | Path) -> None:
    """A PNG of power over time, one line per event (needs the ``plot`` extra).

    A long log is drawn as a min/max envelope: each bucket of consecutive
    intervals becomes a band from its lowest to its highest power with a line
    through the mean, so a 38,000-interval log is readable and its peaks stay.
    Gaps (intervals without a value) are left blank.
    """
    try:
        plt = pyplot()
    except ImportError:
        raise InputError("plotting needs matplotlib: pip install 'ipa-ext[plot]'", where="--plot") from None
    fig = power_figure(plt, log)
    try:
        fig.savefig(path, format="png")
    except OSError as exc:
        raise InputError(f"cannot write: {exc.strerror or exc}", path=path) from None
    finally:
        plt.close(fig)


def power_figure(plt: Any, log: EnergyLog) -> Any:
    """The matplotlib figure :func:`plot_power` saves."""
    fig, ax = plt.subplots(figsize=(10, 4), dpi=100, layout="constrained")
    styles = series_styles([s.event for s in log.series])
    size = 1
    for s in log.series:
        ys = [e / d if e is not None and d > 0 else None for e, d in zip(s.energy_j, log.durations_s)]
        env = envelope(log.times_s, ys)
        color = styles[s.event]["color"]
        label = f"{s.event} ({s.quality})"
        if env.downsampled:
            size = env.size
            ax.fill_between(env.x, nan(env.lo), nan(env.hi), color=color, alpha=0.3, lw=0,
                            label=f"{label}: min to max")
            ax.plot(env.x, nan(env.mean), color=color, lw=0.8, label=f"{label}: mean")
        else:
            ax.plot(log.times_s, nan(ys), color=color, lw=0.8, label=label)
    ax.set_xlabel("time since start (s)")
    ax.set_ylabel("power (W)")
    ax.set_ylim(bottom=0)
    title = Path(log.path).name
    if size > 1:
        med = statistics.median(log.durations_s)
        title += (f": {len(log.times_s)} intervals in buckets of {size} (about {size * med:.3g} s); "
                  "band = lowest to highest interval power, line = mean")
    ax.set_title(title, fontsize="medium")
    ax.grid(True, alpha=0.3)
    fig.legend(loc="outside lower center", ncol=4, fontsize="small", frameon=False)
    return fig
