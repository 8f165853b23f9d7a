"""The model zoo: names, families, options and published parameter counts.

Everything here is plain Python: specs and counts need neither onnx nor a single weight.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import InputError, UnknownNameError
from .resnet import DEPTHS, resnet
from .spec import Net
from .yolo import SIZES, STRIDE, yolov5

BUILDER_VERSION = 1
"""Part of every cache key: bump it whenever a builder's output changes."""


@dataclass(frozen=True)
class ZooEntry:
    """One zoo architecture."""

    name: str
    family: str
    builder: Callable[..., Net]
    default_input_size: int
    default_classes: int
    size_multiple: int
    calibration_size: int
    published_params: float
    """The published parameter count (torchvision's docs, YOLOv5 v6.0's release table)."""
    tolerance: float
    """How close our count must be to the published figure (relative)."""


# torchvision's documented counts; YOLOv5 v6.0's release table (millions, one decimal).
_RESNET_PUBLISHED = {"resnet18": 11_689_512, "resnet34": 21_797_672, "resnet50": 25_557_032,
                     "resnet101": 44_549_160, "resnet152": 60_192_808}
_YOLO_PUBLISHED = {"yolov5n": 1.9e6, "yolov5s": 7.2e6, "yolov5m": 21.2e6, "yolov5l": 46.5e6, "yolov5x": 86.7e6}

ZOO: dict[str, ZooEntry] = {
    **{n: ZooEntry(n, "resnet", resnet, 224, 1000, 1, 224, _RESNET_PUBLISHED[n], 0.01) for n in DEPTHS},
    **{n: ZooEntry(n, "yolov5", yolov5, 640, 80, STRIDE, 256, _YOLO_PUBLISHED[n], 0.05) for n in SIZES},
}
OPTION_KEYS = ("input_size", "num_classes", "width", "fold_bn")
MIN_INPUT_SIZE = 32
MAX_INPUT_SIZE = 4096


@dataclass(frozen=True)
class ModelOptions:
    """What a zoo build depends on besides its name and seed.

    ``width`` scales every layer's channel count (1.0: the published model; small values
    make tiny test models); ``fold_bn`` folds BatchNorm into the convs (inference graph).
    """

    input_size: int
    num_classes: int
    width: float = 1.0
    fold_bn: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def names() -> list[str]:
    return list(ZOO)


def entry(name: str, *, path: str | Path | None = None, where: str | None = None) -> ZooEntry:
    """The zoo entry ``name``; an unknown name is an :class:`UnknownNameError` listing the known ones."""
    try:
        return ZOO[name]
    except (KeyError, TypeError):
        raise UnknownNameError("zoo model", str(name), names(), path=path, where=where) from None


def _field(where: str | None, key: str) -> str:
    return f"{where}.{key}" if where else key


def _int_option(value: Any, key: str, low: int, high: int, err: Callable[[str, str], InputError]) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise err(key, f"must be an integer, got {value!r}")
    if not low <= value <= high:
        raise err(key, f"must be between {low} and {high}, got {value}")
    return value


def model_options(name: str, options: Mapping[str, Any] | ModelOptions | None = None, *,
                  path: str | Path | None = None, where: str | None = None) -> ModelOptions:
    """Checked options for ``name``, defaults filled in; a bad one is an :class:`InputError`
    naming ``path`` and the field (``where.key``)."""
    zoo_entry = entry(name, path=path, where=where)
    if isinstance(options, ModelOptions):
        options = options.as_dict()
    opts = dict(options or {})

    def err(key: str, message: str) -> InputError:
        return InputError(message, path=path, where=_field(where, key))

    for key in opts:
        if key not in OPTION_KEYS:
            raise err(str(key), f"unknown zoo option (known: {', '.join(OPTION_KEYS)})")
    size = _int_option(opts.get("input_size", zoo_entry.default_input_size), "input_size",
                       MIN_INPUT_SIZE, MAX_INPUT_SIZE, err)
    if size % zoo_entry.size_multiple:
        raise err("input_size", f"{name} needs a multiple of {zoo_entry.size_multiple}, got {size}")
    classes = _int_option(opts.get("num_classes", zoo_entry.default_classes), "num_classes", 1, 100_000, err)
    width = opts.get("width", 1.0)
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not math.isfinite(width) \
            or not 0 < width <= 4:
        raise err("width", f"must be a number in (0, 4], got {width!r}")
    fold_bn = opts.get("fold_bn", True)
    if not isinstance(fold_bn, bool):
        raise err("fold_bn", f"must be true or false, got {fold_bn!r}")
    return ModelOptions(size, classes, float(width), fold_bn)


def spec(name: str, options: Mapping[str, Any] | ModelOptions | None = None) -> Net:
    """The architecture of ``name`` with ``options``; counts come from it without any weight."""
    opts = model_options(name, options)
    return ZOO[name].builder(name, input_size=opts.input_size, num_classes=opts.num_classes, width=opts.width)


def calibration_spec(name: str, options: Mapping[str, Any] | ModelOptions | None = None) -> Net:
    """The same layers at the small input size the weights are calibrated on."""
    opts = model_options(name, options)
    size = min(opts.input_size, ZOO[name].calibration_size)
    return ZOO[name].builder(name, input_size=size, num_classes=opts.num_classes, width=opts.width)


def param_count(name: str, options: Mapping[str, Any] | ModelOptions | None = None) -> int:
    """Parameters counted as published (BN scale and shift included, even when folded)."""
    return spec(name, options).params()
