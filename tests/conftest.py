"""Shared fixtures: repository paths, the example pipeline and a plugin host."""

from __future__ import annotations

import os
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

from support.paths import ROOT, SHARED, VIDEO

# the order of the run (heaviest modules first), and pytester for tests/suite/
pytest_plugins = ["support.ordering", "pytester"]


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


# --------------------------------------------------------------------------- the fuzz tally
# tests/fuzz counts its outcomes per input class in fuzz.fuzzkit.TALLY. A parallel run (-n) has
# one tally per worker: each worker hands its own to the controller, which sums and prints them.


def _fuzz_tally():
    return sys.modules.get("fuzz.fuzzkit")


def pytest_sessionfinish(session):
    out = getattr(session.config, "workeroutput", None)  # set on a pytest-xdist worker only
    kit = _fuzz_tally()
    if out is not None and kit is not None and kit.TALLY:
        out["fuzz_tally"] = {k: dict(v) for k, v in kit.TALLY.items()}


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    tally = getattr(node, "workeroutput", {}).get("fuzz_tally")
    if tally:
        from fuzz import fuzzkit

        for kind, counts in tally.items():
            fuzzkit.TALLY[kind].update(counts)


def pytest_terminal_summary(terminalreporter):
    kit = _fuzz_tally()
    if kit is None or not kit.TALLY:
        return
    tr = terminalreporter
    tr.section(f"fuzz tally ({kit.EXAMPLES} examples per class requested)")
    tr.write_line(f"{'class':<22}{'runs':>8}{'ok':>8}{'error':>8}{'crash':>8}")
    for kind, c in sorted(kit.TALLY.items()):
        tr.write_line(f"{kind:<22}{c['runs']:>8}{c['ok']:>8}{c['error']:>8}{c['crash']:>8}")
    report = os.environ.get("IPA_EXT_FUZZ_REPORT")
    if report:
        kit.write_report(report)
        tr.write_line(f"wrote {report}")
