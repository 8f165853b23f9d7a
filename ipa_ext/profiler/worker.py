"""The measuring process (``python -m ipa_ext.profiler.worker``): it pins itself to its cores before
onnxruntime starts a thread, loads one model and times batches on request, in JSON lines."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from typing import Any, Callable, TextIO


def _send(out: TextIO, event: str, **fields: Any) -> None:
    out.write(json.dumps({"event": event, **fields}) + "\n")
    out.flush()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class Session:
    """One loaded model, its feeds per batch size, and the timing loop."""

    def __init__(self, spec: dict[str, Any]) -> None:
        from ..inference.runtime import session_options

        import onnxruntime as ort

        so = session_options(int(spec["threads"]))
        self.session = ort.InferenceSession(str(spec["model"]), sess_options=so, providers=list(spec["providers"]))
        self.input_size = spec.get("input_size")
        self.seed = int(spec.get("seed", 0))
        self.feed: dict[str, Any] = {}

    def prepare(self, batch: int, warmup: int) -> list[float]:
        """Make a random batch of ``batch`` inputs and run it ``warmup`` times (at least once)."""
        from ..inference.runtime import random_batch

        self.feed = random_batch(self.session, batch, input_size=self.input_size, seed=self.seed)
        return [self._once() for _ in range(max(1, warmup))]

    def _once(self) -> float:
        start = time.perf_counter()
        self.session.run(None, self.feed)
        return time.perf_counter() - start

    def time(self, seconds: float, min_batches: int, max_batches: int | None = None) -> tuple[list[float], float]:
        """Per-batch latencies of a loop that runs for ``seconds`` and ``min_batches`` batches at least."""
        latencies: list[float] = []
        start = time.perf_counter()
        while True:
            latencies.append(self._once())
            if max_batches is not None and len(latencies) >= max_batches:
                break
            if len(latencies) >= min_batches and time.perf_counter() - start >= seconds:
                break
        return latencies, time.perf_counter() - start


def _pin(cores: list[int]) -> list[int]:
    os.sched_setaffinity(0, cores)
    return sorted(os.sched_getaffinity(0))


def _handle(session: Session, cmd: dict[str, Any], out: TextIO) -> bool:
    """Run one command; False when the worker should exit."""
    if cmd.get("cmd") == "exit":
        return False
    if cmd.get("cmd") == "prepare":
        batch = int(cmd["batch"])
        try:
            warm = session.prepare(batch, int(cmd.get("warmup", 1)))
        except Exception as exc:  # onnxruntime's own exception types: the input does not fit the model
            _send(out, "error", stage="run", message=_first_line(exc), batch=batch)
            return True
        _send(out, "prepared", batch=batch, warmup_s=warm)
    elif cmd.get("cmd") == "time":
        cpu0 = time.process_time()
        latencies, wall = session.time(float(cmd["seconds"]), int(cmd["min_batches"]), cmd.get("max_batches"))
        _send(out, "timed", latencies_s=latencies, wall_s=wall, cpu_s=time.process_time() - cpu0,
              affinity=sorted(os.sched_getaffinity(0)))
    else:
        _send(out, "error", stage="protocol", message=f"unknown command {cmd!r}")
    return True


def serve(stdin: TextIO, stdout: TextIO, pin: Callable[[list[int]], list[int]] = _pin) -> int:
    """Read the spec line, pin, load the model, then answer commands until ``exit`` or end of input."""
    line = stdin.readline()
    if not line:
        return 0
    spec = json.loads(line)
    try:
        affinity = pin([int(c) for c in spec["cores"]])
    except OSError as exc:
        _send(stdout, "error", stage="pin", message=f"cannot pin to CPUs {spec['cores']}: {exc.strerror or exc}")
        return 1
    try:
        session = Session(spec)
    except Exception as exc:
        _send(stdout, "error", stage="load", message=_first_line(exc))
        return 1
    inputs = [{"name": i.name, "shape": [d if isinstance(d, int) else None for d in i.shape], "type": i.type}
              for i in session.session.get_inputs()]
    _send(stdout, "ready", pid=os.getpid(), affinity=affinity, providers=session.session.get_providers(),
          inputs=inputs)
    for line in stdin:
        if line.strip() and not _handle(session, json.loads(line), stdout):
            break
    return 0


def main() -> int:
    # Ctrl-C reaches the whole process group: the parent decides when a worker stops.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return serve(sys.stdin, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
