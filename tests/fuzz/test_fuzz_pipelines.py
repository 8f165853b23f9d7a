"""Fuzz pipeline and profile files: the example pipeline.yaml mutated, profiles.csv with hostile
cells, rows and headers, and the same table as a YAML profile list, through ``validate``
and ``optimize``."""

from __future__ import annotations

import csv
import io
import tempfile
from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from ipa_ext.config.pipeline_files import ALL_COLUMNS

from . import fuzzkit, hostile

PIPELINE = hostile.load(hostile.VIDEO / "pipeline.yaml")
PROFILE_LINES = [ln for ln in (hostile.VIDEO / "profiles.csv").read_text().splitlines()
                 if ln.strip() and not ln.startswith("#")]
HEADER = PROFILE_LINES[0].split(",")
ROWS = [r for r in csv.reader(PROFILE_LINES[1:])]

cell = st.one_of(
    st.sampled_from([str(x) for x in hostile.EDGE_NUMBERS] + hostile.EDGE_STRINGS),
    st.floats().map(repr),
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.text(max_size=8),
)


@st.composite
def profile_table(draw: st.DrawFn) -> list[list[str]]:
    """The example table (a sample of its rows) with hostile cells, rows, columns and header."""
    rows = [list(r) for r in draw(st.lists(st.sampled_from(ROWS), min_size=1, max_size=40))]
    header = list(HEADER)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["cell", "cell", "cell", "row", "dup", "column", "header"]))
        r = draw(st.integers(0, len(rows) - 1))
        if op == "cell" and rows[r]:
            rows[r][draw(st.integers(0, len(rows[r]) - 1))] = draw(cell)
        elif op == "row":
            rows.append(draw(st.lists(cell, min_size=0, max_size=len(header) + 2)))
        elif op == "dup":
            rows.append(list(rows[r]))
        elif op == "column":
            i = draw(st.integers(0, len(header) - 1))
            for row in [header] + rows:
                if i < len(row):
                    row.pop(i)
        else:
            header[draw(st.integers(0, len(header) - 1))] = draw(st.sampled_from(list(ALL_COLUMNS) + ["", "x"]))
    return [header] + rows


def _csv(table: list[list[str]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(table)
    return out.getvalue()


def _typed(text: str):
    """A CSV cell as the YAML value it reads as (``4`` an int, ``.nan`` a float), else the text."""
    try:
        return yaml.safe_load(text)
    except Exception:  # noqa: BLE001 - PyYAML raises assorted errors on odd cells ("!!int")
        return text


def _yaml_rows(table: list[list[str]]) -> list[dict]:
    header, rows = table[0], table[1:]
    return [{h: _typed(c) for h, c in zip(header, r)} for r in rows]


def _run(d: Path, pipeline_text: str, profiles_name: str, profiles_text: str, show: str) -> None:
    (d / "pipeline.yaml").write_text(pipeline_text)
    (d / profiles_name).write_text(profiles_text)
    c = d / "config.yaml"
    c.write_text(f"pipeline: pipeline.yaml\nprofiles: {profiles_name}\nrate_rps: 12\n")
    for argv in (["validate", str(c)], ["optimize", str(c)]):
        o = fuzzkit.check("pipeline/profiles", argv, show=show)
        if o.code != 0:
            break


@fuzzkit.FUZZ
@given(edit=hostile.mutated(PIPELINE, ("accuracy", "name", "variants", "stages", "profiles"), max_edits=3))
def test_hostile_pipeline_files(edit):
    doc, raws = edit
    text = hostile.dump(doc, raws)
    with tempfile.TemporaryDirectory() as d:
        _run(Path(d), text, "profiles.csv", "\n".join(PROFILE_LINES) + "\n", text)


@fuzzkit.FUZZ
@given(table=profile_table(), as_yaml=st.booleans())
def test_hostile_profile_tables(table, as_yaml):
    pipeline = hostile.dump(PIPELINE)
    if as_yaml:
        text = hostile.dump({"profiles": _yaml_rows(table)})
        name = "profiles.yaml"
    else:
        text, name = _csv(table), "profiles.csv"
    with tempfile.TemporaryDirectory() as d:
        _run(Path(d), pipeline, name, text, text)
