"""Test helpers and pytest fixtures for plugin authors.

Enable the fixtures in a plugin's ``conftest.py``::

    pytest_plugins = ["ipa_ext.testing.fixtures"]

Then use ``ipa_ext_host``, ``register_plugin``, ``fake_powercap``,
``video_pipeline``, ``video_config`` and ``video_problem`` (see
:mod:`ipa_ext.testing.fixtures`). The fakes themselves are importable without
pytest: :class:`~ipa_ext.testing.powercap.FakePowercap` and
:func:`~ipa_ext.testing.powercap.server_tree`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from .powercap import FakePowercap, server_tree


def example_dir(name: str = "video") -> Path:
    """The folder of a bundled example pipeline (``pipeline.yaml``, ``profiles.csv``, ``config.yaml``)."""
    path = Path(str(resources.files("ipa_ext.examples") / name))
    if not (path / "config.yaml").is_file():
        raise FileNotFoundError(f"no bundled example {name!r} at {path}")
    return path


__all__ = ["FakePowercap", "example_dir", "server_tree"]
