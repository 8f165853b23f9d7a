"""The parent's side of a measuring worker: start it pinned to a core set, ask it to warm up and time
batches, read its answers, and stop it (also on Ctrl-C)."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from ..errors import IpaExtError


class WorkerError(IpaExtError):
    """A worker could not pin itself, load the model or run a batch; ``stage`` says which."""

    def __init__(self, message: str, stage: str) -> None:
        self.stage = stage
        super().__init__(message)


@dataclass(frozen=True)
class Timed:
    """One timed loop of one worker."""

    latencies_s: tuple[float, ...]
    wall_s: float
    cpu_s: float
    affinity: tuple[int, ...]


class Worker:
    """A ``python -m ipa_ext.profiler.worker`` child pinned to ``cores`` with ``threads`` intra-op threads."""

    def __init__(self, model: Path, cores: Sequence[int], *, threads: int, input_size: int | None,
                 providers: Sequence[str] = ("CPUExecutionProvider",), seed: int = 0) -> None:
        self.cores = tuple(cores)
        spec = {"model": str(model), "cores": list(self.cores), "threads": threads, "input_size": input_size,
                "providers": list(providers), "seed": seed}
        self._stderr = tempfile.TemporaryFile("w+")  # a file, not a pipe: a chatty worker never blocks
        self.proc = subprocess.Popen([sys.executable, "-m", "ipa_ext.profiler.worker"], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=self._stderr, text=True, bufsize=1)
        self.pid = self.proc.pid
        try:
            self._send(spec)
            ready = self._receive("ready")
        except BaseException:
            self.kill()
            raise
        self.affinity: tuple[int, ...] = tuple(ready["affinity"])
        self.providers: tuple[str, ...] = tuple(ready["providers"])
        self.inputs: list[dict[str, Any]] = ready["inputs"]

    def _send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(message) + "\n")
            self.proc.stdin.flush()
        except BrokenPipeError:
            self._died()

    def _receive(self, expected: str) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self._died()
        event = json.loads(line)
        if event.get("event") == "error":
            raise WorkerError(event.get("message", "unknown error"), event.get("stage", ""))
        if event.get("event") != expected:
            raise WorkerError(f"expected {expected!r} from the worker, got {event.get('event')!r}", "protocol")
        return event

    def _died(self) -> None:
        self.proc.wait()
        self._stderr.seek(0)
        tail = [line for line in self._stderr.read().splitlines() if line.strip()]
        why = tail[-1].strip() if tail else f"exit status {self.proc.returncode}"
        raise WorkerError(f"the measuring worker ended unexpectedly: {why}", "crash")

    def prepare(self, batch: int, warmup: int) -> list[float]:
        """Send the warm-up request; :meth:`prepared` waits for its answer (so several workers warm up at once)."""
        self._send({"cmd": "prepare", "batch": batch, "warmup": warmup})
        return []

    def prepared(self) -> list[float]:
        return list(self._receive("prepared")["warmup_s"])

    def start_timing(self, seconds: float, min_batches: int, max_batches: int | None = None) -> None:
        self._send({"cmd": "time", "seconds": seconds, "min_batches": min_batches, "max_batches": max_batches})

    def timed(self) -> Timed:
        event = self._receive("timed")
        return Timed(tuple(event["latencies_s"]), float(event["wall_s"]), float(event["cpu_s"]),
                     tuple(event["affinity"]))

    def close(self, timeout_s: float = 5.0) -> None:
        """Ask the worker to exit; kill it when it does not (it may be in the middle of a long batch)."""
        if self.proc.poll() is None:
            try:
                self._send({"cmd": "exit"})
                if self.proc.stdin is not None:
                    self.proc.stdin.close()
            except (WorkerError, OSError):
                pass
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdout, self.proc.stdin, self._stderr):
            if stream is not None and not stream.closed:
                stream.close()

    def kill(self) -> None:
        """Stop now (Ctrl-C): a batch in progress is abandoned."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.close(timeout_s=1.0)


def start_workers(model: Path, core_sets: Sequence[Sequence[int]], **kwargs: Any) -> list[Worker]:
    """One worker per core set; if one fails to start, the others are stopped before the error propagates."""
    workers: list[Worker] = []
    try:
        for cores in core_sets:
            workers.append(Worker(model, cores, threads=len(cores), **kwargs))
    except BaseException:
        for w in workers:
            w.kill()
        raise
    return workers
