"""Helpers shared by the benchmark scripts: paths, timing, tables and JSON output."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "video" / "config.yaml"
RESULTS = ROOT / "benchmarks" / "results"
SHARED = Path(os.environ.get("IPA_EXT_SHARED", ROOT.parent / "shared"))
TRACE = SHARED / "data" / "twitter-trace" / "workload.tbz2"


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_avg": os.getloadavg() if hasattr(os, "getloadavg") else None,
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def ipa_ext_cmd() -> list[str]:
    exe = Path(sys.executable).with_name("ipa-ext")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "ipa_ext"]


def timed_cli(args: Sequence[str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    proc = subprocess.run([*ipa_ext_cmd(), *args], capture_output=True, text=True)
    return time.perf_counter() - start, proc


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    def fmt(v: Any) -> str:
        if v is None:
            return "n/a"
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    cells = [[str(h) for h in headers]] + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells)


def write_json(name: str, obj: Any, out: Path | None = None) -> Path:
    path = out or (RESULTS / f"{name}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"machine": machine(), **obj}, indent=2, default=str) + "\n")
    return path


def exact_base(host) -> str:
    """The exact optimizer the policies delegate to: ilp once it is registered."""
    return "ilp" if "ilp" in host.registry.names("optimizer") else "brute-force"


def config_with(folder: Path, weights_changes: dict[str, Any] | None = None, **changes: Any) -> Path:
    """The video example's config written to ``folder`` with its file paths made absolute,
    ``changes`` merged in at the top level and ``weights_changes`` into its weights."""
    import yaml

    data = yaml.safe_load(CONFIG.read_text())
    for key in ("pipeline", "profiles"):
        data[key] = str((CONFIG.parent / data[key]).resolve())
    data.update(changes)
    if weights_changes:
        data["weights"] = {**data.get("weights", {}), **weights_changes}
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path
