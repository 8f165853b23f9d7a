"""Comma lists whose items hold commas: kubectl selectors and perf event terms."""

from __future__ import annotations

import pytest

from ipa_ext.config.lists import split_top_level


@pytest.mark.parametrize("text,kw,parts", [
    ("app=crop,tier in (a,b),!old", {"nest": "()"}, ["app=crop", "tier in (a,b)", "!old"]),
    ("a in (x,(y,z)),b", {"nest": "()"}, ["a in (x,(y,z))", "b"]),
    ("power/energy-pkg/,cpu/event=1,umask=2/", {"toggle": "/"}, ["power/energy-pkg/", "cpu/event=1,umask=2/"]),
    ("a,,b,", {}, ["a", "", "b", ""]),  # empty items are kept for the caller to refuse
    ("", {}, [""]),
])
def test_splits_only_the_commas_outside_brackets(text, kw, parts):
    assert split_top_level(text, **kw) == parts
    assert ",".join(parts) == text
