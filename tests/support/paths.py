"""Where things are: the repository, the shared data and the bundled video example."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("IPA_EXT_SHARED", ROOT.parent / "shared")).resolve()
VIDEO = ROOT / "examples" / "video"
VIDEO_CONFIG = VIDEO / "config.yaml"
FAKE_NVML = Path(__file__).resolve().parent / "fake_nvml"
"""A folder holding ``fake_pynvml.py`` (nvidia-ml-py's names over a scripted state)."""
