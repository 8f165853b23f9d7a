"""The ``ipa-ext`` command line.

Each subcommand lives in its own module with ``add_parser(subparsers)``; this
module wires them together and turns every :class:`~ipa_ext.errors.IpaExtError`
into one line on stderr and its exit code (see :data:`EXIT_CODES`); any other
exception is a bug: one line asking for a report, exit 70 (a traceback only
with ``--debug``).
"""

from __future__ import annotations

import argparse
import re
import sys
from typing import NoReturn, Sequence

from .. import __version__
from ..config.show import QUOTE_LIMIT
from ..errors import IpaExtError
from . import (adapt_cmd, bench_cmd, energy_cmd, models_cmd, optimize_cmd, pareto_cmd, plugins_cmd, simulate_cmd,
               validate_cmd)
from . import predictor_cmd, profile_cmd

EXIT_CODES = {
    0: "success",
    1: "no feasible configuration; an energy source that is not available; a transient fault",
    2: "bad input (config, profile, trace, log, command-line arguments)",
    3: "a MILP solver failed (for example stopped at its time limit before proving optimality)",
    70: "an internal error: a bug in ipa-ext or a plugin (EX_SOFTWARE)",
    130: "stopped by SIGINT",
    143: "stopped by SIGTERM",
}
"""The documented exit codes (``energy measure`` also passes the command's own code through)."""
EXIT_BUG = 70
MESSAGE_LIMIT = 2000
"""The longest error line printed (a backstop: readers quote values briefly already)."""

COMMANDS = (plugins_cmd, validate_cmd, optimize_cmd, pareto_cmd, simulate_cmd, bench_cmd, energy_cmd, adapt_cmd,
            models_cmd)
COMMANDS += (profile_cmd, predictor_cmd)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one ``ipa-ext: error:`` line (exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        sub = self.prog.removeprefix("ipa-ext").strip()  # argparse's prog: "ipa-ext" or "ipa-ext validate"
        where = f"{sub}: " if sub else ""
        message = re.sub(r"'([^']{%d})[^']+'" % QUOTE_LIMIT, r"'\1...'", message)  # argparse quotes values whole
        self.exit(2, f"ipa-ext: error: {where}{_line(message)} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="ipa-ext",
        description="Energy-aware inference-pipeline adaptation (extends IPA).",
    )
    parser.add_argument("--version", action="version", version=f"ipa-ext {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    parser.add_argument(
        "--strict", action="store_true", help="make any plugin failure fatal"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for mod in COMMANDS:
        mod.add_parser(sub)
    return parser


def _line(text: str) -> str:
    """One line of at most :data:`MESSAGE_LIMIT` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= MESSAGE_LIMIT else text[:MESSAGE_LIMIT] + "..."


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except IpaExtError as exc:
        if args.debug:
            raise
        print(f"ipa-ext: error: {_line(str(exc))}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("ipa-ext: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
    except Exception as exc:  # a bug: still one line unless --debug
        if args.debug:
            raise
        print(
            f"ipa-ext: internal error: {type(exc).__name__}: {_line(str(exc))[:300]} (a bug in ipa-ext or "
            f"a plugin: please report it with the command and the traceback that --debug prints)",
            file=sys.stderr,
        )
        return EXIT_BUG
