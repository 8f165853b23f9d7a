"""The zoo's build cache: a zoo name, options and seed resolve to an ONNX file, built on first
use and written atomically (temporary file, then rename)."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from .. import __version__
from ..errors import InputError
from .deps import require
from .zoo import BUILDER_VERSION, ModelOptions, calibration_spec, entry, model_options, spec

ENV_VAR = "IPA_EXT_CACHE_DIR"


def resolve_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """The models cache folder: ``cache_dir``, else ``$IPA_EXT_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/ipa-ext/models``, else ``~/.cache/ipa-ext/models``."""
    if cache_dir is not None and str(cache_dir) != "":
        return Path(cache_dir).expanduser()
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME", "")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "ipa-ext" / "models"


def cache_key(name: str, options: ModelOptions, seed: int) -> str:
    blob = json.dumps({"name": name, "options": options.as_dict(), "seed": seed, "builder": BUILDER_VERSION},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def cached_path(name: str, options: ModelOptions, seed: int, directory: Path) -> Path:
    return directory / f"{name}-{options.input_size}-{cache_key(name, options, seed)}.onnx"


@dataclass(frozen=True)
class ZooModel:
    """A zoo model's file in the cache and what it holds.

    ``built`` says whether this call built it; ``build_time_s`` is that build's time (or
    the recorded time of the earlier build, None when not recorded).
    """

    name: str
    family: str
    options: ModelOptions
    seed: int
    path: Path
    params: int
    stored_params: int
    size_bytes: int
    built: bool
    build_time_s: float | None
    input_name: str
    input_shape: tuple[int, ...]
    output_name: str
    output_shape: tuple[int, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "options": self.options.as_dict(), "seed": self.seed,
                "path": str(self.path), "params": self.params, "stored_params": self.stored_params,
                "size_bytes": self.size_bytes, "built": self.built, "build_time_s": self.build_time_s,
                "input": {"name": self.input_name, "shape": ["batch", *self.input_shape]},
                "output": {"name": self.output_name, "shape": ["batch", *self.output_shape]}}


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it over ``path``.

    A crash at any point leaves either no ``path`` or the whole of it (and at worst a stray
    ``.NAME.*.tmp`` file, which nothing reads).
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask applies, as for any file
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _check_seed(seed: Any, path: str | Path | None, where: str | None) -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        field = f"{where}.seed" if where else "seed"
        raise InputError(f"must be an integer >= 0, got {seed!r}", path=path, where=field)
    return seed


def _prepare_dir(directory: Path) -> Path:
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the model cache folder: {exc.strerror or exc}", path=directory,
                         where="cache folder") from None
    return directory


def _sidecar(path: Path) -> Path:
    return path.with_suffix(".json")


def _recorded_build_time(path: Path) -> float | None:
    try:
        return float(json.loads(_sidecar(path).read_text())["build_time_s"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _build(name: str, opts: ModelOptions, seed: int, target: Path) -> float:
    """Build ``name`` into ``target``; returns the build time in seconds."""
    from .graph import to_onnx
    from .weights import seeded_weights

    start = time.perf_counter()
    net = spec(name, opts)
    weights = seeded_weights(calibration_spec(name, opts), seed)
    meta = {"ipa_ext.zoo": name, "ipa_ext.options": json.dumps(opts.as_dict(), sort_keys=True),
            "ipa_ext.seed": str(seed), "ipa_ext.builder": str(BUILDER_VERSION), "ipa_ext.params": str(net.params())}
    model = to_onnx(net, weights, fold_bn=opts.fold_bn, metadata=meta)
    del weights
    data = model.SerializeToString()
    del model
    try:
        atomic_write(target, data)
    except OSError as exc:
        raise InputError(f"cannot write {target.name}: {exc.strerror or exc}", path=target.parent,
                         where="cache folder") from None
    return time.perf_counter() - start


def zoo_model(name: str, options: Mapping[str, Any] | ModelOptions | None = None, *, seed: int = 0,
              cache_dir: str | Path | None = None, force: bool = False,
              path: str | Path | None = None, where: str | None = None) -> ZooModel:
    """The cached ONNX file of zoo model ``name`` with ``options``, built first when missing
    (or when ``force``). Bad names or options are an :class:`InputError` naming ``path`` and
    ``where`` (the config file and field that asked for the model)."""
    zoo_entry = entry(name, path=path, where=where)
    opts = model_options(name, options, path=path, where=where)
    seed = _check_seed(seed, path, where)
    target = cached_path(name, opts, seed, resolve_cache_dir(cache_dir))
    built = force or not target.is_file()
    if built:
        require("onnx", f"building zoo model {name}")
        _prepare_dir(target.parent)
        build_time: float | None = _build(name, opts, seed, target)
    else:
        build_time = _recorded_build_time(target)
    net = spec(name, opts)
    result = ZooModel(name, zoo_entry.family, opts, seed, target, net.params(), net.stored_params(opts.fold_bn),
                      target.stat().st_size, built, build_time, net.input.name, net.input.shape,
                      net.output.name, net.output.shape)  # type: ignore[union-attr]
    if built:
        record = {**result.as_dict(), "built": None, "builder_version": BUILDER_VERSION, "ipa_ext": __version__,
                  "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        atomic_write(_sidecar(target), (json.dumps(record, indent=2) + "\n").encode())
    return result


def cached_builds(directory: Path) -> list[dict[str, Any]]:
    """What the cache folder holds: one record per ONNX file (its sidecar's fields when present)."""
    if not directory.is_dir():
        return []
    records = []
    for onnx_file in sorted(directory.glob("*.onnx")):
        record: dict[str, Any] = {"path": str(onnx_file), "size_bytes": onnx_file.stat().st_size}
        try:
            record = {**json.loads(_sidecar(onnx_file).read_text()), **record}
        except (OSError, ValueError):
            pass
        record.pop("built", None)
        record.setdefault("name", onnx_file.stem.rsplit("-", 2)[0])
        records.append(record)
    return records
