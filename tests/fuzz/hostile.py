"""Hypothesis strategies for hostile inputs: values, YAML snippets, and mutations of real files.

A mutation takes a real, valid document (a config, a pipeline, an IPA config),
picks places in it and puts hostile values there: huge integers, null, NaN,
infinities, negatives, empty and long strings, wrong types, deep nesting,
aliases (an alias bomb among them), tags and unknown keys. YAML snippets that
a dumper cannot write (aliases, tags, syntax errors) go in as raw text.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
VIDEO = ROOT / "examples" / "video"
SHARED = (ROOT.parent / "shared" / "data").resolve()

HUGE = 10**400
EDGE_NUMBERS = [0, -0.0, -1, 1, 0.5, -1e-300, 5e-324, 1e-300, 1e300, 1.7976931348623157e308, 2**53 + 1,
                2**63, 2**63 - 1, -(2**63), 2**64, 10**20, HUGE, -HUGE, 10**308, 10**309,
                float("nan"), float("inf"), float("-inf")]
EDGE_STRINGS = ["", " ", "abc", "1e400", "-1e400", "nan", "inf", "-inf", "NaN", "0x10", "1_000", " 4 ",
                "4,5", "null", "~", "true", "no", "\x00", "\t", "é", "💥", "a\nb", "../../etc/passwd",
                "x" * 5000, "9" * 400, "-" * 3, "{", "[", "'", '"', "%", "&a", "*a", "!!int", "1:30"]

scalar = st.one_of(
    st.sampled_from([None, True, False]),
    st.sampled_from(EDGE_NUMBERS),
    st.sampled_from(EDGE_STRINGS),
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
"""One hostile scalar."""

value = st.recursive(
    scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.one_of(st.text(max_size=6), st.integers()), inner, max_size=3)),
    max_leaves=6,
)
"""A hostile scalar, list or mapping."""


def _bomb(levels: int, width: int = 9) -> str:
    parts = [f"&b0 [{', '.join(['1'] * width)}]"]
    parts += [f"&b{i} [{', '.join([f'*b{i - 1}'] * width)}]" for i in range(1, levels)]
    return "[" + ", ".join(parts) + "]"


RAW_SNIPPETS = [
    _bomb(9), _bomb(4), _bomb(3, 3),
    "[" * 63 + "]" * 63, "[" * 65 + "]" * 65, "[" * 3000 + "]" * 3000, "{a: " * 80 + "1" + "}" * 80,
    "&r [*r]", "&m {a: *m}", "*undefined", "[&x 1, *x, *x]",
    "!!python/object/apply:os.system ['true']", "!!python/name:os.system", "!!float abc", "!!int 1.5",
    "!!binary '###'", "!!set {a, b}", "!!timestamp 2001-13-45", "2001-12-14", "2001-12-14 21:59:43.10 -5",
    "!!str 4", "!custom 4", "1" + "0" * 5000, "0x" + "f" * 400, "1:" + "3" * 300, ".nan", "-.inf",
    '"unterminated', "'also", "[1, 2", "{a: 1, a: 2}", "{? [1, 2] : 3}", "{[1]: 2}", "@x", "`x`",
    "|\n  block", ">-\n  folded", "- 1\n- 2", "\t4", "{a: 1}}",
]
"""Raw YAML values a dumper cannot write: aliases, tags, nesting, syntax errors."""


def paths(doc: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a nested mapping/list document, as key paths."""
    out = []
    if isinstance(doc, dict):
        for k, v in doc.items():
            out.append(prefix + (k,))
            out += paths(v, prefix + (k,))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.append(prefix + (i,))
            out += paths(v, prefix + (i,))
    return out


def _parent(doc: Any, path: tuple) -> Any:
    for k in path[:-1]:
        doc = doc[k]
    return doc


@st.composite
def mutated(draw: st.DrawFn, base: Any, extra_keys: tuple[str, ...] = (), max_edits: int = 3) -> tuple[Any, dict]:
    """``base`` with 1..``max_edits`` edits; returns the document and the raw snippets to splice
    in (by :func:`dump`): ``{placeholder: yaml_text}``."""
    doc = copy.deepcopy(base)
    raws: dict[str, str] = {}
    for n in range(draw(st.integers(1, max_edits))):
        places = paths(doc)
        op = draw(st.sampled_from(["replace", "replace", "replace", "raw", "delete", "add"]))
        if op == "add" or not places:
            containers = [()] + [p for p in places if isinstance(_parent(doc, p + (None,)), dict)]
            where = draw(st.sampled_from(containers))
            target = _parent(doc, where + (None,))
            key = draw(st.sampled_from(list(extra_keys) + ["unknown_key", "", "123", "x" * 300]))
            target[key] = draw(value)
            continue
        path = draw(st.sampled_from(places))
        parent = _parent(doc, path)
        if op == "delete":
            if isinstance(parent, dict):
                del parent[path[-1]]
            else:
                parent.pop(path[-1])
        elif op == "raw":
            token = f"RAWSNIPPET{n}"
            raws[token] = draw(st.sampled_from(RAW_SNIPPETS))
            parent[path[-1]] = token
        else:
            parent[path[-1]] = draw(value)
    return doc, raws


def dump(doc: Any, raws: dict[str, str] | None = None) -> str:
    """YAML text of ``doc`` with the raw snippets spliced in where their placeholders are."""
    text = yaml.safe_dump(doc, sort_keys=False, allow_unicode=True, default_flow_style=False, width=10**6)
    for token, raw in (raws or {}).items():
        if "\n" in raw:  # block snippets need their own indented lines
            raw = "\n".join(["", *("      " + ln for ln in raw.splitlines())])
        text = text.replace(token, raw)
    return text


SLOW_KEYS = {"num_state_limit": 5, "num_candidates": 5, "duration_s": 60, "load_duration": 60,
             "episodes": 5, "warm_episodes": 5, "max_steps": 5, "replica_offsets": 2}
"""Keys whose large values ask for a slow run on purpose (a huge search, a year of simulation):
:func:`clamp` caps their numbers, anywhere in a document."""


def _capped(v: Any, hi: float) -> Any:
    if isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) > hi:
        return hi if v > 0 else -hi
    if isinstance(v, list):
        return [_capped(x, hi) for x in v]
    return v


def clamp(doc: Any) -> Any:
    """``doc`` with the numbers of :data:`SLOW_KEYS` capped (in place; returned for chaining)."""
    if isinstance(doc, dict):
        for k, v in doc.items():
            if isinstance(k, str) and k in SLOW_KEYS:
                doc[k] = _capped(v, SLOW_KEYS[k])
            else:
                clamp(v)
    elif isinstance(doc, list):
        for v in doc:
            clamp(v)
    return doc


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())
