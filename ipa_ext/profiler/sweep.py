"""The sweep: for each chosen variant and CPU count, start pinned workers, then measure every batch size
not measured yet (warm-up, a timed loop, an energy window) and write the row at once."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from ..errors import InputError
from .device import check_worker_providers
from .energy import ProfileEnergy
from .grid import Plan, Point, core_sets
from .handle import Timed, Worker, WorkerError, start_workers
from .models import ResolvedModel
from .stats import summarize
from .writer import ProfileFile


@dataclass(frozen=True)
class Settings:
    """How each row is measured."""

    seconds_per_row: float = 10.0
    min_batches: int = 10
    warmup: int = 2
    percentile: float = 99.0
    device: str = "cpu"
    providers: tuple[str, ...] = ("CPUExecutionProvider",)


@dataclass(frozen=True)
class Measured:
    """One row just measured: the point, the row's cells, and each worker's affinity as it reported it."""

    point: Point
    row: dict[str, Any]
    affinity: tuple[tuple[int, ...], ...]
    seconds: float
    """Wall time of the row, warm-up included."""


@dataclass
class Progress:
    """What the sweep reports as it goes (``on_row`` after every written row)."""

    total: int
    done: int = 0
    skipped: int = 0
    rows: list[Measured] = field(default_factory=list)
    started_s: float = field(default_factory=time.monotonic)


RowCallback = Callable[[Progress, Measured], None]


def _worker_error(exc: WorkerError, model: ResolvedModel, batch: int | None) -> InputError:
    ref = model.ref
    field_of_size = ref.where.rsplit(".", 1)[0] + ".input_size"
    if exc.stage == "pin":
        return InputError(str(exc), where="--cpus")
    if exc.stage == "run":
        size = f" at input size {model.input_size}" if model.input_size else ""
        return InputError(f"{model.path}: onnxruntime cannot run it on a batch of {batch}{size}: {exc}",
                          path=ref.config, where=field_of_size if model.input_size else ref.where)
    if exc.stage == "load":
        return InputError(f"{model.path}: onnxruntime cannot load it: {exc}", path=ref.config, where=ref.where)
    return InputError(f"{model.path}: {exc}", path=ref.config, where=ref.where)


def _row(point: Point, timed: Sequence[Timed], settings: Settings, energy: ProfileEnergy,
         start: Any, replicas: int) -> dict[str, Any]:
    latencies = [x for t in timed for x in t.latencies_s]
    s = summarize(latencies, settings.percentile)
    total_rps = sum(len(t.latencies_s) * point.batch / t.wall_s for t in timed if t.wall_s > 0)
    requests = sum(len(t.latencies_s) for t in timed) * point.batch
    e = energy.row(start, requests, point.cpu, replicas, gpu=settings.device == "gpu")
    return {"stage": point.stage, "variant": point.variant, "cpu": point.cpu, "batch": point.batch,
            "latency_s": s.latency_s, "throughput_rps": total_rps / replicas, "power_w": e.power_w,
            "idle_w": e.idle_w, "energy_j_per_request": e.energy_j_per_request, "latency_p50_s": s.p50_s,
            "latency_mean_s": s.mean_s, "latency_min_s": s.min_s, "latency_max_s": s.max_s, "latency_cv": s.cv,
            "batches": s.count, "timed_s": max(t.wall_s for t in timed), "replicas": replicas,
            "throughput_total_rps": total_rps, "energy_quality": e.quality}


def measure_row(workers: Sequence[Worker], point: Point, model: ResolvedModel, settings: Settings,
                energy: ProfileEnergy) -> Measured:
    """Warm every worker up at ``point.batch``, then time them together inside one energy window."""
    started = time.monotonic()
    try:
        for w in workers:
            w.prepare(point.batch, settings.warmup)
        for w in workers:
            w.prepared()
        start = energy.snapshot()
        for w in workers:
            w.start_timing(settings.seconds_per_row, settings.min_batches)
        timed = [w.timed() for w in workers]
    except WorkerError as exc:
        raise _worker_error(exc, model, point.batch) from None
    row = _row(point, timed, settings, energy, start, len(workers))
    return Measured(point, row, tuple(t.affinity for t in timed), time.monotonic() - started)


def _start(model: ResolvedModel, sets: list[list[int]], settings: Settings, energy: ProfileEnergy) -> list[Worker]:
    try:
        workers = start_workers(model.path, sets, input_size=model.input_size, providers=settings.providers,
                                seed=model.ref.seed)
    except WorkerError as exc:
        raise _worker_error(exc, model, None) from None
    for w, cores in zip(workers, sets):
        energy.workers.add(w.pid)
        if sorted(w.affinity) != sorted(cores):
            for x in workers:
                x.kill()
            raise InputError(f"a worker asked for CPUs {cores} runs on {list(w.affinity)}", where="--cpus")
    try:
        check_worker_providers(settings.device, workers[0].providers)
    except InputError:
        for x in workers:
            x.kill()
        raise
    return workers


def sweep(plan: Plan, models: dict[tuple[str, str], ResolvedModel], usable: Sequence[int], settings: Settings,
          energy: ProfileEnergy, out: ProfileFile, on_row: RowCallback | None = None) -> Progress:
    """Measure every point of ``plan`` that ``out`` does not hold yet; each row is written when measured."""
    points = plan.points()
    todo = [p for p in points if not out.has(p.key)]
    progress = Progress(total=len(todo), skipped=len(points) - len(todo))
    for stage, variant in plan.variants:
        model = models[(stage, variant)]
        for cpu in plan.cpus:
            batches = [p for p in todo if (p.stage, p.variant, p.cpu) == (stage, variant, cpu)]
            if not batches:
                continue
            workers = _start(model, core_sets(cpu, plan.replicas, usable), settings, energy)
            try:
                for point in batches:
                    measured = measure_row(workers, point, model, settings, energy)
                    out.add(point.key, measured.row, (model.sha256, model.label))
                    progress.done += 1
                    progress.rows.append(measured)
                    if on_row is not None:
                        on_row(progress, measured)
            except BaseException:
                for w in workers:
                    w.kill()
                raise
            for w in workers:
                w.close()
    return progress
