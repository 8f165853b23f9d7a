"""The ``serve`` extra (onnx, onnxruntime) for the tests that build and run models."""

from __future__ import annotations

import os

import pytest


def require_serve() -> None:
    """Skip the calling test module where the extra is not installed; a failure under CI."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        msg = f"the serve extra is not installed ({exc}): pip install -e '.[serve]'"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg, allow_module_level=True)
