"""The plugin host: a pluggy manager built by a factory, and the component registry.

:func:`load_plugins` loads, in order:

1. the built-in plugins, through the ``ipa_ext`` entry-point group like any
   third party (the distribution ``ipa-ext`` itself declares them in its
   ``pyproject.toml``: that table is the one list of built-ins);
2. every other installed distribution's ``ipa_ext`` entry points;
3. modules (dotted names or ``.py`` paths) that the config names.

Entry points of one distribution load in name order (the order the installed
metadata lists them). With ``entry_points=False`` no entry point loads, the
built-ins' included: only the config's modules and what
:meth:`PluginHost.add_plugin` adds, which is how a test registers exactly the
plugins it needs.

Disabled plugins are filtered out by name before they are imported. Each
plugin loads and registers inside its own ``try``: a failure is recorded on its
:class:`PluginRecord` and the others keep working, unless ``strict`` is set.
A plugin's registrations are committed only when all of them succeed, so a
failed plugin leaves nothing half-registered.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import importlib.util
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Iterable, Mapping, Sequence

import pluggy

from . import __version__, hookspecs
from .backends import Backend
from .config.show import clip, shown
from .energy.source import EnergySource
from .errors import ConfigError, PluginError, UnknownNameError
from .objectives import Objective
from .optimizers import Optimizer
from .predictors import Predictor

ENTRY_POINT_GROUP = "ipa_ext"
DIST_NAME = "ipa-ext"
DISABLE_ENV = "IPA_EXT_DISABLE_PLUGINS"

KIND_BASES: dict[str, type] = {
    "energy source": EnergySource,
    "optimizer": Optimizer,
    "objective": Objective,
    "predictor": Predictor,
    "backend": Backend,
}

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


@dataclass
class PluginRecord:
    """What ``ipa-ext plugins`` shows about one plugin."""

    name: str
    origin: str
    module: str
    version: str | None = None
    hooks: list[str] = field(default_factory=list)
    status: str = "loaded"  # loaded | failed | disabled
    error: str | None = None
    registered: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "origin": self.origin,
            "module": self.module,
            "hooks": list(self.hooks),
            "status": self.status,
            "error": self.error,
            "registered": {k: list(v) for k, v in self.registered.items()},
        }


@dataclass(frozen=True)
class Registration:
    kind: str
    name: str
    factory: Callable[..., object]
    plugin: str


def name_field(where: str) -> str:
    """The config field that holds a component's name, from the field of its options."""
    return where[: -len(".options")] + ".name" if where.endswith(".options") else where


def known_options(factory: Any) -> list[str] | None:
    """The keyword options a factory accepts, following ``**kwargs`` up a class's bases;
    None when they cannot be told."""
    import inspect

    names: list[str] = []
    if isinstance(factory, type):
        chain = [c.__init__ for c in factory.__mro__ if c is not object and "__init__" in vars(c)]
    else:
        chain = [factory]
    for fn in chain:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            return None
        names += [p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
                  and p.name != "self" and p.name not in names]
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names
    return names if isinstance(factory, type) else None


def option_problem(factory: Any, exc: TypeError) -> str:
    """A factory's TypeError about its options, in the config's words."""
    text = str(exc)
    unknown = re.search(r"unexpected keyword argument '([^']+)'", text)
    if unknown:
        known = known_options(factory)
        tail = f" (known: {', '.join(known)})" if known else " (it takes none)" if known == [] else ""
        return f"unknown option {shown(unknown.group(1))}{tail}"
    if text.endswith("takes no arguments"):
        return "takes no options"
    missing = re.search(r"missing \d+ required (?:positional |keyword-only )?arguments?: (.+)$", text)
    if missing:
        return f"missing option {missing.group(1).replace(' and ', ', ')}"
    return text


class Registry:
    """Components registered by plugins, by kind and name."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Registration]] = {k: {} for k in KIND_BASES}

    def add(self, reg: Registration) -> None:
        existing = self._items[reg.kind].get(reg.name)
        if existing is not None:
            raise PluginError(
                f"{reg.kind} {reg.name!r} from plugin {reg.plugin!r} duplicates the one "
                f"registered by plugin {existing.plugin!r}"
            )
        self._items[reg.kind][reg.name] = reg

    def names(self, kind: str) -> list[str]:
        """Registered names of a kind, in registration order (built-ins first)."""
        return list(self._items[kind])

    def get(self, kind: str, name: str, *, path: Any = None, where: str | None = None) -> Registration:
        """The registration of ``name``; an unknown name is an :class:`UnknownNameError`
        listing the choices (naming the config ``path`` and field ``where`` when given)."""
        try:
            return self._items[kind][name]
        except KeyError:
            raise UnknownNameError(kind, name, self.names(kind), path=path,
                                   where=name_field(where) if where else None) from None

    def create(
        self,
        kind: str,
        name: str,
        options: Mapping[str, Any] | None = None,
        *,
        where: str | None = None,
        path: Any = None,
    ) -> Any:
        """Instantiate a registered component with its config options.

        Bad options and factory errors become :class:`ConfigError` naming ``where``, and
        the config file ``path`` when given.
        """
        reg = self.get(kind, name, path=path, where=where)
        try:
            return self._create(reg, kind, name, options, where)
        except ConfigError as exc:  # the factory's, or a part's it binds: name the config file
            if path is None or exc.path is not None:
                raise
            raise ConfigError(exc.detail, path=path, where=exc.where) from None

    def _create(self, reg: Registration, kind: str, name: str, options: Mapping[str, Any] | None,
                where: str | None) -> Any:
        try:
            obj = reg.factory(**dict(options or {}))
        except TypeError as exc:
            raise ConfigError(f"{kind} {shown(name)}: {option_problem(reg.factory, exc)}", where=where) from None
        except (ValueError, KeyError, ArithmeticError) as exc:  # ArithmeticError: a number out of range
            raise ConfigError(f"{kind} {shown(name)}: {clip(str(exc))}", where=where) from None
        base = KIND_BASES[kind]
        if not isinstance(obj, base):
            raise PluginError(
                f"{kind} {name!r} from plugin {reg.plugin!r} is a {type(obj).__name__}, "
                f"not a {base.__module__}.{base.__name__}"
            )
        if not getattr(obj, "name", ""):
            try:
                obj.name = name
            except AttributeError:  # pragma: no cover - read-only attribute
                pass
        bind = getattr(obj, "bind_registry", None)
        if callable(bind):
            # composite components (a policy delegating to an optimizer chosen by
            # name) create their parts from this registry
            bind(self, where)
        return obj

    def __iter__(self):
        for kind, items in self._items.items():
            for reg in items.values():
                yield reg


class PluginHost:
    """A loaded plugin manager: its registry and a record per plugin."""

    def __init__(self, pm: pluggy.PluginManager, strict: bool) -> None:
        self.pm = pm
        self.strict = strict
        self.registry = Registry()
        self.records: list[PluginRecord] = []

    @property
    def failures(self) -> list[PluginRecord]:
        return [r for r in self.records if r.status == "failed"]

    def record(self, name: str) -> PluginRecord:
        for r in self.records:
            if r.name == name:
                return r
        raise KeyError(name)

    def add_plugin(self, obj: Any, name: str, origin: str = "added at run time") -> PluginRecord:
        """Register a plugin object (a module or any object with hook implementations).

        Failures are recorded like any other plugin's (raised under ``strict``).
        """
        if any(r.name == name for r in self.records):
            raise PluginError(f"a plugin named {name!r} is already loaded")
        rec = PluginRecord(name, origin, getattr(obj, "__name__", type(obj).__name__),
                           getattr(obj, "__version__", None))
        self._add_plugin(rec, lambda: obj)
        return rec

    def remove_plugin(self, name: str) -> None:
        """Unregister a plugin and everything it registered."""
        rec = self.record(name)
        plugin = self.pm.get_plugin(name)
        if plugin is not None:
            self.pm.unregister(plugin)
        for kind, names in rec.registered.items():
            for n in names:
                self.registry._items[kind].pop(n, None)
        self.records.remove(rec)

    def _fail(self, rec: PluginRecord, message: str) -> None:
        rec.status = "failed"
        rec.error = message
        if self.strict:
            raise PluginError(f"plugin {rec.name!r} ({rec.origin}): {message}")

    def _add_plugin(self, rec: PluginRecord, load: Callable[[], Any]) -> None:
        self.records.append(rec)
        try:
            obj = load()
        except Exception as exc:  # a broken plugin must not take the host down
            self._fail(rec, f"import failed: {type(exc).__name__}: {exc}")
            return
        if rec.version is None:
            rec.version = getattr(obj, "__version__", None)
        try:
            self.pm.register(obj, name=rec.name)
        except Exception as exc:
            self._fail(rec, f"invalid hook implementation: {exc}")
            return
        unknown = [
            hc.name for hc in (self.pm.get_hookcallers(obj) or []) if hc.spec is None
        ]
        if unknown:
            self.pm.unregister(obj)
            self._fail(rec, f"implements unknown hook(s) {', '.join(sorted(unknown))}")
            return
        rec.hooks = sorted(hc.name for hc in (self.pm.get_hookcallers(obj) or []))
        self._register_components(rec, obj)

    def _register_components(self, rec: PluginRecord, obj: Any) -> None:
        staged: list[Registration] = []
        errors: list[str] = []

        for hook_name, kind in hookspecs.HOOKS.items():
            caller = getattr(self.pm.hook, hook_name)
            for impl in caller.get_hookimpls():
                if impl.plugin is not obj:
                    continue

                def register(name: str, factory: Callable[..., object], _kind: str = kind) -> None:
                    if not isinstance(name, str) or not _NAME_RE.match(name):
                        raise PluginError(f"invalid {_kind} name {name!r}")
                    if not callable(factory):
                        raise PluginError(f"{_kind} {name!r}: factory is not callable")
                    staged.append(Registration(_kind, name, factory, rec.name))

                try:
                    impl.function(register=register)
                except Exception as exc:
                    errors.append(f"{hook_name} raised {type(exc).__name__}: {exc}")
        if not errors:
            seen: dict[tuple[str, str], str] = {}
            for reg in staged:
                prior = self.registry._items[reg.kind].get(reg.name)
                if prior is not None:
                    errors.append(
                        f"{reg.kind} {reg.name!r} is already registered by plugin "
                        f"{prior.plugin!r}; duplicate from plugin {rec.name!r} rejected"
                    )
                elif (reg.kind, reg.name) in seen:
                    errors.append(f"{reg.kind} {reg.name!r} registered twice by plugin {rec.name!r}")
                seen[(reg.kind, reg.name)] = rec.name
        if errors:
            self.pm.unregister(obj)
            self._fail(rec, "; ".join(errors))
            return
        for reg in staged:
            self.registry.add(reg)
            rec.registered.setdefault(reg.kind, []).append(reg.name)


def _dist_names(eps: Iterable[md.EntryPoint]) -> dict[int, str | None]:
    """Each entry point's distribution name, parsing each distribution's metadata once
    (entry points of one distribution share its object; parsing is most of a load's time)."""
    by_dist: dict[int, str | None] = {}
    out: dict[int, str | None] = {}  # by id(entry point): two distributions may reuse a name
    for ep in eps:
        dist = getattr(ep, "dist", None)
        if dist is None:
            out[id(ep)] = None
            continue
        if id(dist) not in by_dist:
            by_dist[id(dist)] = dist.metadata["Name"]
        out[id(ep)] = by_dist[id(dist)]
    return out


def _normalise(name: str | None) -> str:
    return re.sub(r"[-_.]+", "-", name or "").lower()


def _disabled_from_env() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {x.strip() for x in raw.split(",") if x.strip()}


def _load_module_ref(ref: str, base_dir: Path | None) -> Callable[[], ModuleType]:
    """A loader for a config-named plugin: a dotted module name or a ``.py`` path."""

    def load() -> ModuleType:
        if ref.endswith(".py") or "/" in ref or os.sep in ref:
            path = Path(ref)
            if not path.is_absolute() and base_dir is not None:
                path = base_dir / path
            if not path.is_file():
                raise FileNotFoundError(f"plugin file {path} not found")
            mod_name = "ipa_ext_config_plugin_" + re.sub(r"\W", "_", path.stem)
            spec = importlib.util.spec_from_file_location(mod_name, path)
            if spec is None or spec.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(spec)
            sys.modules[mod_name] = module
            try:
                spec.loader.exec_module(module)
            except BaseException:
                sys.modules.pop(mod_name, None)
                raise
            return module
        return importlib.import_module(ref)

    return load


def load_plugins(
    modules: Sequence[str] = (),
    *,
    disabled: Iterable[str] = (),
    strict: bool = False,
    base_dir: str | Path | None = None,
    entry_points: bool = True,
) -> PluginHost:
    """Build a plugin host (see module docstring).

    ``modules`` are the config's ``plugins.load`` entries, ``disabled`` its
    ``plugins.disable`` names (plus ``$IPA_EXT_DISABLE_PLUGINS``). With
    ``entry_points=False`` no entry point loads, not even the built-ins': only ``modules``.
    """
    pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    host = PluginHost(pm, strict)
    off = set(disabled) | _disabled_from_env()
    base = Path(base_dir) if base_dir is not None else None

    def add(name: str, origin: str, module: str, version: str | None, load: Callable[[], Any]) -> None:
        if name in off:
            host.records.append(PluginRecord(name, origin, module, version, status="disabled"))
            return
        if any(r.name == name for r in host.records):
            rec = PluginRecord(name, origin, module, version)
            host.records.append(rec)
            host._fail(rec, f"a plugin named {name!r} is already loaded; rename one of them")
            return
        host._add_plugin(PluginRecord(name, origin, module, version), load)

    if entry_points:
        eps = sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name)
        dists = _dist_names(eps)
        builtin = [e for e in eps if _normalise(dists[id(e)]) == DIST_NAME]
        for e in builtin:  # the built-ins first, so a third party cannot take their names
            add(e.name, "builtin", e.value, __version__, e.load)
        for e in (e for e in eps if _normalise(dists[id(e)]) != DIST_NAME):
            dist = dists[id(e)]
            version = e.dist.version if getattr(e, "dist", None) is not None else None
            add(e.name, f"entry point ({dist})", e.value, version, e.load)
    for ref in modules:
        name = Path(ref).stem if ref.endswith(".py") else ref
        add(name, "config", ref, None, _load_module_ref(ref, base))
    return host
