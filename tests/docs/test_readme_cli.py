"""The CLI reference (docs/cli.md) names every option the parser accepts, and the README's
command table has a row for every command, so both stay true as commands grow."""

from __future__ import annotations

import argparse
import re

import pytest

from ipa_ext.cli import build_parser

from support.paths import ROOT

README = ROOT / "README.md"
CLI_REFERENCE = ROOT / "docs" / "cli.md"


def commands(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    """(command words, option strings) for every command, nested ones included."""
    options = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from commands(sub, (*prefix, name))
        else:
            options.extend(o for o in action.option_strings if o not in ("-h", "--help"))
    has_sub = any(isinstance(a, argparse._SubParsersAction) for a in parser._actions)
    if prefix and not has_sub:
        yield prefix, options
    elif not prefix:
        yield (), options


CASES = list(commands(build_parser()))
COMMANDS = [words for words, _ in CASES if words]


def names(text: str, option: str) -> bool:
    """``option`` appears as a whole option (``-o`` is not found inside ``--out``)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def rows(text: str, words: tuple[str, ...]) -> list[str]:
    """The table rows of ``text`` whose first cell is ``ipa-ext WORDS ...``."""
    command = " ".join(words)
    return [l for l in text.splitlines()
            if l.startswith(f"| `ipa-ext {command} ") or l.startswith(f"| `ipa-ext {command}`")]


def test_options_are_matched_whole():
    assert names("[--out DIR]", "--out") and not names("[--output DIR]", "--out")
    assert not names("[--optimizer N]", "-o") and names("[-o\\|--source-option K=V]", "-o")


def test_rows_are_found_by_their_whole_command():
    text = "| `ipa-ext energy measure [--json]` | x |\n| `ipa-ext energy` | y |\n| `ipa-ext models list` | z |"
    assert rows(text, ("energy", "measure")) == ["| `ipa-ext energy measure [--json]` | x |"]
    assert rows(text, ("models", "list")) == ["| `ipa-ext models list` | z |"]
    assert rows(text, ("model",)) == []


def test_every_command_is_listed():
    assert len(CASES) > 10  # plugins, validate, optimize, pareto, simulate, bench, energy ..., adapt


@pytest.mark.parametrize("words,options", CASES, ids=[" ".join(w) or "global" for w, _ in CASES])
def test_the_cli_reference_names_every_option(words, options):
    text = CLI_REFERENCE.read_text(encoding="utf-8")
    if not words:
        line = next(l for l in text.splitlines() if l.startswith("Global flags:"))
        block = text[text.index(line):].split("\n\n")[0]
        missing = [o for o in options if not names(block, o)]
    else:
        found = rows(text, words)
        assert len(found) == 1, f"docs/cli.md has {len(found)} reference rows for ipa-ext {' '.join(words)}"
        cell = found[0].split("` |")[0]
        missing = [o for o in options if not names(cell, o)]
    assert not missing, f"docs/cli.md's reference for ipa-ext {' '.join(words)} lacks {missing}"


@pytest.mark.parametrize("words", COMMANDS, ids=[" ".join(w) for w in COMMANDS])
def test_the_readme_command_table_has_a_row_per_command(words):
    found = rows(README.read_text(encoding="utf-8"), words)
    assert len(found) == 1, f"README has {len(found)} command-table rows for ipa-ext {' '.join(words)}"
