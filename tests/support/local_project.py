"""A tiny two-stage project for the local backend's tests: zoo models a few milliseconds each, a hand-written
profile in which a step from 2 to 20 rps forces a scale-up and a variant switch, and a process-table check."""

from __future__ import annotations

import os
from pathlib import Path

PIPELINE = """\
name: tiny
stages:
  - name: det
    input_size: 64
    variants:
      - {name: y5n, accuracy: 40, zoo: yolov5n, width: 0.25}
  - name: cls
    input_size: 32
    variants:
      - {name: r18, accuracy: 70, zoo: resnet18, width: 0.25}
      - {name: r34, accuracy: 73, zoo: resnet34, width: 0.125}
"""
# At 2 rps r34 (more accurate) needs one replica; at 20 rps it would need 7, so r18 x2 wins (alpha 1, beta 1).
PROFILES = """\
stage,variant,cpu,batch,latency_s,throughput_rps
det,y5n,1,1,0.02,50
det,y5n,1,2,0.03,66
cls,r18,1,1,0.05,10
cls,r18,1,2,0.08,12
cls,r34,1,1,0.1,3
cls,r34,1,2,0.15,3.5
"""
CONFIG = """\
pipeline: pipeline.yaml
profiles: profiles.csv
sla_s: 2
threshold: 1
accuracy_method: sum
normalize_accuracy: false
batching_cap: 2
weights: {{alpha: 1, beta: 1, gamma: 0}}
initial:
  det: {{variant: y5n, cpu: 1, batch: 1, replicas: 1}}
  cls: {{variant: r34, cpu: {cls_cpu}, batch: 1, replicas: 1}}
optimizer: ilp
adaptation: {{interval_s: 5}}
predictor: {{name: max, backup: max, backup_duration_s: 0, monitoring_duration_s: 10}}
backend: local
local: {{max_batch_wait_s: 0.02, model_cache: {cache}{extra}}}
workload: {{type: twitter, trace: trace.txt}}
"""
STEP = [2] * 10 + [20] * 20


def write_project(root: Path, cache: Path, *, seconds: list[int] | None = None, cls_cpu: int = 1,
                  extra: str = "") -> Path:
    (root / "pipeline.yaml").write_text(PIPELINE)
    (root / "profiles.csv").write_text(PROFILES)
    (root / "trace.txt").write_text(" ".join(map(str, seconds or STEP)) + "\n")
    config = root / "config.yaml"
    config.write_text(CONFIG.format(cache=cache, cls_cpu=cls_cpu, extra=extra))
    return config


def replica_children(parent: int | None = None) -> list[int]:
    """Live replica server processes whose parent is ``parent`` (default: this process)."""
    parent = os.getpid() if parent is None else parent
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[1]) == parent and fields[0] != "Z" and b"ipa_ext.serving.replica" in cmd:
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
