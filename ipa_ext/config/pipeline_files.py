"""Load and validate a pipeline definition and its profile table (CSV or YAML).

A pipeline file (YAML) names the stages in order and gives each variant an
accuracy. A profile table has one row per ``(stage, variant, cpu, batch)``::

    stage,variant,cpu,batch,latency_s,throughput_rps[,power_w,idle_w,energy_j_per_request]

Every problem is reported as a :class:`~ipa_ext.errors.ProfileError` that names
the file and the line or field.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any, Iterable, Mapping

from ..errors import ProfileError
from ..model import Pipeline, Profile, Stage, Variant
from .numeric import MODEL_LIMIT, number
from .show import listed, shown
from .yamlsafe import read_file, read_text

REQUIRED_COLUMNS = ("stage", "variant", "cpu", "batch", "latency_s", "throughput_rps")
OPTIONAL_COLUMNS = ("power_w", "idle_w", "energy_j_per_request")
ALL_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
MEASUREMENT_COLUMNS = ("latency_p50_s", "latency_mean_s", "latency_min_s", "latency_max_s", "latency_cv",
                       "batches", "timed_s", "replicas", "throughput_total_rps", "energy_quality")
"""Columns ``ipa-ext profile`` adds about how a row was measured: accepted; of them only
``latency_p50_s`` is used (the simulator's service-time spread)."""
ACCEPTED_COLUMNS = ALL_COLUMNS + MEASUREMENT_COLUMNS


# --------------------------------------------------------------------------- pipeline


def parse_pipeline_definition(
    data: Any, *, path: str | Path | None
) -> tuple[str, list[tuple[str, list[Variant]]]]:
    """Parse ``{name, stages: [{name, variants}]}`` into stage names and variants."""
    if not isinstance(data, Mapping):
        raise ProfileError("expected a mapping with 'stages'", path=path)
    name = _name(data.get("name", "pipeline"), path=path, where="name")
    stages_raw = data.get("stages")
    if not isinstance(stages_raw, list) or not stages_raw:
        raise ProfileError("'stages' must be a non-empty list", path=path, where="stages")
    stages: list[tuple[str, list[Variant]]] = []
    seen: set[str] = set()
    for i, st in enumerate(stages_raw):
        where = f"stages[{i}]"
        if not isinstance(st, Mapping) or "name" not in st:
            raise ProfileError("each stage needs a 'name'", path=path, where=where)
        sname = _name(st["name"], path=path, where=f"{where}.name")
        if sname in seen:
            raise ProfileError(f"duplicate stage {shown(sname)}", path=path, where=where)
        seen.add(sname)
        variants = _parse_variants(st.get("variants"), path=path, where=f"{where}.variants")
        stages.append((sname, variants))
    return name, stages


def _name(value: Any, *, path: str | Path | None, where: str) -> str:
    """A pipeline, stage or variant name: a non-empty string (YAML numbers such as ``18``
    are taken as their text); lists, mappings, booleans and null are refused."""
    if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not str(value).strip():
        raise ProfileError(f"a name must be a non-empty string, got {shown(value)}", path=path, where=where)
    return str(value)


def _parse_variants(raw: Any, *, path: str | Path | None, where: str) -> list[Variant]:
    items: list[tuple[str, Any]] = []
    if isinstance(raw, Mapping):
        items = [(_name(k, path=path, where=where), v) for k, v in raw.items()]
    elif isinstance(raw, list):
        for j, v in enumerate(raw):
            if not isinstance(v, Mapping) or "name" not in v:
                raise ProfileError("each variant needs a 'name'", path=path, where=f"{where}[{j}]")
            items.append((_name(v["name"], path=path, where=f"{where}[{j}].name"), v))
    else:
        raise ProfileError("must list the stage's variants", path=path, where=where)
    if not items:
        raise ProfileError("a stage needs at least one variant", path=path, where=where)
    out: list[Variant] = []
    names: set[str] = set()
    for vname, v in items:
        vwhere = f"{where}.{vname}"
        if vname in names:
            raise ProfileError("duplicate variant", path=path, where=vwhere)
        names.add(vname)
        acc = v.get("accuracy") if isinstance(v, Mapping) else v
        if acc is None:
            raise ProfileError("variant has no accuracy", path=path, where=vwhere)
        out.append(Variant(vname, _finite(acc, path=path, where=f"{vwhere}.accuracy")))
    return out


def _finite(value: Any, *, path: str | Path | None, where: str) -> float:
    return number(value, where, path=path, error=ProfileError, text=True, minimum=-MODEL_LIMIT,
                  maximum=MODEL_LIMIT)


# --------------------------------------------------------------------------- profiles


def read_profile_rows(path: str | Path) -> list[tuple[str, dict[str, Any]]]:
    """Read raw profile rows from CSV or YAML as ``(location, row)`` pairs."""
    p = Path(path)
    if p.suffix.lower() in (".yaml", ".yml"):
        data = read_file(p)
        if isinstance(data, Mapping):
            data = data.get("profiles")
        if not isinstance(data, list):
            raise ProfileError("expected a list of profile rows (or a 'profiles' list)", path=p)
        rows = []
        for i, r in enumerate(data):
            if not isinstance(r, Mapping):
                raise ProfileError("a profile row must be a mapping", path=p, where=f"profiles[{i}]")
            rows.append((f"profiles[{i}]", dict(r)))
        if not rows:
            raise ProfileError("no profile rows", path=p)
        for loc, r in rows:
            extra = [str(k) for k in r if k not in ACCEPTED_COLUMNS]
            if extra:
                raise ProfileError(
                    f"unknown field(s) {listed(extra)} (expected {', '.join(ACCEPTED_COLUMNS)})",
                    path=p,
                    where=loc,
                )
        missing = [c for c in REQUIRED_COLUMNS if any(c not in r for _, r in rows)]
        if missing:
            first = next(loc for loc, r in rows if any(c not in r for c in missing))
            raise ProfileError(f"missing field(s) {', '.join(missing)}", path=p, where=first)
        return rows
    return _read_csv_rows(p)


def _read_csv_rows(p: Path) -> list[tuple[str, dict[str, Any]]]:
    raw = read_text(p, ProfileError)
    # Keep physical line numbers while skipping '#' comment lines.
    numbered = [
        (n, line)
        for n, line in enumerate(raw.splitlines(), start=1)
        if line.strip() and not line.lstrip().startswith("#")
    ]
    if not numbered:
        raise ProfileError("empty profile table", path=p)
    try:
        parsed = list(csv.reader(io.StringIO("\n".join(line for _, line in numbered))))
    except csv.Error as exc:
        raise ProfileError(f"malformed CSV: {exc}", path=p) from None
    header = [h.strip() for h in parsed[0]]
    header_line = numbered[0][0]
    unknown = [h for h in header if h not in ACCEPTED_COLUMNS]
    if unknown:
        raise ProfileError(
            f"unknown column(s) {listed(unknown)} (expected {', '.join(ACCEPTED_COLUMNS)})",
            path=p,
            where=f"line {header_line}",
        )
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ProfileError(f"missing column(s) {', '.join(missing)}", path=p, where=f"line {header_line}")
    if len(set(header)) != len(header):
        raise ProfileError("repeated column name in header", path=p, where=f"line {header_line}")
    rows = []
    for (lineno, _), cells in zip(numbered[1:], parsed[1:]):
        if len(cells) != len(header):
            raise ProfileError(
                f"expected {len(header)} cells, found {len(cells)}", path=p, where=f"line {lineno}"
            )
        rows.append((f"line {lineno}", {h: c.strip() for h, c in zip(header, cells)}))
    if not rows:
        raise ProfileError("profile table has a header but no rows", path=p)
    return rows


def parse_profile_row(row: Mapping[str, Any], *, path: str | Path, where: str) -> Profile:
    """Validate one raw row into a :class:`Profile`."""

    def num(col: str, *, positive: bool, optional: bool = False) -> float | None:
        v = row.get(col)
        if optional and (v is None or v == ""):
            return None
        if v is None or v == "":
            raise ProfileError(f"column {col}: empty", path=path, where=where)
        return number(v, f"{where}: column {col}", path=path, error=ProfileError, text=True,
                      positive=positive, minimum=None if positive else 0.0, maximum=MODEL_LIMIT)

    stage = str(row.get("stage", "")).strip()
    variant = str(row.get("variant", "")).strip()
    if not stage or not variant:
        raise ProfileError("stage and variant must not be empty", path=path, where=where)
    batch_f = num("batch", positive=True)
    assert batch_f is not None
    if batch_f != int(batch_f):
        raise ProfileError(f"column batch: must be a whole number, got {shown(row.get('batch'))}", path=path,
                           where=where)
    cpu = num("cpu", positive=True)
    latency = num("latency_s", positive=True)
    thr = num("throughput_rps", positive=True)
    assert cpu is not None and latency is not None and thr is not None
    power = num("power_w", positive=False, optional=True)
    idle = num("idle_w", positive=False, optional=True)
    epr = num("energy_j_per_request", positive=False, optional=True)
    if power is not None and idle is not None and idle > power:
        raise ProfileError(
            f"idle_w ({idle}) is larger than power_w ({power})", path=path, where=where
        )
    p50 = num("latency_p50_s", positive=True, optional=True)
    return Profile(stage, variant, cpu, int(batch_f), latency, thr, power, idle, epr, p50)


def build_pipeline(
    name: str,
    stage_defs: Iterable[tuple[str, list[Variant]]],
    rows: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    pipeline_path: str | Path | None,
    profiles_path: str | Path,
) -> Pipeline:
    """Combine stage definitions and raw profile rows into a validated :class:`Pipeline`."""
    stage_defs = list(stage_defs)
    variants_of = {s: {v.name for v in vs} for s, vs in stage_defs}
    by_stage: dict[str, dict[tuple[str, float, int], Profile]] = {s: {} for s, _ in stage_defs}
    first_seen: dict[tuple[str, str, float, int], str] = {}
    for where, row in rows:
        prof = parse_profile_row(row, path=profiles_path, where=where)
        if prof.stage not in variants_of:
            raise ProfileError(
                f"unknown stage {shown(prof.stage)} (pipeline stages: {listed(variants_of)})",
                path=profiles_path,
                where=where,
            )
        if prof.variant not in variants_of[prof.stage]:
            raise ProfileError(
                f"variant {shown(prof.variant)} is not defined for stage {shown(prof.stage)}"
                " (or has no accuracy)",
                path=profiles_path,
                where=where,
            )
        if prof.key in first_seen:
            raise ProfileError(
                f"duplicate row for ({prof.stage}, {prof.variant}, cpu {prof.cpu:g}, "
                f"batch {prof.batch}); first at {first_seen[prof.key]}",
                path=profiles_path,
                where=where,
            )
        first_seen[prof.key] = where
        by_stage[prof.stage][(prof.variant, prof.cpu, prof.batch)] = prof
    stages = []
    for sname, variants in stage_defs:
        profs = by_stage[sname]
        for v in variants:
            if not any(k[0] == v.name for k in profs):
                raise ProfileError(
                    f"variant {shown(v.name)} of stage {shown(sname)} has no profile rows",
                    path=profiles_path,
                )
        stages.append(Stage(sname, tuple(variants), dict(profs)))
    return Pipeline(name, tuple(stages))


def load_pipeline(pipeline: str | Path | Mapping[str, Any], profiles: str | Path | None = None, *,
                  base_dir: str | Path | None = None) -> Pipeline:
    """Load a pipeline definition and its profiles.

    ``pipeline`` is a YAML path or an already-parsed mapping. The profile table
    comes from ``profiles`` or, when that is None, from the pipeline file's own
    ``profiles:`` entry (a path relative to it, or an inline list). Variants'
    real models (``model:``, ``zoo:``) are checked and kept in ``Pipeline.models``;
    model files are relative to ``base_dir`` (default: the pipeline file's folder).
    """
    from .modelref import with_models

    return with_models(_load_pipeline(pipeline, profiles), pipeline, base_dir)


def _load_pipeline(pipeline: str | Path | Mapping[str, Any], profiles: str | Path | None = None) -> Pipeline:
    if isinstance(pipeline, Mapping):
        data: Any = pipeline
        ppath: Path | None = None
    else:
        ppath = Path(pipeline)
        data = read_file(ppath)
    name, stage_defs = parse_pipeline_definition(data, path=ppath)
    if profiles is None:
        inline = data.get("profiles") if isinstance(data, Mapping) else None
        if isinstance(inline, list):
            rows = []
            for i, r in enumerate(inline):
                if not isinstance(r, Mapping):
                    raise ProfileError("a profile row must be a mapping", path=ppath, where=f"profiles[{i}]")
                rows.append((f"profiles[{i}]", r))
            return build_pipeline(name, stage_defs, rows, pipeline_path=ppath, profiles_path=ppath or "<inline>")
        if isinstance(inline, str):
            base = ppath.parent if ppath else Path.cwd()
            profiles = base / inline
        else:
            raise ProfileError("no profile table given ('profiles:' is missing)", path=ppath)
    rows_raw = read_profile_rows(profiles)
    return build_pipeline(name, stage_defs, rows_raw, pipeline_path=ppath, profiles_path=profiles)
