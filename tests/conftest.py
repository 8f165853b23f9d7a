"""Shared fixtures: repository paths, the example pipeline and a plugin host."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci", derandomize=True, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.register_profile("dev", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("ci" if os.environ.get("CI") else "dev")

from ipa_ext.config.config import load_config
from ipa_ext.host import load_plugins

from support.paths import ROOT, SHARED, VIDEO


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture(scope="session")
def shared_data() -> Path:
    data = SHARED / "data"
    assert data.is_dir(), f"shared data not found at {data}; set IPA_EXT_SHARED"
    return data


@pytest.fixture(scope="session")
def host():
    return load_plugins()


@pytest.fixture(scope="session")
def video_config():
    return load_config(VIDEO / "config.yaml")


@pytest.fixture(scope="session")
def video_problem(video_config, host):
    return video_config.build_problem(host)
