"""Driving the CLI in-process for the fuzz tests, and judging what came back.

Every fuzz test calls :func:`check` with an argv; it runs ``ipa_ext.cli.main``
with stdout and stderr captured, times it, sorts the outcome into ``ok``
(exit 0), ``error`` (a documented non-zero code with one ``ipa-ext: error:``
line) or ``crash`` (anything else), tallies it per input class, and fails the
test on a crash.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from hypothesis import HealthCheck, settings

from ipa_ext.cli import main

DOCUMENTED_CODES = {0, 1, 2, 3}
"""Exit codes a fuzzed input may produce: success, infeasible, bad input, solver failure
(130/143 need a signal, 127 a missing command, 70 is a bug)."""
TIME_BOUND_S = 20.0
"""A hang detector, not a performance assertion: every call must end well within this."""
LINE_LIMIT = 1000
"""The longest stderr line accepted: quoted values are cut to about 100 characters."""

LONG = os.environ.get("IPA_EXT_FUZZ", "").lower() == "long"
EXAMPLES = int(os.environ.get("IPA_EXT_FUZZ_EXAMPLES", "5000" if LONG else "100"))

FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
"""The fuzz profile: 100 examples per class in CI, 5,000 with ``IPA_EXT_FUZZ=long``
(``IPA_EXT_FUZZ_EXAMPLES=N`` sets any other count)."""

TALLY: dict[str, Counter[str]] = defaultdict(Counter)
"""Per input class: runs, ok, error, crash (read by the conftest's summary)."""


@dataclass
class Outcome:
    argv: list[str]
    code: int | None
    out: str
    err: str
    seconds: float
    problem: str | None  # why this is a crash, or None

    @property
    def kind(self) -> str:
        if self.problem:
            return "crash"
        return "ok" if self.code == 0 else "error"


def run(argv: Sequence[str]) -> Outcome:
    """``ipa-ext ARGV`` in-process: exit code, stdout, stderr, seconds, and any crash."""
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    code: int | None
    escaped = None
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as exc:  # argparse: usage errors, --help, --version
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
        except BaseException as exc:  # noqa: BLE001 - an escaped exception is the finding
            code, escaped = None, f"{type(exc).__name__}: {exc}"
    seconds = time.perf_counter() - start
    o = Outcome(list(argv), code, out.getvalue(), err.getvalue(), seconds, None)
    o.problem = f"exception escaped main(): {escaped}"[:2000] if escaped else _judge(o)
    return o


def _judge(o: Outcome) -> str | None:
    lines = o.err.splitlines()
    if o.seconds > TIME_BOUND_S:
        return f"took {o.seconds:.1f} s (bound {TIME_BOUND_S:g} s)"
    if o.code not in DOCUMENTED_CODES:
        return f"exit code {o.code} is not documented for bad input"
    if "Traceback" in o.err:
        return "a traceback on stderr"
    long = [ln for ln in lines if len(ln) > LINE_LIMIT]
    if long:
        return f"a stderr line of {len(long[0])} characters"
    errors = [i for i, ln in enumerate(lines) if ln.startswith("ipa-ext: error:")]
    after = [ln for ln in lines[errors[0] + 1:] if not ln.startswith("ipa-ext: ")] if errors else []
    if after:  # progress lines ("[1/2] ...") may come before an error, nothing of it after
        return f"an error message that goes on for lines: {after[0][:200]!r}"
    if o.code != 0 and len(errors) != 1:
        return f"exit {o.code} with {len(errors)} error lines"
    return None


def check(kind: str, argv: Sequence[str], *, show: str = "") -> Outcome:
    """Run, tally under ``kind`` and fail on a crash (``show`` is the input, for the report)."""
    o = run(argv)
    TALLY[kind]["runs"] += 1
    TALLY[kind][o.kind] += 1
    if o.problem:
        raise AssertionError(
            f"{kind}: {o.problem}\nargv: {o.argv}\nexit: {o.code}\nstderr: {o.err[-3000:]}\ninput:\n{show[:3000]}"
        )
    return o


def write_report(path: str | Path) -> None:
    Path(path).write_text(json.dumps({k: dict(v) for k, v in sorted(TALLY.items())}, indent=2) + "\n")


@contextlib.contextmanager
def chdir(path: str | Path):
    """Run in ``path`` (commands that write default output folders write there)."""
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
