"""The order of the run: the heaviest test modules first (a pytest plugin, loaded by conftest).

``python -m pytest`` runs on four pytest-xdist workers with ``--dist loadscope``: each module
goes whole to one worker, in the order the modules are collected, as workers fall free. A
module of 45 s handed out last keeps one worker busy while the others idle, so the modules
are ordered longest first (the classic longest-processing-time rule): their seconds come from
``tests/durations.json``. Modules not in it (new ones) follow, slow tests first, then fuzzing,
then the rest, each group in collection order.

``python -m pytest --record-durations`` rewrites ``tests/durations.json`` from a run that
passed. The file only orders the run: a stale one costs minutes, never a result.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

def durations_path(config) -> Path:
    """``tests/durations.json`` under the run's root: seconds per test module (setup, call and
    teardown summed), as the last recording measured."""
    return Path(config.rootpath) / "tests" / "durations.json"


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def read_durations(path: Path) -> dict[str, float]:
    """The recorded seconds per module; an absent or unreadable file orders nothing."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: float(v) for k, v in data.items()
            if isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool)}


def run_order(items: list, seconds: dict[str, float]) -> list:
    """``items`` reordered: recorded modules by seconds, longest first; then the unrecorded
    ones' slow tests, fuzz tests and the rest. Stable within each of these."""
    def group(item) -> int:
        return 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("fuzz") else 2

    def key(item) -> tuple[float, int]:
        s = seconds.get(module_of(item.nodeid))
        return (-s, 0) if s is not None else (0.0, 1 + group(item))

    return sorted(items, key=key)  # sorted() is stable


def pytest_addoption(parser):
    parser.addoption("--record-durations", action="store_true", default=False,
                     help="after a run that passed, write each test module's seconds to tests/durations.json "
                          "(it orders later runs, heaviest module first)")


@pytest.hookimpl(trylast=True)  # after tests/fuzz/conftest.py has marked its tests
def pytest_collection_modifyitems(config, items):
    items[:] = run_order(items, read_durations(durations_path(config)))


def pytest_configure(config):
    # recorded once, by the controller of a parallel run (every worker's reports reach it) or a serial run
    if config.getoption("record_durations") and not hasattr(config, "workerinput"):
        config.pluginmanager.register(Recorder(durations_path(config)), "ipa-ext-record-durations")


class Recorder:
    """Sums each module's report durations and writes them when the run passed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.seconds: dict[str, float] = defaultdict(float)

    def pytest_runtest_logreport(self, report) -> None:
        self.seconds[module_of(report.nodeid)] += report.duration

    @pytest.hookimpl(trylast=True)
    def pytest_terminal_summary(self, terminalreporter, exitstatus) -> None:
        if exitstatus != 0 or not self.seconds:
            terminalreporter.write_line(f"--record-durations: the run did not pass; {self.path} left as it was")
            return
        rows = sorted(((m, round(s, 1)) for m, s in self.seconds.items()), key=lambda kv: (-kv[1], kv[0]))
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(dict(rows), indent=1) + "\n")
        terminalreporter.write_line(f"--record-durations: wrote {len(rows)} modules to {self.path}")
