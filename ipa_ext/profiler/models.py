"""The model file behind each profiled variant: a zoo build from the cache or the user's checked ONNX file,
with the input size it is fed at and the file's hash (a profile row belongs to one file)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import InputError
from ..modelref import ModelRef


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
