"""Meta-tests, as datasette has: every hook is documented in docs/plugins.md and has a
test that implements it with a throwaway plugin."""

from __future__ import annotations

import re

import pytest

from ipa_ext import hookspecs
from ipa_ext.host import KIND_BASES

from support.paths import ROOT

DOC = (ROOT / "docs" / "plugins.md").read_text()
TEST_SOURCES = {
    p: p.read_text()
    for p in list((ROOT / "tests").rglob("*.py")) + list((ROOT / "examples" / "plugins").rglob("*.py"))
}


def section(hook: str) -> str:
    m = re.search(rf"^### {hook}\n(.*?)(?=^#{{2,3}} )", DOC, flags=re.S | re.M)
    return m.group(1) if m else ""


def test_hook_table_matches_hookspecs():
    specs = sorted(n for n in dir(hookspecs) if n.startswith("register_") and callable(getattr(hookspecs, n)))
    assert specs == sorted(hookspecs.HOOKS)
    assert set(hookspecs.HOOKS.values()) == set(KIND_BASES)


@pytest.mark.parametrize("hook", sorted(hookspecs.HOOKS))
def test_hook_is_documented(hook):
    text = section(hook)
    assert text, f"docs/plugins.md has no '### {hook}' section"
    assert "register(name, factory)" in text
    base = KIND_BASES[hookspecs.HOOKS[hook]]
    assert f".{base.__name__}" in text, f"{hook}: the section does not name {base.__name__}"
    assert getattr(hookspecs, hook).__doc__, f"{hook} has no docstring in hookspecs.py"


@pytest.mark.parametrize("hook", sorted(hookspecs.HOOKS))
def test_hook_has_a_test_plugin(hook):
    impl = re.compile(rf"@hookimpl\s*\ndef {hook}\(")
    users = [p for p, src in TEST_SOURCES.items() if impl.search(src) or impl.search(src.replace("    ", ""))]
    assert users, f"no test implements {hook} with a throwaway plugin"


@pytest.mark.parametrize("kind,base", sorted(KIND_BASES.items()))
def test_interface_is_documented(kind, base):
    assert f"### {base.__name__}" in DOC, f"docs/plugins.md does not document the {base.__name__} interface"
    for name, member in vars(base).items():
        if getattr(member, "__isabstractmethod__", False):
            assert f"def {name}(" in DOC, f"{base.__name__}.{name} is not documented"
