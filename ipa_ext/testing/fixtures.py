"""pytest fixtures for ipa-ext plugin authors (``pytest_plugins = ["ipa_ext.testing.fixtures"]``).

* ``ipa_ext_host``: a fresh plugin host (built-ins and installed entry points).
* ``register_plugin``: ``register_plugin(obj, name=...)`` adds a throwaway plugin to
  ``ipa_ext_host`` and removes it when the test ends, even when it fails.
* ``fake_powercap``: an empty :class:`FakePowercap` tree under ``tmp_path`` (add zones,
  or use :func:`server_tree`).
* ``video_pipeline`` / ``video_config`` / ``video_problem``: the bundled video example.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator

import pytest

from ..config.config import Config, load_config
from ..host import PluginHost, PluginRecord, load_plugins
from ..model import Pipeline
from ..problem.problem import Problem
from . import example_dir
from .powercap import FakePowercap


@pytest.fixture()
def ipa_ext_host() -> PluginHost:
    return load_plugins()


@pytest.fixture()
def register_plugin(ipa_ext_host: PluginHost) -> Iterator[Callable[..., PluginRecord]]:
    added: list[str] = []

    def register(obj: Any, name: str = "test-plugin") -> PluginRecord:
        rec = ipa_ext_host.add_plugin(obj, name, origin="test")
        added.append(name)
        return rec

    try:
        yield register
    finally:
        for name in reversed(added):
            ipa_ext_host.remove_plugin(name)


@pytest.fixture()
def fake_powercap(tmp_path) -> FakePowercap:
    return FakePowercap(tmp_path / "powercap")


@pytest.fixture()
def video_config() -> Config:
    return load_config(example_dir("video") / "config.yaml")


@pytest.fixture()
def video_pipeline(video_config: Config) -> Pipeline:
    return video_config.pipeline


@pytest.fixture()
def video_problem(video_config: Config, ipa_ext_host: PluginHost) -> Problem:
    return video_config.build_problem(ipa_ext_host)
