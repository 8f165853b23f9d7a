"""Assemble one adaptation run from a config: problem, optimizer, forecaster, backend, workload.

``ipa-ext simulate`` and ``ipa-ext bench`` both go through :func:`prepare` and
:func:`execute`. The config sections read here:

``adaptation``
    ``interval_s`` (10, IPA's ``adaptation_interval``), ``memoize`` (true),
    ``num_candidates`` (default ``num_state_limit``).
``predictor``
    ``name`` (``moving-window-max``), ``options``, ``backup`` (``max``, IPA's),
    ``backup_options``, ``backup_duration_s`` (120), ``monitoring_duration_s``
    (120), ``margin_pct`` (0), ``bucket_s`` (10), ``round`` (true).
``simulation`` / ``backend``
    the backend's options (see the backend plugin).
``workload``
    see :func:`ipa_ext.workloads.from_section`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ..adapt.adapter import Adapter
from ..adapt.interval_energy import IntervalMeter
from ..adapt.log import AdaptationLog
from ..adapt.results import AdapterSettings, RunResult
from ..backends import Backend, RunContext
from ..config.config import ComponentSpec, Config, parse_policy  # noqa: F401  (parse_policy: re-exported)
from ..adapt.forecast import Forecaster
from ..config.numeric import number
from ..config.show import shown
from ..errors import ConfigError
from ..host import PluginHost
from ..optimize.policies import DelegatingPolicy
from ..optimizers import Optimizer
from ..predictors import ALIASES, Predictor
from ..problem.problem import Problem
from ..workloads import Workload

PREDICTOR_KEYS = {
    "name": "main predictor (default moving-window-max)",
    "options": "options of the main predictor",
    "backup": "backup predictor while history is short (default max, as IPA)",
    "backup_options": "options of the backup predictor",
    "backup_duration_s": "history needed before the main predictor is used (default 120)",
    "monitoring_duration_s": "history window read each step (default 120, IPA's 2 minutes)",
    "margin_pct": "percent added to the prediction (default 0)",
    "bucket_s": "aggregation bucket in seconds, by max (default 10, as IPA)",
    "round": "round the prediction to a whole rate (default true, as IPA)",
}
ADAPTATION_KEYS = {
    "interval_s": "seconds between decisions (default 10, IPA's adaptation_interval)",
    "memoize": "memoise decisions of deterministic optimizers (default true)",
    "num_candidates": "k best candidates to ask for (default num_state_limit)",
}
NOT_SHIPPED_PREDICTORS: dict[str, str] = {}
"""IPA predictor names ipa-ext has no counterpart for, and why (none since lstm and ar ship)."""
MAX_MARGIN_PCT = 1e6
"""The largest ``predictor.margin_pct``: ten thousand times the prediction."""
DEFAULT_PREDICTOR = "moving-window-max"
DEFAULT_BACKUP = "max"


@dataclass
class Prepared:
    """Everything one run needs, built and validated."""

    config: Config
    host: PluginHost
    problem: Problem
    optimizer: Optimizer
    optimizer_label: str
    forecaster: Forecaster
    settings: AdapterSettings
    backend_spec: ComponentSpec
    predictor_desc: dict[str, Any] = field(default_factory=dict)
    optimizer_spec: str | None = None
    base: str | None = None

    def new_optimizer(self) -> Optimizer:
        """A fresh optimizer (stateful policies start from scratch in every run)."""
        return make_optimizer(self.host, self.config, self.optimizer_spec, base=self.base)[0]

    def new_backend(self) -> Backend:
        """A fresh backend of the configured kind with its options."""
        return self.host.registry.create(
            "backend", self.backend_spec.name, self.backend_spec.options, where=self.backend_spec.where,
            path=self.config.path,
        )


def _section(config: Config, key: str, known: Mapping[str, str]) -> dict[str, Any]:
    raw = config.raw.get(key)
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigError("must be a mapping", path=config.path, where=key)
    extra = sorted(str(k) for k in raw if k not in known)
    if extra:
        raise ConfigError(f"unknown key {shown(extra[0])} (known: {', '.join(known)})", path=config.path,
                          where=f"{key}.{extra[0]}")
    return dict(raw)


def _num(config: Config, d: Mapping[str, Any], key: str, where: str, default: float, *,
         minimum: float | None = None, maximum: float | None = None) -> float:
    return number(d.get(key, default), where, path=config.path, minimum=minimum, maximum=maximum)


def _predictor(host: PluginHost, config: Config, name: Any, options: Any, where: str,
               options_where: str) -> Predictor:
    if not isinstance(name, str):
        raise ConfigError(f"expected a predictor name, got {shown(name)}", path=config.path, where=where)
    if name in NOT_SHIPPED_PREDICTORS:
        raise ConfigError(
            f"{NOT_SHIPPED_PREDICTORS[name]}; choose one of "
            f"{', '.join(host.registry.names('predictor'))}",
            path=config.path, where=where,
        )
    name = ALIASES.get(name, name)
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError("must be a mapping", path=config.path, where=options_where)
    reg = host.registry.get("predictor", name, path=config.path, where=where)
    opts = dict(options or {})
    for key in getattr(reg.factory, "PATH_OPTIONS", ()):  # file options are relative to the config
        if isinstance(opts.get(key), str) and opts[key]:
            opts[key] = str(config.base_dir / opts[key])
    return host.registry.create("predictor", name, opts, where=options_where, path=config.path)


def build_forecaster(host: PluginHost, config: Config) -> tuple[Forecaster, float, dict[str, Any]]:
    """The forecaster and the monitoring window the ``predictor`` section describes."""
    p = _section(config, "predictor", PREDICTOR_KEYS)
    main = _predictor(host, config, p.get("name", DEFAULT_PREDICTOR), p.get("options"), "predictor.name",
                      "predictor.options")
    backup = _predictor(host, config, p.get("backup", DEFAULT_BACKUP), p.get("backup_options"),
                        "predictor.backup", "predictor.backup_options")
    bucket = _num(config, p, "bucket_s", "predictor.bucket_s", 10, minimum=1)
    if bucket != int(bucket):
        raise ConfigError(f"must be a whole number of seconds, got {shown(bucket)}", path=config.path,
                          where="predictor.bucket_s")
    rnd = p.get("round", True)
    if not isinstance(rnd, bool):
        raise ConfigError(f"expected true or false, got {shown(rnd)}", path=config.path, where="predictor.round")
    margin = _num(config, p, "margin_pct", "predictor.margin_pct", 0, maximum=MAX_MARGIN_PCT)
    if margin <= -100:
        raise ConfigError(f"must be > -100, got {shown(margin)}", path=config.path, where="predictor.margin_pct")
    fc = Forecaster(
        main,
        backup,
        bucket_s=int(bucket),
        backup_duration_s=_num(config, p, "backup_duration_s", "predictor.backup_duration_s", 120, minimum=0),
        margin_pct=margin,
        round_rate=rnd,
    )
    monitoring = _num(config, p, "monitoring_duration_s", "predictor.monitoring_duration_s", 120, minimum=1)
    desc = {
        "name": main.name, "backup": backup.name, "bucket_s": fc.bucket_s,
        "backup_duration_s": fc.backup_duration_s, "margin_pct": fc.margin_pct,
        "monitoring_duration_s": monitoring, "round": rnd,
    }
    return fc, monitoring, desc


def adapter_settings(config: Config, monitoring_duration_s: float) -> AdapterSettings:
    """The loop's settings from the config's ``adaptation`` section."""
    a = _section(config, "adaptation", ADAPTATION_KEYS)
    memo = a.get("memoize", True)
    if not isinstance(memo, bool):
        raise ConfigError(f"expected true or false, got {shown(memo)}", path=config.path,
                          where="adaptation.memoize")
    k = a.get("num_candidates")
    if k is not None:
        k = number(k, "adaptation.num_candidates", path=config.path, integer=True, minimum=1)
    return AdapterSettings(
        interval_s=_num(config, a, "interval_s", "adaptation.interval_s", 10, minimum=1),
        monitoring_duration_s=monitoring_duration_s,
        memoize=memo,
        num_candidates=k,
    )


def make_optimizer(
    host: PluginHost, config: Config, spec: str | None, *, base: str | None = None
) -> tuple[Optimizer, str]:
    """The optimizer named on the command line (``NAME[:k=v...]``) or by the config."""
    if spec is None:
        name, options, where = config.optimizer.name, dict(config.optimizer.options), config.optimizer.where
        label = name
    else:
        name, options = parse_policy(spec)
        where, label = "--optimizer", spec
    reg = host.registry.get("optimizer", name, path=config.path if spec is None else None, where=where)
    if base is not None and "base" not in options and isinstance(reg.factory, type) and issubclass(
        reg.factory, DelegatingPolicy
    ):
        options["base"] = base
    opt = host.registry.create("optimizer", name, options, where=where,
                               path=config.path if spec is None else None)
    return opt, label


def prepare(
    config: Config,
    host: PluginHost,
    *,
    optimizer: str | None = None,
    base: str | None = None,
    overrides: Mapping[str, Any] | None = None,
    backend: str | None = None,
    backend_options: Mapping[str, Any] | None = None,
) -> Prepared:
    """Build and validate the parts of a run (no workload yet).

    ``backend`` overrides the config's backend (``ipa-ext adapt --backend``);
    ``backend_options`` are added to its options (command-line flags such as
    ``dry_run``). A backend's options are the config section named after it,
    the config's ``backend.options`` over them, and, for every name in the
    backend class's ``config_sections``, that whole section as an option of
    the same name (the kubernetes backend reads ``prometheus:`` this way).
    """
    problem = config.build_problem(host, **dict(overrides or {}))
    bspec = config.backend
    if backend is not None and backend != bspec.name:
        bspec = ComponentSpec(backend, {}, "--backend")
    factory = host.registry.get("backend", bspec.name, path=None if backend is not None else config.path,
                                where=bspec.where or "backend").factory
    if problem.settings.initial is None and not getattr(factory, "live", False):
        raise ConfigError("an adaptation run needs the starting configuration", path=config.path,
                          where="initial")
    opt, label = make_optimizer(host, config, optimizer, base=base)
    fc, monitoring, desc = build_forecaster(host, config)
    settings = adapter_settings(config, monitoring)
    section = config.raw.get(bspec.name)
    if isinstance(section, Mapping):
        where = bspec.name if not bspec.options else f"{bspec.name} / {bspec.where}"
        bspec = ComponentSpec(bspec.name, {**section, **dict(bspec.options)}, where)
    extra = {k: config.raw[k] for k in getattr(factory, "config_sections", ()) if config.raw.get(k) is not None}
    extra.update(backend_options or {})
    if extra:
        bspec = ComponentSpec(bspec.name, {**dict(bspec.options), **extra}, bspec.where)
    prepared = Prepared(config, host, problem, opt, label, fc, settings, bspec, desc, optimizer, base)
    prepared.new_backend()  # validate the options now, with a one-line error
    return prepared


def execute(
    prepared: Prepared,
    workload: Workload | None,
    *,
    log_path: Path | None = None,
    meter: IntervalMeter | None = None,
    on_step: Callable[[float], None] | None = None,
    handle_signals: bool = True,
    on_record: Callable[[Mapping[str, Any]], None] | None = None,
    on_fault: Callable[[str, Exception], None] | None = None,
    adapter_hook: Callable[[Adapter], None] | None = None,
) -> tuple[RunResult, Backend, Adapter]:
    """Run the loop once with a fresh backend and optimizer.

    On a live backend, energy is measured with the config's ``energy.sources``
    (unless ``meter`` is given; without any, the backend's ``default_energy_sources``,
    scoped to the processes its ``energy_scope()`` counts); the sources are made once the backend has
    started, with its :meth:`~ipa_ext.backends.Backend.energy_source_options`
    under the config's options. ``on_record`` sees every log line,
    ``on_fault`` every transient fault; ``adapter_hook`` gets the adapter
    before it runs (to stop it from another thread). Returns the result, the
    backend (for per-second data) and the adapter.
    """
    backend = prepared.new_backend()
    optimizer = prepared.new_optimizer()
    own_meter = None
    sources = prepared.config.energy_sources or [
        ComponentSpec(n, {}, "") for n in getattr(backend, "default_energy_sources", ())]
    if meter is None and backend.live and sources:
        from ..adapt.measured import DeferredIntervals

        scope = getattr(backend, "energy_scope", None)
        meter = own_meter = DeferredIntervals(prepared.host, sources, defaults=backend.energy_source_options,
                                              scope=scope() if callable(scope) else None)
    log = AdaptationLog(log_path) if log_path is not None else None
    adapter = Adapter(
        prepared.problem,
        optimizer,
        backend,
        prepared.forecaster,
        prepared.settings,
        log=log,
        meter=meter,
        carbon=prepared.config.carbon,
        on_step=on_step,
        on_record=on_record,
        on_fault=on_fault,
    )
    if adapter_hook is not None:
        adapter_hook(adapter)
    context = RunContext(prepared.problem, prepared.problem.settings.initial, workload,
                         prepared.config.base_dir, prepared.config.path, prepared.optimizer_label)
    try:
        result = adapter.run(context, handle_signals=handle_signals)
    finally:
        if own_meter is not None:
            own_meter.close()
    return result, backend, adapter


def run_summary(prepared: Prepared, result: RunResult, backend: Backend, workload: Workload | None,
                label: str | None = None) -> dict[str, Any]:
    """The ``summary.json`` of a run made by :func:`execute`."""
    from ..report.summary import summarize

    return summarize(
        result=result, backend=backend, workload=workload,
        optimizer=label or prepared.optimizer_label, predictor=prepared.predictor_desc,
        sla_s=prepared.problem.sla_s, config_path=str(prepared.config.path),
        carbon=prepared.config.carbon, backend_options=prepared.backend_spec.options,
        adaptation=asdict(prepared.settings),
        accuracy_scoring={"normalize_accuracy": prepared.problem.settings.normalize_accuracy,
                          "method": prepared.problem.settings.accuracy_method,
                          "stages": len(prepared.problem.pipeline.stages)},
    )
