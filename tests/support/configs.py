"""Config files for tests: the video example's config with changes, and a minimal config around the
example's (or a test's own) pipeline and profile files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .paths import VIDEO


def video_config_data() -> dict[str, Any]:
    """The video example's config as a mapping, its pipeline and profile paths made absolute."""
    data = yaml.safe_load((VIDEO / "config.yaml").read_text())
    data["pipeline"] = str(VIDEO / data["pipeline"])
    data["profiles"] = str(VIDEO / data["profiles"])
    return data


def write_config(tmp_path: Path, **changes: Any) -> Path:
    """``tmp_path/config.yaml``: the video example's config with ``changes`` merged in (top-level keys)."""
    data = video_config_data()
    data.update(changes)
    p = tmp_path / "config.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def write_minimal_config(tmp_path: Path, extra: str = "", optimizer: str = "brute-force", **files: str) -> Path:
    """``tmp_path/config.yaml`` naming only a pipeline, profiles and an optimizer, plus ``extra`` YAML text.

    ``files`` are written into ``tmp_path`` first (``**{"profiles.csv": text}``); a ``pipeline.yaml`` or
    ``profiles.csv`` among them replaces the example's.
    """
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    pipe = "pipeline.yaml" if "pipeline.yaml" in files else str(VIDEO / "pipeline.yaml")
    prof = "profiles.csv" if "profiles.csv" in files else str(VIDEO / "profiles.csv")
    c = tmp_path / "config.yaml"
    c.write_text(f"pipeline: {pipe}\nprofiles: {prof}\noptimizer: {optimizer}\n{extra}")
    return c
