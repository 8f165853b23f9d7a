"""Helpers shared by CLI subcommands: loading config and plugins, printing tables."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from ..config.config import Config, load_config
from ..errors import PluginError
from ..host import PluginHost, load_plugins


def load_host(
    args: argparse.Namespace, config: Config | None = None, *, config_failures_fatal: bool = True
) -> PluginHost:
    """Load plugins for a command; config-named modules and disables apply.

    A plugin the config names explicitly that fails to load stops the command
    (the user asked for it), unless ``config_failures_fatal`` is False.
    """
    host = load_plugins(
        config.plugins_load if config else (),
        disabled=config.plugins_disable if config else (),
        strict=bool(getattr(args, "strict", False)),
        base_dir=config.base_dir if config else None,
    )
    if config is not None and config_failures_fatal:
        named = set(config.plugins_load)
        for rec in host.failures:
            if rec.origin == "config" and rec.module in named:
                raise PluginError(f"plugin {rec.module!r} named in {config.path}: {rec.error}")
    return host


def load_config_and_host(args: argparse.Namespace) -> tuple[Config, PluginHost]:
    config = load_config(args.config)
    return config, load_host(args, config)


def warn_failures(host: PluginHost) -> None:
    for rec in host.failures:
        print(f"ipa-ext: warning: plugin {rec.name!r} failed: {rec.error}", file=sys.stderr)
    for rec in host.records:
        if rec.status == "loaded" and not any(rec.registered.values()):
            hint = ("it has no @ipa_ext.hookimpl register_* functions" if not rec.hooks
                    else f"its {', '.join(rec.hooks)} did not call register()")
            print(f"ipa-ext: warning: plugin {rec.name!r} ({rec.module}) registered nothing: {hint}",
                  file=sys.stderr)


def print_json(obj: Any) -> None:
    json.dump(obj, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def resolve_rate(args: argparse.Namespace, config: Config) -> float:
    """``--rate`` or the config's ``rate_rps``; one-line errors when missing or negative."""
    from ..errors import ConfigError

    rate = args.rate if args.rate is not None else config.rate_rps
    if rate is None:
        raise ConfigError("no rate given: pass --rate or set rate_rps", path=config.path, where="rate_rps")
    if not math.isfinite(rate):
        raise ConfigError(f"--rate must be a finite number, got {rate:g}")
    if rate < 0:
        raise ConfigError(f"--rate must be >= 0, got {rate:g}")
    return float(rate)


def check_finite(flag: str, value: float | None, *, positive: bool = False) -> None:
    """A float option, when given, is a finite number of magnitude at most
    :data:`~ipa_ext.config.numeric.MODEL_LIMIT` (and > 0 with ``positive``)."""
    from ..errors import ConfigError

    from ..config.numeric import MODEL_LIMIT

    if value is None:
        return
    if not math.isfinite(value):
        raise ConfigError(f"{flag} must be a finite number, got {value:g}")
    if positive and value <= 0:
        raise ConfigError(f"{flag} must be > 0, got {value:g}")
    if abs(value) > MODEL_LIMIT:
        raise ConfigError(f"{flag} must be at most {MODEL_LIMIT:g} in magnitude, got {value:g}")


def output_dir(out: Path) -> Path:
    """Create the ``--out`` folder; a path that cannot be one is a one-line error."""
    from ..errors import InputError

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder: {exc.strerror or exc}", path=out,
                         where="--out") from None
    return out
