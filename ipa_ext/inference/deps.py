"""The optional ``serve`` extra (onnx, onnxruntime): imported only when a command needs it."""

from __future__ import annotations

import importlib
from types import ModuleType

from ..errors import IpaExtError

EXTRA = "serve"


class MissingExtraError(IpaExtError):
    """An optional dependency is not installed; the message says which extra to install."""

    def __init__(self, what: str, module: str, reason: str = "") -> None:
        self.module = module
        message = f"{what} needs the '{EXTRA}' extra: pip install 'ipa-ext[{EXTRA}]'"
        super().__init__(message + (f" (import {module} failed: {reason})" if reason else ""))


def require(module: str, what: str) -> ModuleType:
    """Import ``module`` (onnx or onnxruntime) or raise :class:`MissingExtraError` for ``what``."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        missing = isinstance(exc, ModuleNotFoundError) and (exc.name or "").split(".")[0] == module
        raise MissingExtraError(what, module, "" if missing else str(exc)) from None
