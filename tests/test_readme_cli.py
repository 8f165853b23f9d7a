"""The README's CLI reference names every option the parser accepts, so it stays true as
commands grow."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from ipa_ext.cli import build_parser

README = Path(__file__).resolve().parents[1] / "README.md"


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


def names(text: str, option: str) -> bool:
    """``option`` appears as a whole option (``-o`` is not found inside ``--out``)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


def test_options_are_matched_whole():
    assert names("[--out DIR]", "--out") and not names("[--output DIR]", "--out")
    assert not names("[--optimizer N]", "-o") and names("[-o\\|--source-option K=V]", "-o")


def test_every_command_is_listed():
    assert len(CASES) > 10  # plugins, validate, optimize, pareto, simulate, bench, energy ..., adapt


@pytest.mark.parametrize("words,options", CASES, ids=[" ".join(w) or "global" for w, _ in CASES])
def test_the_readme_reference_names_every_option(words, options):
    text = README.read_text(encoding="utf-8")
    if not words:
        line = next(l for l in text.splitlines() if l.startswith("Global flags:"))
        block = text[text.index(line):].split("\n\n")[0]
        missing = [o for o in options if not names(block, o)]
    else:
        row = [l for l in text.splitlines() if l.startswith(f"| `ipa-ext {' '.join(words)} ")
               or l.startswith(f"| `ipa-ext {' '.join(words)}`")]
        assert len(row) == 1, f"README has {len(row)} reference rows for ipa-ext {' '.join(words)}"
        cell = row[0].split("` |")[0]
        missing = [o for o in options if not names(cell, o)]
    assert not missing, f"README's reference for ipa-ext {' '.join(words)} lacks {missing}"
