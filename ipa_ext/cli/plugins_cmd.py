"""``ipa-ext plugins``: what is loaded, from where, its hooks and its status."""

from __future__ import annotations

import argparse

from ..config.config import load_config
from ..report.tables import table
from .common import load_host, print_json


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plugins", help="list plugins, their hooks and status")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--config", help="also load the plugins this config names")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else None
    host = load_host(args, config, config_failures_fatal=False)
    records = [r.as_dict() for r in host.records]
    if args.json:
        print_json(records)
    else:
        rows = []
        for r in host.records:
            regs = "; ".join(f"{k}: {', '.join(v)}" for k, v in r.registered.items())
            status = r.status if not r.error else f"{r.status}: {r.error}"
            rows.append([r.name, r.version or "-", r.origin, ",".join(h.removeprefix("register_") for h in r.hooks) or "-", regs or "-", status])
        print(table(["name", "version", "origin", "hooks", "registered", "status"], rows))
    return 1 if (args.strict and host.failures) else 0
