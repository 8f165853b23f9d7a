"""PNG plots of a benchmark grid: per workload, load and each policy's power, accuracy and cores over time; J/request vs accuracy.

A series equal to an earlier policy's in the same panel is drawn dashed, with
markers, over it and labelled ``(= that policy)``, so identical policies stay
visible; legends sit outside the data; long runs are drawn as min/max envelopes.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from ..adapt.log import read_log
from .plotting import MARKERS, MAX_POINTS, envelope, nan, overlay_style, pyplot, series_styles
from .summary import safe_name

if TYPE_CHECKING:  # pragma: no cover
    from ..run.compare import Cell

PANELS = (
    ("power", "power W"),
    ("accuracy", "accuracy %"),
    ("cores", "cores"),
)


def plot_grid(cells: Sequence[Cell], out: Path) -> list[Path] | str:
    """Write the plots; returns their paths, or why there are none."""
    try:
        plt = pyplot()
    except ImportError:
        return "matplotlib is not installed (pip install 'ipa-ext[plot]')"
    styles = series_styles(list(dict.fromkeys(c.policy for c in cells)))
    by_wl: dict[str, list[Cell]] = {}
    for c in cells:
        by_wl.setdefault(c.workload, []).append(c)
    paths = []
    for wl, group in by_wl.items():
        paths.append(_save(plt, workload_figure(plt, wl, group, styles), out / f"{safe_name(wl)}.png"))
    # bbox "tight": the layout engine sees only the last of the scatter's legends
    paths.append(_save(plt, scatter_figure(plt, by_wl, styles), out / "energy_vs_accuracy.png", tight=True))
    return paths


def _save(plt: Any, fig: Any, path: Path, tight: bool = False) -> Path:
    try:
        fig.savefig(path, dpi=110, bbox_inches="tight" if tight else None)
    finally:
        plt.close(fig)
    return path


def _quality(cells: Sequence[Cell]) -> str:
    q = {c.summary["energy"].get("quality") for c in cells} - {None}
    return ", ".join(sorted(q)) or "no energy"


def _series(c: Cell) -> dict[str, Any]:
    lines = read_log(c.dir / "adaptation.jsonl")
    dur = [max(l["interval"]["end_s"] - l["interval"]["start_s"], 1e-9) for l in lines]
    return {
        "t": [l["interval"]["start_s"] for l in lines],
        "load": [l["interval"]["arrivals"] / d for l, d in zip(lines, dur)],
        "predicted": [l.get("predicted_rps") for l in lines],
        "power": [(l.get("energy") or {}).get("power_w") for l in lines],
        "accuracy": [(l.get("accuracy") or {}).get("pct") for l in lines],
        "cores": [l["interval"].get("cores") for l in lines],
    }


def same_series(a: Sequence[float | None], b: Sequence[float | None]) -> bool:
    """Equal length and equal values (None only where the other is None)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b):
        if x is None or y is None:
            if x is not y:
                return False
        elif not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
            return False
    return True


def _draw(ax: Any, t: list[float], y: list[float | None], style: dict[str, Any], label: str,
          over: int) -> None:
    """One step series; ``over`` > 0: drawn over an identical one (dashed, markers, no band)."""
    if len(t) > MAX_POINTS:
        env = envelope(t, y)
        if not over:
            ax.fill_between(env.x, nan(env.lo), nan(env.hi), step="post", color=style["color"], alpha=0.15, lw=0)
        t, y = env.x, env.mean
    kw: dict[str, Any] = {"color": style["color"], "label": label}
    if over:
        kw.update(overlay_style(over, len(t)), marker=style["marker"])
    else:
        kw.update(lw=1.8, zorder=2)
    ax.step(t, nan(y), where="post", **kw)


def _panel(ax: Any, key: str, data: list[tuple[Cell, dict[str, Any]]], styles: dict[str, dict[str, Any]]) -> None:
    drawn: list[tuple[str, list[float | None], int]] = []  # policy, series, overlays on it so far
    for c, d in data:
        y = d[key]
        for i, (ref, ry, n) in enumerate(drawn):
            if same_series(y, ry):
                drawn[i] = (ref, ry, n + 1)
                _draw(ax, d["t"], y, styles[c.policy], f"{c.policy} (= {ref})", n + 1)
                break
        else:
            drawn.append((c.policy, y, 0))
            _draw(ax, d["t"], y, styles[c.policy], c.policy, 0)


def _load_panel(ax: Any, data: list[tuple[Cell, dict[str, Any]]], styles: dict[str, dict[str, Any]]) -> None:
    t0, d0 = data[0][1]["t"], data[0][1]
    long = len(t0) > MAX_POINTS
    load = envelope(t0, d0["load"]).mean if long else d0["load"]
    tl = envelope(t0, d0["load"]).x if long else t0
    ax.step(tl, nan(load), where="post", color="black", lw=1.2, label="load (arrivals)")
    same = all(same_series(d["predicted"], d0["predicted"]) for _, d in data)
    for c, d in (data[:1] if same else data):
        label = "predicted (every policy)" if same else f"predicted ({c.policy})"
        color = "dimgray" if same else styles[c.policy]["color"]
        y = envelope(d["t"], d["predicted"]).mean if long else d["predicted"]
        ax.step(tl if long else d["t"], nan(y), where="post", lw=0.9, ls="--", color=color, label=label)


def workload_figure(plt: Any, wl: str, group: Sequence[Cell], styles: dict[str, dict[str, Any]]) -> Any:
    """Load, power, accuracy and cores over time of one workload's cells (a matplotlib figure)."""
    data = [(c, _series(c)) for c in group if c.row()["status"] != "n/a"]
    fig, axes = plt.subplots(4, 1, figsize=(12, 11), sharex=True, layout="constrained")
    if data:
        _load_panel(axes[0], data, styles)
        for ax, (key, _) in zip(axes[1:], PANELS):
            _panel(ax, key, data, styles)
    skipped = [c.policy for c in group if c.row()["status"] == "n/a"]
    title = f"{wl}: one line per policy; a dashed line with markers repeats the policy after its '='"
    if skipped:
        title += f"\n(not drawn, does not apply: {', '.join(skipped)})"
    if data and len(data[0][1]["t"]) > MAX_POINTS:
        title += "\n(long run: lines are bucket means, bands the min to max of each bucket)"
    axes[0].set_title(title, fontsize="medium")
    axes[0].set_ylabel("requests/s")
    for ax, (_, label) in zip(axes[1:], PANELS):
        ax.set_ylabel(label if label != "power W" else f"power W ({_quality(group)})")
    axes[-1].set_xlabel("time s")
    for ax in axes:
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    return fig


def scatter_figure(plt: Any, by_wl: dict[str, list[Cell]], styles: dict[str, dict[str, Any]]) -> Any:
    """J per request against accuracy: colour per policy, marker per workload, rings where points coincide."""
    fig, ax = plt.subplots(figsize=(10, 6), layout="constrained")
    shown: set[str] = set()
    groups: list[str] = []
    all_cells = [c for g in by_wl.values() for c in g]
    for i, (wl, group) in enumerate(by_wl.items()):
        marker = MARKERS[i % len(MARKERS)]
        at: dict[tuple[float, float], list[str]] = {}
        for c in group:
            r = c.row()
            if r["status"] != "ok" or r["j_per_request"] is None or r["accuracy_pct"] is None:
                continue
            key = (round(r["j_per_request"], 9), round(r["accuracy_pct"], 9))
            names = at.setdefault(key, [])
            color = styles[c.policy]["color"]
            if not names:  # the first policy at this point: filled; repeats: rings around it
                ax.scatter(*key, marker=marker, s=50, color=color, zorder=3)
            else:
                ax.scatter(*key, marker=marker, s=50 + 90 * len(names), facecolors="none", edgecolors=color,
                           linewidths=1.6, zorder=3)
            shown.add(c.policy)
            names.append(c.policy)
        for (x, y), names in at.items():
            if len(names) > 1:
                tag = chr(ord("a") + len(groups) % 26)
                groups.append(f"{tag}: " + textwrap.fill(" = ".join(names) + f" ({wl})", 44,
                                                        subsequent_indent="    "))
                ax.annotate(tag, (x, y), xytext=(0, 12 + 3 * len(names)), textcoords="offset points",
                            fontsize=9, fontweight="bold", ha="center")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], ls="", marker="o", color=styles[p]["color"], label=p)
               for p in styles if p in shown]
    policies = ax.legend(handles=handles, title="policy (colour)", loc="upper left",
                         bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    ax.add_artist(policies)
    if groups:
        same = ax.legend(handles=[Line2D([], [], ls="", label=g) for g in groups], handlelength=0,
                         title="same point (rings around it)", loc="center left", bbox_to_anchor=(1.01, 0.5),
                         fontsize=8, frameon=False)
        ax.add_artist(same)
    shapes = [Line2D([], [], ls="", marker=MARKERS[i % len(MARKERS)], markerfacecolor="none",
                     markeredgecolor="black", label=wl) for i, wl in enumerate(by_wl)]
    ax.legend(handles=shapes, title="workload (marker shape)", loc="lower left", bbox_to_anchor=(1.01, 0.0),
              fontsize=8, frameon=False)
    ax.set_xlabel(f"J per served request ({_quality(all_cells)})")
    ax.set_ylabel("mean accuracy %")
    ax.set_title("energy per request vs accuracy (up and left is better)")
    ax.grid(alpha=0.3)
    return fig
