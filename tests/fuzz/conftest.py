"""The fuzz group: every test here is marked ``fuzz``; the run ends with a per-class tally
(printed by tests/conftest.py, which also gathers it from parallel workers).

``IPA_EXT_FUZZ=long`` runs 5,000 examples per class instead of 100;
``IPA_EXT_FUZZ_REPORT=FILE`` also writes the tally as JSON.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.fuzz)

