"""Loading pipelines and profile tables, and every way they can be wrong."""

from __future__ import annotations

from pathlib import Path

import pytest

from ipa_ext.config.pipeline_files import load_pipeline
from ipa_ext.errors import ProfileError

PIPELINE = """\
name: tiny
stages:
  - name: det
    variants:
      - {name: small, accuracy: 40}
      - {name: big, accuracy: 60}
  - name: cls
    variants: {r18: 70, r50: {accuracy: 76}}
"""
HEADER = "stage,variant,cpu,batch,latency_s,throughput_rps,power_w,idle_w,energy_j_per_request\n"
ROWS = [
    "det,small,1,1,0.1,10,12,2,",
    "det,big,1,1,0.3,3.3,12,2,",
    "cls,r18,1,1,0.05,20,,,0.4",
    "cls,r50,1,1,0.08,12,,,0.6",
]


def write(tmp_path: Path, rows=ROWS, header=HEADER, pipeline=PIPELINE, suffix=".csv") -> tuple[Path, Path]:
    pp = tmp_path / "pipeline.yaml"
    pp.write_text(pipeline)
    cp = tmp_path / f"profiles{suffix}"
    cp.write_text(header + "\n".join(rows) + "\n")
    return pp, cp


def test_loads_csv_with_comments_and_optional_power(tmp_path):
    pp, cp = write(tmp_path, rows=["# derived from nothing"] + ROWS)
    pipe = load_pipeline(pp, cp)
    assert pipe.stage_names == ("det", "cls")
    det = pipe.stage("det")
    assert det.variant("big").accuracy == 60
    p = det.profile("small", 1.0, 1)
    assert (p.latency_s, p.throughput_rps, p.power_w, p.idle_w) == (0.1, 10.0, 12.0, 2.0)
    # dynamic energy derived from power: (12 - 2) / 10 rps = 1 J
    assert p.dynamic_energy_j == pytest.approx(1.0)
    assert pipe.stage("cls").profile("r50", 1.0, 1).dynamic_energy_j == 0.6
    assert pipe.stage("cls").variant("r50").accuracy == 76
    assert pipe.has_power


def test_loads_yaml_profiles_and_inline(tmp_path):
    pp = tmp_path / "p.yaml"
    pp.write_text(PIPELINE + """profiles:
  - {stage: det, variant: small, cpu: 1, batch: 1, latency_s: 0.1, throughput_rps: 10}
  - {stage: det, variant: big, cpu: 1, batch: 1, latency_s: 0.3, throughput_rps: 3}
  - {stage: cls, variant: r18, cpu: 1, batch: 1, latency_s: 0.05, throughput_rps: 20}
  - {stage: cls, variant: r50, cpu: 1, batch: 1, latency_s: 0.08, throughput_rps: 12}
""")
    pipe = load_pipeline(pp)
    assert len(pipe.stage("det").profiles) == 2
    assert not pipe.has_power


@pytest.mark.parametrize(
    "rows,header,needle",
    [
        (ROWS, "stage,variant,cpu,batch,latency_s,power_w\n", "missing column(s) throughput_rps"),
        (ROWS[:1] + ["det,big,1,1,abc,3.3,12,2,"], HEADER, "line 3: column latency_s: expected a number, got 'abc'"),
        (ROWS[:1] + ["det,big,1,1,0,3.3,12,2,"], HEADER, "line 3: column latency_s: must be > 0"),
        (ROWS[:1] + ["det,big,1,1,0.3,-1,12,2,"], HEADER, "line 3: column throughput_rps: must be > 0"),
        (ROWS[:1] + ["det,big,1,1,0.3,nan,12,2,"], HEADER, "line 3: column throughput_rps"),
        (ROWS + ["det,small,1,1,0.2,9,12,2,"], HEADER, "line 6: duplicate row for (det, small, cpu 1, batch 1); first at line 2"),
        (ROWS + ["det,tiny,1,2,0.2,9,12,2,"], HEADER, "line 6: variant 'tiny' is not defined for stage 'det'"),
        (ROWS + ["seg,small,1,2,0.2,9,12,2,"], HEADER, "line 6: unknown stage 'seg'"),
        (ROWS[:1] + ["det,big,1,1.5,0.3,3,12,2,"], HEADER, "column batch: must be a whole number"),
        (ROWS[:1] + ["det,big,1,1,0.3,3"], HEADER, "line 3: expected 9 cells, found 6"),
        (ROWS[:1] + ["det,big,1,1,0.3,3,1,2,"], HEADER, "idle_w (2.0) is larger than power_w (1.0)"),
        (ROWS[1:], HEADER, "variant 'small' of stage 'det' has no profile rows"),
        ([], HEADER, "header but no rows"),
        (ROWS, HEADER.replace("latency_s", "lateny_s"), "unknown column(s) lateny_s"),
    ],
)
def test_bad_profile_tables(tmp_path, rows, header, needle):
    pp, cp = write(tmp_path, rows=rows, header=header)
    with pytest.raises(ProfileError) as exc:
        load_pipeline(pp, cp)
    assert str(exc.value).startswith(str(cp))
    assert needle in str(exc.value)


def test_variant_without_accuracy(tmp_path):
    pp, cp = write(tmp_path, pipeline=PIPELINE.replace("{name: big, accuracy: 60}", "{name: big}"))
    with pytest.raises(ProfileError, match=r"stages\[0\]\.variants\.big: variant has no accuracy"):
        load_pipeline(pp, cp)


@pytest.mark.parametrize("old,new,where", [
    ("name: tiny", "name: [1, 2]", "name"),
    ("  - name: det\n", "  - name: {x: 1}\n", r"stages\[0\]\.name"),
    ("{name: small, accuracy: 40}", "{name: null, accuracy: 40}", r"stages\[0\]\.variants\[0\]\.name"),
    ("{name: small, accuracy: 40}", "{name: '', accuracy: 40}", r"stages\[0\]\.variants\[0\]\.name"),
    ("name: tiny", "name: true", "name"),
])
def test_names_must_be_strings(tmp_path, old, new, where):
    pp, cp = write(tmp_path, pipeline=PIPELINE.replace(old, new, 1))
    with pytest.raises(ProfileError, match=rf"{where}: a name must be a non-empty string"):
        load_pipeline(pp, cp)


def test_a_numeric_name_is_its_text(tmp_path):
    pipeline = PIPELINE.replace("name: tiny", "name: 42").replace("r18: 70", "18: 70")
    rows = [r.replace("cls,r18", "cls,18") for r in ROWS]
    pp, cp = write(tmp_path, rows=rows, pipeline=pipeline)
    pipe = load_pipeline(pp, cp)
    assert pipe.name == "42" and [v.name for v in pipe.stages[1].variants] == ["18", "r50"]


def test_malformed_yaml_names_line(tmp_path):
    pp, cp = write(tmp_path, pipeline="stages: [\n  - name: x\n")
    with pytest.raises(ProfileError) as exc:
        load_pipeline(pp, cp)
    assert str(exc.value).startswith(f"{pp}: line") and "malformed YAML" in str(exc.value)


def test_empty_and_missing_files(tmp_path):
    pp, cp = write(tmp_path)
    cp.write_text("")
    with pytest.raises(ProfileError, match="empty profile table"):
        load_pipeline(pp, cp)
    with pytest.raises(ProfileError, match="file not found"):
        load_pipeline(pp, tmp_path / "nope.csv")
    with pytest.raises(ProfileError, match="'stages' must be a non-empty list"):
        load_pipeline({"name": "x", "stages": []}, cp)


def test_yaml_profile_rows_missing_fields(tmp_path):
    pp, _ = write(tmp_path)
    yp = tmp_path / "profiles.yaml"
    yp.write_text("profiles:\n  - {stage: det, variant: small, cpu: 1, batch: 1, latency_s: 0.1}\n")
    with pytest.raises(ProfileError, match=r"profiles\[0\]: missing field\(s\) throughput_rps"):
        load_pipeline(pp, yp)
    yp.write_text("profiles:\n  - {stage: det, variant: small, cpu: 1, batch: 1, latency_s: 0.1, throughput_rps: 3, watts: 2}\n")
    with pytest.raises(ProfileError, match=r"profiles\[0\]: unknown field\(s\) watts"):
        load_pipeline(pp, yp)


def test_the_profilers_measurement_columns_are_accepted(tmp_path):
    """A measured profile's extra columns (batches, median, spread, energy quality) load and are not used."""
    extra = ",latency_p50_s,batches,latency_cv,energy_quality"
    pp, cp = write(tmp_path, rows=["# ipa-ext profile 1: measured", "# machine: x"]
                   + [r + ",0.01,12,0.05,estimated" for r in ROWS], header=HEADER.rstrip("\n") + extra + "\n")
    pipe = load_pipeline(pp, cp)
    assert pipe.stage("det").profile("small", 1.0, 1).latency_s == 0.1
    yp = tmp_path / "p.yaml"
    yp.write_text("- {stage: det, variant: small, cpu: 1, batch: 1, latency_s: 0.1, throughput_rps: 10, batches: 3}\n"
                  "- {stage: det, variant: big, cpu: 1, batch: 1, latency_s: 0.3, throughput_rps: 3}\n"
                  "- {stage: cls, variant: r18, cpu: 1, batch: 1, latency_s: 0.05, throughput_rps: 20}\n"
                  "- {stage: cls, variant: r50, cpu: 1, batch: 1, latency_s: 0.08, throughput_rps: 12}\n")
    assert load_pipeline(pp, yp).stage("det").profile("small", 1.0, 1).throughput_rps == 10
