"""The parent's side of one replica server process: start it pinned and wait until it is ready, change it
over its control endpoint, drain and stop it (SIGTERM, then SIGKILL after a timeout)."""

from __future__ import annotations

import http.client
import json
import select
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Sequence

from ..errors import IpaExtError

READY_TIMEOUT_S = 180.0


class ServingError(IpaExtError):
    """A replica could not start (bind, pin, model load) or answer; ``stage`` says which step failed."""

    def __init__(self, message: str, stage: str = "") -> None:
        self.stage = stage
        super().__init__(message)


@dataclass(frozen=True)
class ReplicaSpec:
    """What one replica runs: its stage's model name, the ONNX file and where and how it runs it."""

    name: str
    model: Path
    input_size: int | None
    cores: tuple[int, ...]
    max_batch_size: int = 1
    max_batch_time_s: float = 0.0
    port: int = 0

    @property
    def threads(self) -> int:
        return len(self.cores)

    def argv(self) -> list[str]:
        argv = [sys.executable, "-m", "ipa_ext.serving.replica", "--name", self.name, "--model", str(self.model),
                "--cores", ",".join(map(str, self.cores)), "--threads", str(self.threads), "--port", str(self.port),
                "--max-batch-size", str(self.max_batch_size), "--max-batch-time", repr(self.max_batch_time_s)]
        return argv + (["--input-size", str(self.input_size)] if self.input_size else [])


class ReplicaProcess:
    """One running ``python -m ipa_ext.serving.replica`` child."""

    def __init__(self, spec: ReplicaSpec, ready_timeout_s: float = READY_TIMEOUT_S) -> None:
        self.spec = spec
        self._stderr = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(spec.argv(), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=self._stderr, text=True)
        self.pid = self.proc.pid
        self.started_s = time.monotonic()
        try:
            ready = self._wait_ready(ready_timeout_s)
        except BaseException:
            self.kill()
            raise
        self.port: int = int(ready["port"])
        self.affinity: tuple[int, ...] = tuple(ready["affinity"])
        self.ready_s = time.monotonic() - self.started_s

    def _wait_ready(self, timeout_s: float) -> dict[str, Any]:
        out = self.proc.stdout
        assert out is not None
        readable, _, _ = select.select([out], [], [], timeout_s)
        line = out.readline() if readable else ""
        out.close()
        if not readable:
            raise ServingError(f"replica of {self.spec.name!r} was not ready after {timeout_s:g} s", "timeout")
        if not line:
            self.proc.wait()
            raise ServingError(f"replica of {self.spec.name!r} ended before it was ready: {self.stderr_tail()}",
                               "crash")
        event = json.loads(line)
        if event.get("event") == "error":
            raise ServingError(str(event.get("message")), str(event.get("stage", "")))
        return event

    def stderr_tail(self) -> str:
        self._stderr.seek(0)
        lines = [ln.strip() for ln in self._stderr.read().splitlines() if ln.strip()]
        return lines[-1] if lines else f"exit status {self.proc.returncode}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def control(self, changes: dict[str, Any], timeout_s: float = 300.0) -> dict[str, Any]:
        """POST a change to the replica's control endpoint; its answer (with the timings) or a ServingError."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout_s)
        try:
            conn.request("POST", "/ipa-ext/reconfigure", json.dumps(changes).encode(),
                         {"content-type": "application/json"})
            resp = conn.getresponse()
            body = json.loads(resp.read() or b"{}")
        except (OSError, ValueError) as exc:
            raise ServingError(f"replica {self.pid} of {self.spec.name!r} did not answer: {exc}", "control") from None
        finally:
            conn.close()
        if resp.status != 200:
            raise ServingError(str(body.get("error", f"status {resp.status}")), "control")
        for key in ("model", "input_size", "max_batch_size", "max_batch_time_s"):
            if key in changes:
                self.spec = replace(self.spec, **{key: Path(changes[key]) if key == "model" else changes[key]})
        if "cores" in changes:
            self.spec = replace(self.spec, cores=tuple(changes["cores"]))
            self.affinity = tuple(body.get("affinity", changes["cores"]))
        return body

    def stop(self, timeout_s: float = 10.0) -> None:
        """SIGTERM (the server drains), then SIGKILL after ``timeout_s``."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._stderr.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        if not self._stderr.closed:
            self._stderr.close()


class CoreAllocator:
    """Disjoint core sets while cores last; then the least-used cores, counted as oversubscription.

    ``driver`` cores run the ``ipa-ext`` process: they count as used once, so replicas get them last (shared).
    """

    def __init__(self, usable: Sequence[int], driver: Sequence[int] = ()) -> None:
        self.usable = tuple(sorted(usable))
        self.driver = tuple(c for c in driver if c in self.usable)
        self.used = {c: int(c in self.driver) for c in self.usable}
        self.ever_shared = False
        """True once two replicas have shared a core (reported in the log and the summary)."""

    def allocate(self, n: int) -> tuple[tuple[int, ...], bool]:
        """``n`` cores and whether any of them was already in use."""
        if n > len(self.usable):
            raise ServingError(f"{n} cores asked for one replica; this machine lets us use {len(self.usable)} "
                               f"({', '.join(map(str, self.usable))})", "cores")
        chosen = sorted(sorted(self.usable, key=lambda c: (self.used[c], c in self.driver, c))[:n])
        shared = any(self.used[c] for c in chosen)
        self.ever_shared |= shared
        for c in chosen:
            self.used[c] += 1
        return tuple(chosen), shared

    def release(self, cores: Sequence[int]) -> None:
        for c in cores:
            if self.used.get(c, 0) > int(c in self.driver):
                self.used[c] -= 1

    def replica_counts(self) -> dict[int, int]:
        """Replicas on each core (the driver not counted)."""
        return {c: n - int(c in self.driver) for c, n in self.used.items()}

    @property
    def oversubscribed(self) -> bool:
        return any(n > 1 for n in self.used.values())
