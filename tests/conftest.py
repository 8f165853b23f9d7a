"""Shared fixtures: repository paths, the example pipeline and a plugin host."""

from __future__ import annotations

import os
import subprocess
import sys
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

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("IPA_EXT_SHARED", ROOT.parent / "shared")).resolve()
VIDEO = ROOT / "examples" / "video"


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


def run_cli(*args: str, env: dict | None = None, cwd: Path | None = None, timeout: float = 120):
    """Run the installed ``ipa-ext`` console script; returns the CompletedProcess."""
    exe = Path(sys.executable).with_name("ipa-ext")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ipa_ext"]
    full_env = dict(os.environ)
    full_env.pop("IPA_EXT_DISABLE_PLUGINS", None)
    if env:
        full_env.update(env)
    return subprocess.run(
        [*cmd, *args], capture_output=True, text=True, env=full_env, cwd=cwd or ROOT, timeout=timeout
    )


def assert_one_line_error(proc, *needles: str) -> None:
    """A user error: non-zero exit, one line on stderr naming what is wrong, no traceback."""
    assert proc.returncode != 0, proc.stdout
    err = proc.stderr.strip()
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [l for l in err.splitlines() if l.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("ipa-ext: error:"), err
    for n in needles:
        assert n in lines[0], (n, lines[0])
