"""The example third-party plugin packages under examples/plugins/: installed for real
into a throwaway target directory, discovered through their entry points, and their own
test suites run against this ipa-ext."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from support.paths import ROOT

pytestmark = pytest.mark.slow  # pip installs and the plugins' own suites in child processes

PLUGINS = sorted(p for p in (ROOT / "examples" / "plugins").iterdir() if (p / "pyproject.toml").is_file())


def test_there_are_two_example_plugins():
    assert [p.name for p in PLUGINS] == ["ipa-ext-greedy", "ipa-ext-http-meter"]


@pytest.mark.parametrize("plugin", PLUGINS, ids=lambda p: p.name)
def test_example_plugin_installs_and_its_tests_pass(plugin, tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(plugin)],
        check=True, capture_output=True, text=True, cwd=tmp_path,
    )
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("IPA_EXT_DISABLE_PLUGINS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(plugin / "tests")],
        capture_output=True, text=True, cwd=plugin, env=env, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout and "failed" not in proc.stdout
