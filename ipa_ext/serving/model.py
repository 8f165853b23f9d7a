"""The model a replica serves: an onnxruntime session on pinned cores, its V2 metadata and input checks."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .v2 import ORT_TYPES, ProtocolError


def pin_all_threads(cores: Sequence[int]) -> list[int]:
    """Pin every thread of this process to ``cores`` (threads started later inherit it)."""
    cores = list(cores)
    for tid in os.listdir("/proc/self/task"):
        try:
            os.sched_setaffinity(int(tid), cores)
        except (ProcessLookupError, OSError):
            pass  # a thread that just ended
    os.sched_setaffinity(0, cores)
    return sorted(os.sched_getaffinity(0))


class OrtRunner:
    """An onnxruntime session with ``threads`` intra-op threads, warmed up once at ``input_size``."""

    def __init__(self, path: str | Path, threads: int, input_size: int | None = None) -> None:
        from ..inference.runtime import create_session, random_batch

        self.path = str(path)
        self.threads = threads
        self.input_size = input_size
        self.session = create_session(path, threads=threads)
        self.inputs = self.session.get_inputs()
        self.outputs = self.session.get_outputs()
        self.example = random_batch(self.session, 1, input_size=input_size)
        self.session.run(None, self.example)  # warm-up: ready only after one real inference

    def run(self, feed: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
        arrays = self.session.run(None, feed)
        return [(o.name, np.asarray(a)) for o, a in zip(self.outputs, arrays)]

    def metadata(self, name: str) -> dict[str, Any]:
        def meta(args: Any) -> list[dict[str, Any]]:
            return [{"name": a.name, "datatype": ORT_TYPES.get(a.type, a.type),
                     "shape": [d if isinstance(d, int) else -1 for d in a.shape]} for a in args]

        return {"name": name, "platform": "onnxruntime", "inputs": meta(self.inputs), "outputs": meta(self.outputs)}

    def check(self, feed: dict[str, np.ndarray]) -> None:
        """A request's inputs must be the model's, with its datatypes and its fixed (or configured) dims."""
        names = {i.name for i in self.inputs}
        if set(feed) != names:
            raise ProtocolError(f"expected inputs {sorted(names)}, got {sorted(feed)}")
        rows = {a.shape[0] if a.ndim else None for a in feed.values()}
        if len(rows) != 1 or None in rows:
            raise ProtocolError("every input needs the same batch dimension")
        for spec in self.inputs:
            array, want = feed[spec.name], self.example[spec.name]
            if array.dtype != want.dtype or array.shape[1:] != want.shape[1:]:
                raise ProtocolError(f"input {spec.name!r}: expected {ORT_TYPES.get(spec.type, spec.type)} "
                                    f"[n, {', '.join(map(str, want.shape[1:]))}], got {array.dtype} "
                                    f"{list(array.shape)}")
