"""The adaptation log: one JSON object per step, written as JSON lines and read back."""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Mapping, TextIO


def json_safe(x: Any) -> Any:
    """JSON-safe values: NaN and infinities become None, keys become strings."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {str(k): json_safe(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [json_safe(v) for v in x]
    return x


class AdaptationLog:
    """Appends one JSON object per line; flushes at most every ``flush_s`` and on close."""

    def __init__(self, path: str | Path, *, flush_s: float = 1.0) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f: TextIO | None = open(self.path, "w", encoding="utf-8")
        self.flush_s = flush_s
        self._last_flush = time.monotonic()
        self.lines = 0

    def write(self, record: Mapping[str, Any]) -> None:
        """Append one line (NaN and infinities written as null)."""
        if self._f is None:
            raise ValueError("adaptation log is closed")
        try:
            text = json.dumps(record, separators=(",", ":"), allow_nan=False)
        except ValueError:  # NaN or infinity somewhere: write null instead
            text = json.dumps(json_safe(dict(record)), separators=(",", ":"), allow_nan=False)
        self._f.write(text + "\n")
        self.lines += 1
        now = time.monotonic()
        if now - self._last_flush >= self.flush_s:
            self._f.flush()
            self._last_flush = now

    def close(self) -> None:
        """Flush and close; further writes raise ``ValueError``."""
        if self._f is not None:
            self._f.flush()
            self._f.close()
            self._f = None


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Read an adaptation log back (one dict per line)."""
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
