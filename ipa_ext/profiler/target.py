"""What ``ipa-ext profile CONFIG`` measures: the pipeline's stages, variants and models, the energy sources
and plugins, and where the profile goes. CONFIG is an ipa-ext config or a pipeline file; the profile
table does not need to exist yet (the profiler writes it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ..config.modelref import ModelRef, parse_model_refs
from ..config.pipeline_files import parse_pipeline_definition
from ..config.yamlsafe import read_file as read_yaml
from ..errors import ConfigError


@dataclass(frozen=True)
class Target:
    """The pipeline to profile and the settings the config gives for it."""

    path: Path
    pipeline_path: Path | None
    """The pipeline file (None when it is inline in the config)."""
    name: str
    stages: tuple[tuple[str, tuple[str, ...]], ...]
    models: Mapping[tuple[str, str], ModelRef]
    energy_sources: tuple[str, ...] = ()
    energy_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    plugins_load: tuple[str, ...] = ()
    plugins_disable: tuple[str, ...] = ()
    profiles: Path | None = None
    """The default output: the file's ``profiles:`` path, else ``profiles.csv`` beside it."""


def _energy(data: Mapping[str, Any], path: Path) -> tuple[tuple[str, ...], dict[str, dict[str, Any]]]:
    energy = data.get("energy") or {}
    if not isinstance(energy, Mapping) or set(energy) - {"sources"}:
        raise ConfigError("must be a mapping with 'sources'", path=path, where="energy")
    raw = energy.get("sources") or []
    if not isinstance(raw, list):
        raise ConfigError("must be a list", path=path, where="energy.sources")
    names: list[str] = []
    options: dict[str, dict[str, Any]] = {}
    for i, item in enumerate(raw):
        where = f"energy.sources[{i}]"
        if isinstance(item, str) and item:
            names.append(item)
        elif isinstance(item, Mapping) and isinstance(item.get("name"), str) and not set(item) - {"name", "options"}:
            opts = item.get("options") or {}
            if not isinstance(opts, Mapping):
                raise ConfigError("must be a mapping", path=path, where=f"{where}.options")
            names.append(item["name"])
            if opts:
                options[item["name"]] = dict(opts)
        else:
            raise ConfigError("expected a name or {name, options}", path=path, where=where)
    return tuple(names), options


def _plugins(data: Mapping[str, Any], path: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    plugins = data.get("plugins") or {}
    if not isinstance(plugins, Mapping) or set(plugins) - {"load", "disable"}:
        raise ConfigError("expected {load: [...], disable: [...]}", path=path, where="plugins")
    out = []
    for key in ("load", "disable"):
        seq = plugins.get(key) or []
        if not isinstance(seq, list) or not all(isinstance(x, str) and x for x in seq):
            raise ConfigError("must be a list of names", path=path, where=f"plugins.{key}")
        out.append(tuple(seq))
    return out[0], out[1]


def load_target(path: str | Path) -> Target:
    """Read CONFIG: an ipa-ext config (``pipeline:`` a path or inline) or a pipeline file (``stages:``)."""
    p = Path(path)
    data = read_yaml(p, ConfigError)
    if not isinstance(data, Mapping) or not ("pipeline" in data or "stages" in data):
        raise ConfigError("expected an ipa-ext config (with 'pipeline') or a pipeline file (with 'stages')", path=p)
    if "stages" in data:
        pipe_data, pipe_path, base = data, p, p.parent
        config: Mapping[str, Any] = {}
    else:
        ref = data["pipeline"]
        if isinstance(ref, str):
            pipe_path = p.parent / ref
            pipe_data, base = read_yaml(pipe_path), pipe_path.parent
        elif isinstance(ref, Mapping):
            pipe_data, pipe_path, base = ref, None, p.parent
        else:
            raise ConfigError("must be a path or a mapping", path=p, where="pipeline")
        config = data
    where_file = pipe_path if pipe_path is not None else p
    name, stage_defs = parse_pipeline_definition(pipe_data, path=where_file)
    models = parse_model_refs(pipe_data, path=where_file, base_dir=base)
    sources, options = _energy(config, p)
    load, disable = _plugins(config, p)
    profiles = data.get("profiles")
    if profiles is not None and not isinstance(profiles, (str, list)):
        raise ConfigError("must be a path to a CSV or YAML file", path=p, where="profiles")
    out = p.parent / (profiles if isinstance(profiles, str) else "profiles.csv")
    return Target(p, pipe_path, name, tuple((s, tuple(v.name for v in vs)) for s, vs in stage_defs), models,
                  sources, options, load, disable, out)
