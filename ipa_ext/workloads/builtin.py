"""IPA's four windows of the Twitter trace, shipped in the package with their provenance.

``python -m ipa_ext.workloads.builtin TRACE`` cuts them from the trace again and rewrites the data file.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..config.show import shown
from ..errors import InputError
from .traces import Workload, load_trace
from .windows import IPA_WINDOWS, window

DATA_FILE = Path(__file__).resolve().parent / "data" / "ipa_windows.json"
"""The shipped windows: per-second counts, window bounds, damping, and the source trace's sha256."""

HOW_CUT = ("counts[start_s:end_s] of the trace's per-second series (end exclusive), each count integer-divided "
           "by damping_factor when it is not null, as IPA's workload generator does")


def sha256_of(path: str | Path) -> str:
    """The sha256 of a file's bytes, hex."""
    h = hashlib.sha256()
    with Path(path).open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cut_windows(trace: str | Path) -> dict[str, Any]:
    """The data file's content, cut from ``trace`` (workload.tbz2 or workload.txt)."""
    p = Path(trace)
    series = load_trace(p)
    windows = {}
    for name, (start, end, damping) in IPA_WINDOWS.items():
        counts = window(series, start, end, damping, path=p)
        windows[name] = {"start_s": start, "end_s": end, "damping_factor": damping,
                         "counts": [int(c) for c in counts]}
    return {
        "about": "IPA's evaluation windows of the Twitter request trace (per-second request counts)",
        "source": {
            "file": p.name, "sha256": sha256_of(p), "seconds": int(len(series)),
            "description": "the pre-processed Twitter trace of the IPA and InfAdapter papers: one integer per "
                           "second, requests per second",
        },
        "how_cut": HOW_CUT,
        "windows": windows,
    }


@lru_cache(maxsize=1)
def shipped() -> dict[str, Any]:
    """The shipped data file, read once."""
    return json.loads(DATA_FILE.read_text(encoding="utf-8"))


def builtin_window(name: str) -> Workload:
    """IPA's window ``name`` from the shipped data (no trace file needed)."""
    data = shipped()
    w = data["windows"].get(name)
    if w is None:
        raise InputError(f"unknown IPA window {shown(name)} (known: {', '.join(data['windows'])})",
                         where="--workload")
    params = {"trace": f"built-in ({data['source']['file']} sha256 {data['source']['sha256'][:12]}...)",
              "start_s": w["start_s"], "end_s": w["end_s"], "damping_factor": w["damping_factor"]}
    return Workload(f"twitter:{name}", np.asarray(w["counts"], dtype=np.int64), "trace", params)


def dumps(data: dict[str, Any]) -> str:
    """The data file's text: indented, with each window's counts on one line."""
    text = json.dumps({**data, "windows": {k: {**w, "counts": f"@{k}@"} for k, w in data["windows"].items()}},
                      indent=2)
    for k, w in data["windows"].items():
        text = text.replace(f'"@{k}@"', json.dumps(w["counts"], separators=(",", ":")))
    return text + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="cut IPA's windows from the Twitter trace into the package's data file")
    ap.add_argument("trace", help="workload.tbz2 or workload.txt")
    ap.add_argument("--out", default=str(DATA_FILE))
    args = ap.parse_args(argv)
    data = cut_windows(args.trace)
    Path(args.out).write_text(dumps(data), encoding="utf-8")
    print(f"wrote {args.out}: {sum(len(w['counts']) for w in data['windows'].values())} seconds from "
          f"{data['source']['file']} (sha256 {data['source']['sha256']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
