"""The measured profile file: a commented header (machine, runtime, settings, energy, model hashes) and
the rows, rewritten whole per row (never half a row) and resumed when measured here with the same settings."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

from ..config.pipeline_files import MEASUREMENT_COLUMNS, OPTIONAL_COLUMNS, REQUIRED_COLUMNS
from ..errors import InputError
from ..inference.cache import atomic_write

MARKER = "# ipa-ext profile"
FORMAT_VERSION = 1
COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS + MEASUREMENT_COLUMNS
RESUME_KEYS = ("machine-id", "onnxruntime", "device", "latency", "replicas")
"""Header fields that must match for existing rows to be kept."""
COLUMN_NOTES = (
    "latency_s: the latency percentile above of one batch, over the row's `batches` timed batches; "
    "latency_p50_s the median; latency_cv the spread (stdev/mean)",
    "throughput_rps: requests per second of one replica (batch x batches / timed seconds); with replicas > 1, "
    "throughput_total_rps is what they sustained together and throughput_rps a replica's share",
    "energy_quality is about power_w, idle_w and energy_j_per_request only: the timing columns are always measured",
)
_MODEL_LINE = re.compile(r"^# model (?P<key>.+): sha256 (?P<sha>[0-9a-f]{64})(?: \((?P<label>.*)\))?$")
_FIELD_LINE = re.compile(r"^# (?P<key>[a-z][a-z0-9-]*): (?P<value>.*)$")


@dataclass
class Header:
    """The header's fields (``fields`` in order: machine, machine-id, onnxruntime, device, latency, ...)
    and one model hash and label per ``STAGE/VARIANT``."""

    fields: dict[str, str]
    models: dict[str, tuple[str, str]] = field(default_factory=dict)

    def lines(self) -> list[str]:
        out = [f"{MARKER} {FORMAT_VERSION}: measured by 'ipa-ext profile'; lines starting with # are comments"]
        out += [f"# {k}: {v}" for k, v in self.fields.items()]
        out += [f"# model {k}: sha256 {sha} ({label})" for k, (sha, label) in self.models.items()]
        out += [f"# note: {n}" for n in COLUMN_NOTES]
        return out

    @classmethod
    def parse(cls, lines: Sequence[str]) -> "Header":
        fields: dict[str, str] = {}
        models: dict[str, tuple[str, str]] = {}
        for line in lines:
            m = _MODEL_LINE.match(line)
            if m:
                models[m["key"]] = (m["sha"], m["label"] or "")
                continue
            f = _FIELD_LINE.match(line)
            if f and f["key"] != "note":
                fields[f["key"]] = f["value"]
        return cls(fields, models)


def model_key(stage: str, variant: str) -> str:
    return f"{stage}/{variant}"


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read: {exc}", path=path, where="--out") from None
    lines = text.splitlines()
    if not lines or not lines[0].startswith(MARKER):
        raise InputError("exists and was not written by 'ipa-ext profile'; choose another --out or remove it",
                         path=path, where="--out")
    comments = [line for line in lines if line.startswith("#")]
    body = [line for line in lines if line.strip() and not line.startswith("#")]
    rows = list(csv.DictReader(io.StringIO("\n".join(body)))) if body else []
    return comments, rows


class ProfileFile:
    """The rows measured so far (kept, resumed or new) and the file they are written to."""

    def __init__(self, path: Path, header: Header, rows: Mapping[tuple[str, str, int, int], dict[str, str]],
                 order: Sequence[tuple[str, str]]) -> None:
        self.path = path
        self.header = header
        self.rows: dict[tuple[str, str, int, int], dict[str, str]] = dict(rows)
        self.order = {k: i for i, k in enumerate(order)}

    @classmethod
    def open(cls, path: Path, header: Header, order: Sequence[tuple[str, str]], *,
             restart: bool = False) -> tuple["ProfileFile", list[str]]:
        """The file at ``path`` with ``header`` (this run's fields); rows of an existing file are kept
        when its resume fields match, else an :class:`InputError` (unless ``restart``). Returns notes."""
        if restart or not path.exists():
            return cls(path, header, {}, order), []
        comments, raw = _read(path)
        old = Header.parse(comments)
        differ = [k for k in RESUME_KEYS if old.fields.get(k) != header.fields.get(k)]
        if differ:
            k = differ[0]
            raise InputError(f"was measured with {k} {old.fields.get(k)!r}, this run has {header.fields.get(k)!r}; "
                             "use --restart to measure it again, or another --out", path=path, where="--out")
        rows = {}
        for r in raw:
            try:
                rows[(r["stage"], r["variant"], int(float(r["cpu"])), int(float(r["batch"])))] = dict(r)
            except (KeyError, TypeError, ValueError):
                raise InputError(f"a row cannot be read back: {r}", path=path, where="--out") from None
        merged = replace(header, fields=dict(header.fields), models=dict(old.models))
        return cls(path, merged, rows, order), [f"{path}: {len(rows)} row(s) from an earlier run"] if rows else []

    def forget_model(self, stage: str, variant: str, sha256: str) -> int:
        """Drop the rows of (stage, variant) when they were measured on another model file; how many."""
        key = model_key(stage, variant)
        known = self.header.models.get(key)
        if known is None or known[0] == sha256:
            return 0
        stale = [k for k in self.rows if k[:2] == (stage, variant)]
        for k in stale:
            del self.rows[k]
        del self.header.models[key]
        return len(stale)

    def has(self, key: tuple[str, str, int, int]) -> bool:
        return key in self.rows

    def add(self, key: tuple[str, str, int, int], row: Mapping[str, Any], model: tuple[str, str]) -> None:
        """Record a measured row and its model's (sha256, label), and rewrite the file."""
        self.rows[key] = {c: _cell(row.get(c)) for c in COLUMNS}
        self.header.models[model_key(key[0], key[1])] = model
        self.write()

    def _sort_key(self, key: tuple[str, str, int, int]) -> tuple[int, str, str, int, int]:
        return (self.order.get(key[:2], len(self.order)), key[0], key[1], key[2], key[3])

    def text(self) -> str:
        buf = io.StringIO()
        buf.write("\n".join(self.header.lines()) + "\n")
        writer = csv.DictWriter(buf, fieldnames=list(COLUMNS), extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for key in sorted(self.rows, key=self._sort_key):
            writer.writerow({c: self.rows[key].get(c, "") for c in COLUMNS})
        return buf.getvalue()

    def write(self) -> None:
        try:
            atomic_write(self.path, self.text().encode("utf-8"))
        except OSError as exc:
            raise InputError(f"cannot write: {exc.strerror or exc}", path=self.path, where="--out") from None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
