"""The LSTM weights file: a numpy ``.npz`` with a JSON header (format, version, shape, provenance).

Arrays are named as Keras exports them (``kernel``, ``recurrent_kernel``, ``bias``,
``dense_kernel``, ``dense_bias``); the header (array ``header``, a JSON string) says::

    {"format": "ipa-ext-lstm", "version": 1, "units": 25, "input_dim": 1, "timesteps": 12,
     "bucket_s": 10, "horizon_s": 20, "activation": "relu", "provenance": {...}}

:func:`load` checks all of it; anything wrong is one :class:`~ipa_ext.errors.InputError`
naming the file and the field. The weights trained on the Twitter trace ship with the
package (:data:`SHIPPED`).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import InputError
from ..config.show import clip, shown
from . import lstm

FORMAT = "ipa-ext-lstm"
VERSION = 1
SHIPPED = Path(__file__).resolve().parent / "data" / "twitter-lstm.npz"
"""IPA's LSTM trained on days 1-14 of the Twitter trace (see docs/predictors.md)."""
MAX_BYTES = 16 * 1024 * 1024
"""The largest weights file read, on disk and unpacked (16 MiB; IPA's model takes 25 KB)."""
HEADER_INTS = {"units": 4096, "input_dim": 1, "timesteps": 100_000, "bucket_s": 86_400, "horizon_s": 86_400}
"""Whole-number header fields and their largest value (the predictors feed one feature)."""


@dataclass(frozen=True)
class LstmWeights:
    """A trained model: its parameters, the input it expects and where it came from."""

    params: Mapping[str, np.ndarray]
    units: int = 25
    timesteps: int = 12
    bucket_s: int = 10
    horizon_s: int = 20
    activation: str = "relu"
    input_dim: int = 1
    provenance: Mapping[str, Any] = field(default_factory=dict)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Model outputs (B,) for bucket maxima (B, timesteps), unclipped."""
        return lstm.predict(self.params, x, self.activation)

    def header(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION, "units": self.units, "input_dim": self.input_dim,
                "timesteps": self.timesteps, "bucket_s": self.bucket_s, "horizon_s": self.horizon_s,
                "activation": self.activation, "provenance": dict(self.provenance)}


def save(weights: LstmWeights, path: str | Path) -> Path:
    """Write ``weights`` (float64 arrays and the JSON header); errors name the file."""
    p = Path(path)
    arrays = {k: np.asarray(weights.params[k], dtype=np.float64) for k in lstm.PARAM_NAMES}
    try:
        with p.open("wb") as f:
            np.savez(f, header=np.array(json.dumps(weights.header(), sort_keys=True)), **arrays)
    except OSError as exc:
        raise InputError(f"cannot write the weights file: {exc.strerror or exc}", path=p) from None
    return p


def _open(p: Path) -> Any:
    try:
        size = p.stat().st_size
    except FileNotFoundError:
        raise InputError("weights file not found", path=p) from None
    except OSError as exc:
        raise InputError(f"cannot read the weights file: {exc.strerror or exc}", path=p) from None
    if size > MAX_BYTES:
        raise InputError(f"{size} bytes, more than a weights file's {MAX_BYTES}", path=p)
    try:
        with zipfile.ZipFile(p) as z:
            unpacked = sum(i.file_size for i in z.infolist())
        if unpacked > MAX_BYTES:
            raise InputError(f"unpacks to {unpacked} bytes, more than a weights file's {MAX_BYTES}", path=p)
        return np.load(p, allow_pickle=False)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise InputError(f"not an LSTM weights file (a numpy .npz archive): {clip(str(exc), 120)}",
                         path=p) from None


def _array(npz: Any, name: str, p: Path) -> np.ndarray:
    try:
        return npz[name]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # object arrays: ValueError
        raise InputError(f"cannot read the array: {clip(str(exc), 120)}", path=p, where=name) from None


def _header(npz: Any, p: Path) -> dict[str, Any]:
    if "header" not in npz.files:
        raise InputError(f"missing; not an {FORMAT} weights file", path=p, where="header")
    try:
        raw = _array(npz, "header", p)
        head = json.loads(str(raw[()])) if raw.shape == () and raw.dtype.kind == "U" else None
    except (ValueError, TypeError):
        head = None
    if not isinstance(head, dict):
        raise InputError("expected a JSON object in a string array", path=p, where="header")
    if head.get("format") != FORMAT:
        raise InputError(f"expected {FORMAT!r}, got {shown(head.get('format'))}", path=p, where="header.format")
    v = head.get("version")
    if not isinstance(v, int) or isinstance(v, bool) or v != VERSION:
        newer = isinstance(v, int) and not isinstance(v, bool) and v > VERSION
        raise InputError(f"version {shown(v)} is not supported: this ipa-ext reads version {VERSION}"
                         + (" (the file was written by a newer ipa-ext)" if newer else ""),
                         path=p, where="header.version")
    for key, top in HEADER_INTS.items():
        n = head.get(key)
        if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= top:
            raise InputError(f"expected a whole number from 1 to {top}, got {shown(n)}", path=p,
                             where=f"header.{key}")
    if head.get("activation") not in lstm.ACTIVATIONS:
        raise InputError(f"expected one of {', '.join(lstm.ACTIVATIONS)}, got {shown(head.get('activation'))}",
                         path=p, where="header.activation")
    if not isinstance(head.get("provenance", {}), dict):
        raise InputError("expected a mapping", path=p, where="header.provenance")
    return head


def _params(npz: Any, head: Mapping[str, Any], p: Path) -> dict[str, np.ndarray]:
    extra = sorted(set(npz.files) - set(lstm.PARAM_NAMES) - {"header"})
    if extra:
        raise InputError(f"unexpected array (known: header, {', '.join(lstm.PARAM_NAMES)})", path=p,
                         where=clip(extra[0], 60))
    out = {}
    for name, shape in lstm.param_shapes(head["units"], head["input_dim"]).items():
        if name not in npz.files:
            raise InputError("missing array", path=p, where=name)
        a = _array(npz, name, p)
        if a.dtype.kind not in "fiu":
            raise InputError(f"expected numbers, got dtype {a.dtype}", path=p, where=name)
        if a.shape != shape:
            raise InputError(f"shape {a.shape} does not match the header's {head['units']} units "
                             f"and {head['input_dim']} input (expected {shape})", path=p, where=name)
        a = a.astype(np.float64)
        if not np.all(np.isfinite(a)):
            raise InputError("holds NaN or infinite values", path=p, where=name)
        out[name] = a
    return out


def load(path: str | Path) -> LstmWeights:
    """Read and check a weights file (see the module docstring)."""
    p = Path(path)
    with _open(p) as npz:
        head = _header(npz, p)
        params = _params(npz, head, p)
    return LstmWeights(params, head["units"], head["timesteps"], head["bucket_s"], head["horizon_s"],
                       head["activation"], head["input_dim"], head.get("provenance", {}))


def load_shipped() -> LstmWeights:
    """The weights that ship with the package (trained on the Twitter trace)."""
    return load(SHIPPED)
