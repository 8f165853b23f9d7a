"""The ``ipa-ext`` command line.

Each subcommand lives in its own module with ``add_parser(subparsers)``; this
module wires them together and turns every :class:`~ipa_ext.errors.IpaExtError`
into one line on stderr and a non-zero exit code (a traceback only with
``--debug``).
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Sequence

from .. import __version__
from ..errors import IpaExtError
from . import (adapt_cmd, bench_cmd, energy_cmd, models_cmd, optimize_cmd, pareto_cmd, plugins_cmd, simulate_cmd,
               validate_cmd)
from . import profile_cmd

COMMANDS = (plugins_cmd, validate_cmd, optimize_cmd, pareto_cmd, simulate_cmd, bench_cmd, energy_cmd, adapt_cmd,
            models_cmd)
COMMANDS += (profile_cmd,)


class _Parser(argparse.ArgumentParser):
    """argparse with usage errors as one ``ipa-ext: error:`` line (exit 2), like every other error."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"ipa-ext: error: {self.prog}: {message} (see {self.prog} --help)\n")


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


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except IpaExtError as exc:
        if args.debug:
            raise
        print(f"ipa-ext: error: {exc}", file=sys.stderr)
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
            f"ipa-ext: internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)",
            file=sys.stderr,
        )
        return 3


def run() -> None:  # pragma: no cover - console-script shim
    sys.exit(main())
