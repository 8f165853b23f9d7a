"""The model file behind each profiled variant: a zoo build from the cache or the user's checked ONNX file,
with the input size it is fed at and the file's hash (a profile row belongs to one file)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..config.modelref import ModelRef
from ..errors import InputError


@dataclass(frozen=True)
class ResolvedModel:
    """A variant's model, ready to load: its file, hash, input size (None: fixed by the model) and label."""

    ref: ModelRef
    path: Path
    sha256: str
    input_size: int | None
    fixed_batch: int | None

    @property
    def label(self) -> str:
        return self.ref.label


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def _size_where(ref: ModelRef) -> str:
    return ref.where.rsplit(".", 1)[0] + ".input_size"


def resolve(ref: ModelRef, *, cache_dir: str | Path | None = None, batches: Sequence[int] = (),
            note: Callable[[str], None] | None = None) -> ResolvedModel:
    """Build (or find in the cache) a zoo model, or check a user's file; errors name the pipeline
    file and the variant's field (a missing or corrupt file, an input size the model does not take,
    a fixed batch size other than the ones asked for)."""
    if ref.kind == "zoo":
        from ..inference.cache import cached_path, resolve_cache_dir, zoo_model
        from ..inference.zoo import model_options

        opts = model_options(ref.source, ref.zoo_options(), path=ref.config, where=ref.where.rsplit(".", 1)[0])
        if note is not None and not cached_path(ref.source, opts, ref.seed, resolve_cache_dir(cache_dir)).is_file():
            note(f"{ref.stage}/{ref.variant}: building {ref.label} into the model cache")
        built = zoo_model(ref.source, ref.zoo_options(), seed=ref.seed, cache_dir=cache_dir,
                          path=ref.config, where=ref.where.rsplit(".", 1)[0])
        return ResolvedModel(ref, built.path, file_sha256(built.path), built.options.input_size, None)
    from ..inference.onnxfile import check_onnx

    assert ref.path is not None
    info = check_onnx(ref.path, input_size=ref.input_size, config=ref.config, where=ref.where,
                      size_where=_size_where(ref))
    free = [i for i, d in enumerate(info.input_shape[1:], start=1) if not (isinstance(d, int) and d > 0)]
    if free and not (ref.input_size is not None and len(info.input_shape) == 4 and set(free) <= {2, 3}):
        shown = "x".join(str(d) if isinstance(d, int) and d > 0 else "?" for d in info.input_shape)
        hint = "give input_size" if len(info.input_shape) == 4 and set(free) <= {2, 3} else \
            "the profiler fills only the batch and an image's height and width"
        raise InputError(f"{ref.path}: input {info.input_name!r} is {shown} with free dimensions: {hint}",
                         path=ref.config, where=_size_where(ref) if "input_size" in hint else ref.where)
    fixed = info.fixed_batch
    wrong = [b for b in batches if fixed is not None and b != fixed]
    if wrong:
        raise InputError(f"{ref.path}: the model's batch dimension is fixed at {fixed}; it cannot take batch "
                         f"{', '.join(map(str, wrong))} (profile it with --batches {fixed})",
                         path=ref.config, where=ref.where)
    return ResolvedModel(ref, ref.path, file_sha256(ref.path), ref.input_size, fixed)


def preflight(model: ResolvedModel, batches: Sequence[int]) -> None:
    """Run a user's model once at each of ``batches`` in this process, so that an input it does not take
    is an error naming the field before anything is measured (zoo models take their inputs by construction)."""
    from ..inference.deps import require
    from ..inference.runtime import random_batch, session_options

    ort = require("onnxruntime", "profiling")
    ref = model.ref
    quiet = session_options(1)
    quiet.log_severity_level = 4  # the error below is the message; onnxruntime's own log would repeat it
    try:
        session = ort.InferenceSession(str(model.path), sess_options=quiet, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InputError(f"{model.path}: onnxruntime cannot load it: {_first_line(exc)}", path=ref.config,
                         where=ref.where) from None
    run_options = ort.RunOptions()
    run_options.log_severity_level = 4
    for batch in dict.fromkeys(batches):
        try:
            session.run(None, random_batch(session, batch, input_size=model.input_size), run_options)
        except Exception as exc:  # onnxruntime's own exception types
            size = f" at input size {model.input_size}" if model.input_size else ""
            raise InputError(f"{model.path}: onnxruntime cannot run it on a batch of {batch}{size}: {_first_line(exc)}",
                             path=ref.config, where=_size_where(ref) if model.input_size else ref.where) from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
