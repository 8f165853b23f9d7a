"""Real models for real inference: the ONNX model zoo, its cache, user ONNX files and onnxruntime.

Importing this package never imports onnx or onnxruntime (the ``serve`` extra); the
functions that need them say so with :class:`MissingExtraError`.
"""

from __future__ import annotations

from .cache import ZooModel, cached_builds, resolve_cache_dir, zoo_model
from .deps import MissingExtraError
from .onnxfile import OnnxInfo, check_onnx
from .runtime import create_session, random_batch
from .zoo import ZOO, ModelOptions, model_options, param_count, spec

__all__ = [
    "ZOO", "MissingExtraError", "ModelOptions", "OnnxInfo", "ZooModel", "cached_builds", "check_onnx",
    "create_session", "model_options", "param_count", "random_batch", "resolve_cache_dir", "spec", "zoo_model",
]
