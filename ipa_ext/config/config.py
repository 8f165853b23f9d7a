"""ipa-ext's own YAML config: loading, validation and building the problem.

Every key is checked; a wrong one gives a :class:`~ipa_ext.errors.ConfigError`
naming the file and the field. Paths in the config are relative to the config
file. ``from_ipa: FILE`` first imports the settings of an upstream IPA
experiment config (see :mod:`ipa_ext.config.ipa_import`); keys in this file override
them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from ..errors import ConfigError, InputError, ProfileError
from ..model import Configuration, Pipeline, StageConfig
from ..problem.carbon import CarbonIntensity
from ..problem.problem import DEFAULT_WEIGHTS, MAX_SCALING_CAP, Problem, Settings
from .defaults import DEFAULT_BACKEND, DEFAULT_OPTIMIZER
from .ipa_import import IpaConfig, read_ipa_config
from .numeric import MODEL_LIMIT, number
from .pipeline_files import load_pipeline
from .show import listed, shown
from .yamlsafe import parse_value, read_file

if TYPE_CHECKING:  # pragma: no cover
    from ..host import PluginHost

TOP_LEVEL_KEYS = {
    "pipeline": "pipeline definition: a YAML path or an inline mapping (required)",
    "profiles": "profile table: a CSV or YAML path",
    "from_ipa": "an upstream IPA experiment config to import settings from",
    "sla_s": "end-to-end SLA in seconds (default: derived from sla_factor as IPA does)",
    "sla_factor": "IPA's SLA factor (default 5)",
    "accuracy_method": "sum | average | multiply (default sum)",
    "normalize_accuracy": "rank-normalise accuracies within a stage (default true)",
    "allocation_mode": "fix | base | variable (default base)",
    "threshold": "rps threshold of IPA's base allocation (default 4)",
    "scaling_cap": "maximum replicas per stage (default 100)",
    "batching_cap": "maximum batch size (default: none)",
    "baseline_mode": "null | scale | switch",
    "num_state_limit": "how many best configurations the optimizer returns (default 1)",
    "weights": "objective weights alpha, beta, gamma, delta, epsilon (and plugin weights)",
    "power_cap_w": "optional cap on pipeline power in watts",
    "carbon": "carbon intensity: {intensity_g_per_kwh: N} or {trace: FILE[, start, column, hours_per_run_hour]}",
    "initial": "initial configuration per stage: {variant, cpu, batch, replicas}",
    "rate_rps": "default predicted rate for 'ipa-ext optimize'",
    "optimizer": "optimizer name, or {name, options}",
    "predictor": "load predictor settings",
    "backend": "backend name, or {name, options}",
    "workload": "workload settings",
    "adaptation": "adapter-loop settings",
    "simulation": "simulation-backend settings",
    "energy": "energy measurement: {sources: [name or {name, options}]}",
    "plugins": "{load: [module or file.py], disable: [plugin names]}",
    "kubernetes": "kubernetes-backend settings",
    "local": "local-backend settings (real model servers on this machine)",
    "prometheus": "Prometheus monitoring settings",
}


@dataclass(frozen=True)
class ComponentSpec:
    """A plugin component chosen by name, with its options."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)
    where: str = ""


@dataclass
class Config:
    """A loaded, validated ipa-ext config."""

    path: Path | None
    raw: dict[str, Any]
    pipeline: Pipeline
    settings: Settings
    optimizer: ComponentSpec
    backend: ComponentSpec
    energy_sources: list[ComponentSpec]
    plugins_load: list[str]
    plugins_disable: list[str]
    carbon: CarbonIntensity | None = None
    rate_rps: float | None = None
    ipa: IpaConfig | None = None

    @property
    def base_dir(self) -> Path:
        return self.path.parent if self.path is not None else Path.cwd()

    def section(self, key: str) -> dict[str, Any]:
        """A free-form section (predictor, workload, adaptation, ...) as a dict."""
        value = self.raw.get(key) or {}
        return dict(value)

    def build_problem(self, host: PluginHost, **overrides: Any) -> Problem:
        """The :class:`Problem` with every registered objective, plus setting overrides."""
        settings = self.settings
        if overrides:
            from dataclasses import replace

            settings = replace(settings, **overrides)
        objectives = [host.registry.create("objective", n) for n in host.registry.names("objective")]
        used = {o.weight for o in objectives}
        for w in settings.weights:
            if w not in used:
                raise ConfigError(
                    f"no objective uses weight {shown(w)} (known: {', '.join(sorted(used))})",
                    path=self.path,
                    where=f"weights.{w}",
                )
        try:
            return Problem(self.pipeline, settings, objectives)
        except ConfigError as exc:
            raise _at(exc, self.path) from None


def _at(exc: InputError, path: Path | None) -> InputError:
    """Re-raise a location-less error with the config file's path."""
    if exc.path is not None or path is None:
        return exc
    return type(exc)(exc.detail, path=path, where=exc.where)


# --------------------------------------------------------------------------- helpers


class _Reader:
    def __init__(self, path: Path | None, data: Mapping[str, Any]) -> None:
        self.path = path
        self.data = data

    def err(self, where: str, msg: str) -> ConfigError:
        return ConfigError(msg, path=self.path, where=where)

    def number(self, key: str, default: Any = None, *, positive: bool = False,
               nonneg: bool = False, integer: bool = False, data: Mapping[str, Any] | None = None,
               where: str | None = None, required: bool = False, maximum: float | None = None) -> Any:
        """A numeric setting; absent gives ``default``, and so does null for an optional
        setting (one whose default is None and is not ``required``)."""
        d = self.data if data is None else data
        if key not in d or (d[key] is None and default is None and not required):
            return default
        return number(d[key], where or key, path=self.path, positive=positive,
                      minimum=0.0 if nonneg else (None if positive else -MODEL_LIMIT),
                      maximum=MODEL_LIMIT if maximum is None else maximum, integer=integer, text=True)

    def boolean(self, key: str, default: bool) -> bool:
        v = self.data.get(key, default)
        if not isinstance(v, bool):
            raise self.err(key, f"expected true or false, got {shown(v)}")
        return v

    def choice(self, key: str, default: Any, choices: tuple[Any, ...]) -> Any:
        v = self.data.get(key, default)
        if v not in choices:
            names = ", ".join("null" if c is None else str(c) for c in choices)
            raise self.err(key, f"must be one of {names}, got {shown(v)}")
        return v

    def component(self, key: str, default: str | None) -> ComponentSpec | None:
        v = self.data.get(key)
        if v is None:
            return ComponentSpec(default, {}, key) if default else None
        return self.component_value(v, key)

    def component_value(self, v: Any, where: str) -> ComponentSpec:
        if isinstance(v, str):
            return ComponentSpec(v, {}, where)
        if isinstance(v, Mapping):
            name = v.get("name")
            if not isinstance(name, str) or not name:
                raise self.err(f"{where}.name", "missing or not a string")
            opts = v.get("options") or {}
            if not isinstance(opts, Mapping):
                raise self.err(f"{where}.options", "must be a mapping")
            extra = set(v) - {"name", "options"}
            if extra:
                raise self.err(where, f"unknown key(s) {listed(sorted(map(str, extra)))} (use 'options')")
            return ComponentSpec(name, dict(opts), f"{where}.options")
        raise self.err(where, f"expected a name or {{name, options}}, got {shown(v)}")


KIND_KEYS = {"workload": ("type", None), "optimizer": ("name", None), "backend": ("name", None),
             "predictor": ("name", "options")}
"""Sections whose meaning depends on one key (a workload's ``type``, a component's
``name``): when this file changes that key, what ``from_ipa`` imported for the old kind is
dropped, the whole section or (``predictor``) just its kind-specific sub-key."""


def _merge(base: Mapping[str, Any], over: Mapping[str, Any], top: bool = True) -> dict[str, Any]:
    """``over`` on top of ``base``, mappings merged key by key (see :data:`KIND_KEYS`)."""
    out = dict(base)
    for k, v in over.items():
        old = out.get(k)
        if top and k in KIND_KEYS and isinstance(old, Mapping):
            key, specific = KIND_KEYS[k]
            new_kind = v.get(key) if isinstance(v, Mapping) else v
            if new_kind is not None and new_kind != old.get(key):
                old = {kk: vv for kk, vv in old.items() if kk not in (key, specific)} if specific else None
                out[k] = old
        if isinstance(v, Mapping) and isinstance(old, Mapping):
            out[k] = _merge(old, v, top=False)
        else:
            out[k] = v
    return out


# --------------------------------------------------------------------------- loading


def load_config(path: str | Path) -> Config:
    """Load and validate an ipa-ext config file."""
    p = Path(path)
    data = read_file(p, ConfigError)
    if data is None:
        raise ConfigError("empty config", path=p)
    if not isinstance(data, Mapping):
        raise ConfigError("expected a mapping of settings", path=p)
    return config_from_mapping(data, p)


def config_from_mapping(data: Mapping[str, Any], path: Path | None = None) -> Config:
    """Validate a config's mapping (``path`` names the file in errors and anchors relative paths)."""
    base_dir = path.parent if path is not None else Path.cwd()
    unknown = [k for k in data if k not in TOP_LEVEL_KEYS]
    if unknown:
        raise ConfigError(
            f"unknown key {shown(unknown[0])} (known keys: {', '.join(sorted(TOP_LEVEL_KEYS))})",
            path=path,
            where=str(unknown[0]),
        )
    data, ipa = _with_ipa(data, path, base_dir)
    r = _Reader(path, data)
    pipeline = _pipeline(r, base_dir)
    weights = _weights(r)
    carbon = _carbon(r, base_dir)
    settings = _settings(r, pipeline, weights, carbon)
    optimizer = r.component("optimizer", DEFAULT_OPTIMIZER)
    backend = r.component("backend", DEFAULT_BACKEND)
    assert optimizer is not None and backend is not None
    sources = _energy_sources(r)
    load, disable = _plugins(r)
    for key in ("predictor", "workload", "adaptation", "simulation", "kubernetes", "local", "prometheus"):
        if data.get(key) is not None and not isinstance(data[key], Mapping):
            raise r.err(key, "must be a mapping")
    return Config(
        path=path,
        raw=dict(data),
        pipeline=pipeline,
        settings=settings,
        optimizer=optimizer,
        backend=backend,
        energy_sources=sources,
        plugins_load=list(load),
        plugins_disable=list(disable),
        carbon=carbon,
        rate_rps=r.number("rate_rps", None, nonneg=True),
        ipa=ipa,
    )


def _with_ipa(data: Mapping[str, Any], path: Path | None, base_dir: Path) -> tuple[Mapping[str, Any], IpaConfig | None]:
    """The config with ``from_ipa``'s imported settings under it, and the import."""
    if data.get("from_ipa") is None:
        return data, None
    ref = data["from_ipa"]
    if not isinstance(ref, str):
        raise ConfigError("must be a path", path=path, where="from_ipa")
    ipa = read_ipa_config(base_dir / ref)
    return _merge(ipa.values, {k: v for k, v in data.items() if k != "from_ipa"}), ipa


def _pipeline(r: _Reader, base_dir: Path) -> Pipeline:
    """``pipeline`` (a path or an inline mapping) with its ``profiles``."""
    data = r.data
    if "pipeline" not in data:
        raise r.err("pipeline", "missing (a pipeline YAML path or an inline mapping)")
    pipe_ref = data["pipeline"]
    prof_ref = data.get("profiles")
    if prof_ref is not None and not isinstance(prof_ref, str):
        raise r.err("profiles", "must be a path to a CSV or YAML file")
    try:
        if isinstance(pipe_ref, str):
            return load_pipeline(base_dir / pipe_ref, base_dir / prof_ref if prof_ref else None)
        if isinstance(pipe_ref, Mapping):
            return load_pipeline(pipe_ref, base_dir / prof_ref if prof_ref else None, base_dir=base_dir)
        raise r.err("pipeline", "must be a path or a mapping")
    except ProfileError as exc:
        raise _at(exc, r.path) from None


def _weights(r: _Reader) -> dict[str, float]:
    """The objective weights: the defaults, overridden by ``weights``."""
    weights_raw = r.data.get("weights") or {}
    if not isinstance(weights_raw, Mapping):
        raise r.err("weights", "must be a mapping of weight names to numbers")
    weights = dict(DEFAULT_WEIGHTS)
    for k in weights_raw:
        weights[str(k)] = r.number(k, data=weights_raw, where=f"weights.{k}", required=True)
    return weights


CARBON_TRACE_KEYS = ("trace", "start", "column", "hours_per_run_hour")


def _carbon(r: _Reader, base_dir: Path) -> CarbonIntensity | None:
    """``carbon``: a constant intensity or a trace file (docs/carbon.md); None when absent."""
    c = r.data.get("carbon")
    if c is None:
        return None
    shape = "expected {intensity_g_per_kwh: N} or {trace: FILE, start: TIME, column: direct | lca, " \
            "hours_per_run_hour: N}"
    if not isinstance(c, Mapping) or not c:
        raise r.err("carbon", shape)
    if "trace" in c:
        extra = sorted(str(k) for k in c if k not in CARBON_TRACE_KEYS)
        if extra:
            raise r.err(f"carbon.{extra[0]}", f"unknown key for a carbon trace (known: {', '.join(CARBON_TRACE_KEYS)})")
        if not isinstance(c["trace"], str):
            raise r.err("carbon.trace", "must be a path")
        column = c.get("column")
        if column is not None and not isinstance(column, str):
            raise r.err("carbon.column", f"must be direct or lca, got {shown(column)}")
        try:
            return CarbonIntensity.from_csv(base_dir / c["trace"], start=c.get("start"), column=column,
                                            hours_per_run_hour=c.get("hours_per_run_hour"))
        except ConfigError as exc:
            if exc.path is None:  # a value of the config's carbon section
                raise r.err(exc.where or "carbon", exc.detail) from None
            raise
    if set(c) != {"intensity_g_per_kwh"}:
        raise r.err("carbon", shape)
    return CarbonIntensity.constant(
        r.number("intensity_g_per_kwh", data=c, nonneg=True, where="carbon.intensity_g_per_kwh", required=True)
    )


def _settings(r: _Reader, pipeline: Pipeline, weights: dict[str, float], carbon: CarbonIntensity | None) -> Settings:
    """The problem settings, with their defaults (IPA's where IPA has one)."""
    initial = _initial(r, pipeline, r.data.get("initial"))
    try:
        return Settings(
            accuracy_method=r.choice("accuracy_method", "sum", ("sum", "average", "multiply")),
            normalize_accuracy=r.boolean("normalize_accuracy", True),
            sla_s=r.number("sla_s", positive=True),
            sla_factor=r.number("sla_factor", 5.0, positive=True),
            allocation_mode=r.choice("allocation_mode", "base", ("fix", "base", "variable")),
            threshold=r.number("threshold", 4.0, nonneg=True),
            scaling_cap=r.number("scaling_cap", 100, positive=True, integer=True, maximum=MAX_SCALING_CAP),
            batching_cap=r.number("batching_cap", None, positive=True, integer=True),
            baseline_mode=r.choice("baseline_mode", None, (None, "scale", "switch")),
            num_state_limit=r.number("num_state_limit", 1, positive=True, integer=True),
            weights=weights,
            power_cap_w=r.number("power_cap_w", None, positive=True),
            carbon_intensity_g_per_kwh=carbon.at(0.0) if carbon else None,
            initial=initial,
        )
    except ConfigError as exc:
        raise _at(exc, r.path) from None


def _energy_sources(r: _Reader) -> list[ComponentSpec]:
    """``energy.sources``: names or ``{name, options}``; empty for the automatic choice."""
    energy = r.data.get("energy") or {}
    if not isinstance(energy, Mapping):
        raise r.err("energy", "must be a mapping with 'sources'")
    unknown = [str(k) for k in energy if k != "sources"]
    if unknown:
        raise r.err(f"energy.{unknown[0]}", "unknown key (known: sources)")
    sources_raw = energy.get("sources") or []
    if not isinstance(sources_raw, list):
        raise r.err("energy.sources", "must be a list")
    return [r.component_value(s, f"energy.sources[{i}]") for i, s in enumerate(sources_raw)]


def _plugins(r: _Reader) -> tuple[list[str], list[str]]:
    """``plugins.load`` and ``plugins.disable``."""
    plugins = r.data.get("plugins") or {}
    if not isinstance(plugins, Mapping) or set(plugins) - {"load", "disable"}:
        raise r.err("plugins", "expected {load: [...], disable: [...]}")
    load = plugins.get("load") or []
    disable = plugins.get("disable") or []
    for key, seq in (("load", load), ("disable", disable)):
        if not isinstance(seq, list) or not all(isinstance(x, str) and x for x in seq):
            raise r.err(f"plugins.{key}", "must be a list of names")
    return load, disable


def _initial(r: _Reader, pipeline: Pipeline, raw: Any) -> Configuration | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise r.err("initial", "must map each stage to {variant, cpu, batch, replicas}")
    missing = [s.name for s in pipeline.stages if s.name not in raw]
    if missing:
        raise r.err("initial", f"missing stage(s) {listed(missing)}")
    extra = [k for k in raw if k not in pipeline.stage_names]
    if extra:
        raise r.err(f"initial.{extra[0]}", "not a stage of the pipeline")
    out = []
    for stage in pipeline.stages:
        entry = raw[stage.name]
        w = f"initial.{stage.name}"
        if not isinstance(entry, Mapping):
            raise r.err(w, "must be {variant, cpu, batch, replicas}")
        for k in ("variant", "cpu", "batch", "replicas"):
            if k not in entry:
                raise r.err(f"{w}.{k}", "missing")
        unknown = [str(k) for k in entry if k not in ("variant", "cpu", "batch", "replicas")]
        if unknown:
            raise r.err(f"{w}.{unknown[0]}", "unknown key (known: variant, cpu, batch, replicas)")
        variant = str(entry["variant"])
        if variant not in stage.variant_names:
            raise r.err(f"{w}.variant", f"unknown variant {shown(variant)} of stage {stage.name!r}")
        sc = StageConfig(
            variant,
            r.number("cpu", data=entry, positive=True, where=f"{w}.cpu", required=True),
            r.number("batch", data=entry, positive=True, integer=True, where=f"{w}.batch", required=True),
            r.number("replicas", data=entry, positive=True, integer=True, where=f"{w}.replicas", required=True),
        )
        if stage.profile(sc.variant, sc.cpu, sc.batch) is None:
            raise r.err(w, f"no profile row for {variant} at cpu {sc.cpu:g}, batch {sc.batch}")
        out.append(sc)
    return tuple(out)


def parse_policy(spec: str) -> tuple[str, dict[str, Any]]:
    """``NAME`` or ``NAME:key=value:key=value`` (values are YAML scalars)."""
    name, *parts = spec.split(":")
    opts: dict[str, Any] = {}
    for part in parts:
        key, sep, value = part.partition("=")
        if not sep or not key:
            raise ConfigError(f"policy {shown(spec)}: expected NAME:key=value, got {shown(part)}")
        opts[key] = parse_value(value, where=f"policy {name}: {key}")
    if not name:
        raise ConfigError(f"policy {shown(spec)}: missing name")
    return name, opts
