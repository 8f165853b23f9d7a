"""Fuzz upstream IPA experiment configs (``../shared/data/ipa-configs``) with hostile values,
through ``validate IPA_CONFIG`` and an ipa-ext config that imports one with ``from_ipa``."""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from ipa_ext.config.ipa_import import DIRECT_KEYS, IGNORED_KEYS

from . import fuzzkit, hostile

BASES = {name: hostile.load(hostile.SHARED / "ipa-configs" / name)
         for name in ("video-1.yaml", "pipeline-simulation-video.yaml")}
EXTRA_KEYS = DIRECT_KEYS + tuple(IGNORED_KEYS) + (
    "alpha", "beta", "gamma", "optimization_method", "arrival_rate", "predictor_type", "monitoring_duration",
    "backup_predictor_type", "backup_predictor_duration", "predictor_margin", "adaptation_interval", "drop_limit",
    "workload_type", "workload_config", "task_name", "initial_active_model", "initial_batch")
WRAPPER = (f"from_ipa: ipa.yaml\npipeline: {hostile.VIDEO / 'pipeline.yaml'}\nprofiles: {hostile.VIDEO / 'profiles.csv'}\n"
           "predictor: {name: moving-window-max}\nworkload: {type: synthetic, duration_s: 30}\n")


@st.composite
def ipa_config(draw: st.DrawFn) -> tuple[str, str]:
    name = draw(st.sampled_from(sorted(BASES)))
    doc, raws = draw(hostile.mutated(BASES[name], EXTRA_KEYS, max_edits=3))
    return name, hostile.dump(hostile.clamp(doc), raws)


COMMANDS = st.sampled_from([
    ["validate", "{ipa}"], ["validate", "{ipa}", "--json"], ["validate", "{c}"], ["optimize", "{c}", "--rate", "20"],
    ["simulate", "{c}", "--quiet", "--no-seconds", "--out", "{d}/out"],
])


@fuzzkit.FUZZ
@given(config=ipa_config(), command=COMMANDS)
def test_hostile_ipa_configs(config, command):
    _, text = config
    with tempfile.TemporaryDirectory() as d:
        ipa, c = Path(d) / "ipa.yaml", Path(d) / "config.yaml"
        ipa.write_text(text)
        c.write_text(WRAPPER)
        fuzzkit.check("ipa-config", [a.format(ipa=ipa, c=c, d=d) for a in command], show=text)
