"""Fuzz ipa-ext configs: the example config with hostile values in its fields (and in
fields it leaves out), through ``validate``, ``optimize`` and a short ``simulate``."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ipa_ext.config.config import TOP_LEVEL_KEYS

from . import fuzzkit, hostile

BASE = hostile.load(hostile.VIDEO / "config.yaml")
BASE.update(
    pipeline=str(hostile.VIDEO / "pipeline.yaml"),
    profiles=str(hostile.VIDEO / "profiles.csv"),
    workload={"type": "synthetic", "pattern": "fluctuating", "duration_s": 30, "seed": 0},
    sla_s=None, batching_cap=8, power_cap_w=None, rate_rps=10, baseline_mode=None,
    carbon={"intensity_g_per_kwh": 300},
    energy={"sources": []},
    plugins={"load": [], "disable": []},
)
"""The example config with every top-level key present, so that each can be fuzzed."""
EXTRA_KEYS = tuple(TOP_LEVEL_KEYS) + ("trace", "options", "name", "type", "window", "delta", "margin_pct")

COMMANDS = st.sampled_from([
    ["validate", "{c}"], ["validate", "{c}", "--json"], ["optimize", "{c}"],
    ["optimize", "{c}", "--rate", "25", "--optimizer", "energy-ilp"],
    ["simulate", "{c}", "--quiet", "--no-seconds", "--out", "{d}/out"],
])


@fuzzkit.FUZZ
@given(edit=hostile.mutated(BASE, EXTRA_KEYS, max_edits=3), command=COMMANDS)
def test_hostile_config_values(edit, command):
    doc, raws = edit
    text = hostile.dump(hostile.clamp(doc), raws)
    with tempfile.TemporaryDirectory() as d:
        c = Path(d) / "config.yaml"
        c.write_text(text)
        fuzzkit.check("config", [a.format(c=c, d=d) for a in command], show=text)


@fuzzkit.FUZZ
@given(text=st.one_of(
    st.sampled_from(hostile.RAW_SNIPPETS),
    st.text(max_size=200),
    st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
))
def test_hostile_config_documents(text):
    """Whole documents that are not a mapping of settings: snippets, random text, bytes."""
    with tempfile.TemporaryDirectory() as d:
        c = Path(d) / "config.yaml"
        c.write_bytes(text.encode("utf-8", "surrogatepass"))
        fuzzkit.check("config", ["validate", str(c)], show=text)
