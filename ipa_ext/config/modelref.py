"""Real models named by a pipeline's variants (``model: FILE.onnx`` or ``zoo: NAME``), checked at load time.

The simulation ignores them; the profiler (and the local backend) run them. Checking needs
neither onnx nor onnxruntime: zoo names and options come from the zoo's plain-Python registry.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import InputError, ProfileError
from .yamlsafe import read_file

if TYPE_CHECKING:  # pragma: no cover
    from ..model import Pipeline

MODEL_KEYS = ("model", "zoo")
ZOO_OPTION_KEYS = ("input_size", "width", "num_classes", "fold_bn")
VARIANT_KEYS = ("name", "accuracy", *MODEL_KEYS, *ZOO_OPTION_KEYS, "seed")
"""The keys a variant that names a model may have (variants without one are not checked here)."""
STAGE_DEFAULT_KEYS = ("input_size",)
"""Stage-level defaults that the stage's model variants inherit."""


@dataclass(frozen=True)
class ModelRef:
    """The real model behind one variant: a user's ONNX file or a zoo architecture.

    ``options`` are the zoo options as written (defaults are the zoo's); ``input_size`` is
    the variant's or the stage's (None: the model's own, or the zoo default). ``config`` and
    ``where`` name the pipeline file and field, for errors found later (a missing file).
    """

    stage: str
    variant: str
    kind: str  # "file" | "zoo"
    source: str
    """The file as written, or the zoo name."""
    path: Path | None
    """The file resolved against the pipeline file's folder (None for zoo models)."""
    options: Mapping[str, Any] = field(default_factory=dict)
    input_size: int | None = None
    seed: int = 0
    config: Path | None = None
    where: str = ""

    @property
    def label(self) -> str:
        """``zoo yolov5n input_size=320`` or ``file models/mine.onnx``, for headers and messages."""
        opts = dict(self.options)
        if self.input_size is not None:
            opts["input_size"] = self.input_size
        shown = " ".join(f"{k}={v}" for k, v in sorted(opts.items()))
        if self.kind == "zoo":
            return f"zoo {self.source}" + (f" {shown}" if shown else "") + (f" seed={self.seed}" if self.seed else "")
        return f"file {self.source}" + (f" {shown}" if shown else "")

    def zoo_options(self) -> dict[str, Any]:
        """The options to build a zoo model with (``input_size`` included when set)."""
        opts = dict(self.options)
        if self.input_size is not None:
            opts["input_size"] = self.input_size
        return opts


def _err(path: Path | None, where: str, message: str) -> ProfileError:
    return ProfileError(message, path=path, where=where)


def _positive_int(value: Any, path: Path | None, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise _err(path, where, f"must be a whole number >= 1, got {value!r}")
    return value


def _variant_items(raw: Any) -> list[tuple[str, Any]]:
    """(name, body) per variant, for both the list and the mapping form (bodies may be numbers)."""
    if isinstance(raw, Mapping):
        return [(str(k), v) for k, v in raw.items()]
    if isinstance(raw, list):
        return [(str(v.get("name")), v) for v in raw if isinstance(v, Mapping)]
    return []


def parse_model_refs(data: Mapping[str, Any], *, path: Path | None,
                     base_dir: Path | None = None) -> dict[tuple[str, str], ModelRef]:
    """The model of every variant that names one, keyed by (stage, variant).

    ``data`` is a pipeline definition already checked by
    :func:`ipa_ext.config.pipeline_files.parse_pipeline_definition`; files are resolved against
    ``base_dir`` (default: the pipeline file's folder, else the working directory).
    Wrong types, unknown zoo names or options, and unknown keys of a model variant are a
    :class:`ProfileError` naming the file and field.
    """
    base = base_dir if base_dir is not None else (path.parent if path is not None else Path.cwd())
    refs: dict[tuple[str, str], ModelRef] = {}
    for i, stage in enumerate(data.get("stages") or []):
        swhere = f"stages[{i}]"
        sname = str(stage.get("name"))
        stage_size = None
        if stage.get("input_size") is not None:
            stage_size = _positive_int(stage["input_size"], path, f"{swhere}.input_size")
        for vname, body in _variant_items(stage.get("variants")):
            where = f"{swhere}.variants.{vname}"
            if not isinstance(body, Mapping) or not any(k in body for k in MODEL_KEYS):
                _no_model_options(body, path, where)
                continue
            refs[(sname, vname)] = _parse_one(sname, vname, body, stage_size, path, base, where)
    return refs


def with_models(pipeline: Pipeline, source: str | Path | Mapping[str, Any],
                base_dir: str | Path | None = None) -> Pipeline:
    """``pipeline`` with the models its definition names (``source``: the pipeline file, already read
    and checked by the loader, or the inline mapping) in :attr:`Pipeline.models`."""
    if isinstance(source, Mapping):
        data: Any = source
        path = None
    else:
        path = Path(source)
        data = read_file(path)  # the same bounded reading as the pipeline loader's
    models = parse_model_refs(data, path=path, base_dir=Path(base_dir) if base_dir is not None else None)
    return replace(pipeline, models=models) if models else pipeline


def _no_model_options(body: Any, path: Path | None, where: str) -> None:
    """Model options on a variant that names no model are a mistake worth naming."""
    if isinstance(body, Mapping):
        stray = [k for k in (*ZOO_OPTION_KEYS, "seed") if k in body]
        if stray:
            raise _err(path, f"{where}.{stray[0]}", "applies to a model: give 'model: FILE.onnx' or 'zoo: NAME'")


def _parse_one(stage: str, variant: str, body: Mapping[str, Any], stage_size: int | None,
               path: Path | None, base: Path, where: str) -> ModelRef:
    unknown = [str(k) for k in body if k not in VARIANT_KEYS]
    if unknown:
        raise _err(path, f"{where}.{unknown[0]}", f"unknown key (known: {', '.join(VARIANT_KEYS)})")
    if "model" in body and "zoo" in body:
        raise _err(path, where, "give either 'model' (an ONNX file) or 'zoo' (a zoo name), not both")
    size = stage_size
    if body.get("input_size") is not None:
        size = _positive_int(body["input_size"], path, f"{where}.input_size")
    seed = body.get("seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _err(path, f"{where}.seed", f"must be a whole number >= 0, got {seed!r}")
    if "model" in body:
        file = body["model"]
        if not isinstance(file, str) or not file.strip():
            raise _err(path, f"{where}.model", f"must be the path of an ONNX file, got {file!r}")
        zoo_only = [k for k in (*ZOO_OPTION_KEYS, "seed") if k in body and k != "input_size"]
        if zoo_only:
            raise _err(path, f"{where}.{zoo_only[0]}", "is a zoo option; a 'model' file is used as it is")
        resolved = Path(file).expanduser()
        resolved = resolved if resolved.is_absolute() else base / resolved
        return ModelRef(stage, variant, "file", file, resolved, {}, size, 0, path, f"{where}.model")
    name = body["zoo"]
    if not isinstance(name, str) or not name.strip():
        raise _err(path, f"{where}.zoo", f"must be a zoo model name, got {name!r}")
    options = {k: body[k] for k in ZOO_OPTION_KEYS if k in body and k != "input_size"}
    size_where = f"{where}.input_size" if "input_size" in body else where.split(".variants.")[0] + ".input_size"
    _check_zoo(name, {**options, **({"input_size": size} if size is not None else {})}, path, where, size_where)
    return ModelRef(stage, variant, "zoo", name, None, options, size, seed, path, f"{where}.zoo")


def _check_zoo(name: str, options: Mapping[str, Any], path: Path | None, where: str, size_where: str) -> None:
    """Zoo name and options through the zoo's own checks (plain Python: onnx is not imported).

    A bad input size names the field it came from (the variant's, or the stage default's).
    """
    from ..inference import zoo

    try:
        zoo.entry(name, path=path, where=f"{where}.zoo")
        zoo.model_options(name, options, path=path, where=where)
    except InputError as exc:
        field = size_where if exc.where == f"{where}.input_size" else exc.where
        raise ProfileError(exc.detail, path=path, where=field) from None
