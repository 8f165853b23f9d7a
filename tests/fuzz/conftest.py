"""The fuzz group: every test here is marked ``fuzz``; the run ends with a per-class tally.

``IPA_EXT_FUZZ=long`` runs 5,000 examples per class instead of 100;
``IPA_EXT_FUZZ_REPORT=FILE`` also writes the tally as JSON.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from . import fuzzkit

HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if Path(str(item.fspath)).resolve().parent == HERE:
            item.add_marker(pytest.mark.fuzz)


def pytest_terminal_summary(terminalreporter):
    if not fuzzkit.TALLY:
        return
    tr = terminalreporter
    tr.section(f"fuzz tally ({fuzzkit.EXAMPLES} examples per class requested)")
    tr.write_line(f"{'class':<22}{'runs':>8}{'ok':>8}{'error':>8}{'crash':>8}")
    for kind, c in sorted(fuzzkit.TALLY.items()):
        tr.write_line(f"{kind:<22}{c['runs']:>8}{c['ok']:>8}{c['error']:>8}{c['crash']:>8}")
    report = os.environ.get("IPA_EXT_FUZZ_REPORT")
    if report:
        fuzzkit.write_report(report)
        tr.write_line(f"wrote {report}")
