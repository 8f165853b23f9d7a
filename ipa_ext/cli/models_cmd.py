"""``ipa-ext models list | build``: the ONNX model zoo's models, their counts, and the build cache."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from ..errors import InputError
from ..report.tables import table
from .common import print_json

if TYPE_CHECKING:
    from ..inference.zoo import ModelOptions

CACHE_ENV_VAR = "IPA_EXT_CACHE_DIR"  # ipa_ext.inference.cache.ENV_VAR; the zoo is imported only when used

MB = 1e6


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="the ONNX model zoo: list the models, build them into the cache")
    msub = p.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    msub.required = True

    def common(q: argparse.ArgumentParser) -> None:
        q.add_argument("--input-size", type=int, metavar="N",
                       help="square input size in pixels (default: 224 for ResNets, 640 for YOLOv5)")
        q.add_argument("--seed", type=int, default=0, help="weight seed (default 0)")
        q.add_argument("--cache-dir", metavar="DIR",
                       help=f"models cache folder (default: ${CACHE_ENV_VAR}, else $XDG_CACHE_HOME/ipa-ext/models, "
                            "else ~/.cache/ipa-ext/models)")
        q.add_argument("--json", action="store_true", help="machine-readable output")

    q = msub.add_parser("list", help="zoo models, parameter counts, and what is cached")
    common(q)
    q.set_defaults(func=run_list)

    q = msub.add_parser("build", help="build zoo models into the cache (needs the serve extra)")
    q.add_argument("names", nargs="+", metavar="NAME", help="zoo model names (see ipa-ext models list)")
    common(q)
    q.add_argument("--width", type=float, default=1.0, metavar="W",
                   help="scale every layer's channels by W (default 1.0, the published model)")
    q.add_argument("--force", action="store_true", help="rebuild even when cached")
    q.set_defaults(func=run_build)


def _options(name: str, args: argparse.Namespace, **extra: Any) -> ModelOptions:
    """The options for ``name`` from the flags; a bad flag value names the flag."""
    from ..inference import zoo

    raw = {k: v for k, v in {"input_size": args.input_size, **extra}.items() if v is not None}
    try:
        return zoo.model_options(name, raw)
    except InputError as exc:
        if exc.where in ("input_size", "width"):
            raise InputError(exc.detail, where=f"--{exc.where.replace('_', '-')}") from None
        raise


def _cached(row: dict[str, Any]) -> str:
    """yes/no for these options and seed, and how many other builds of the model are cached."""
    others = len(row["cached_builds"]) - (1 if row["cached"] else 0)
    return ("yes" if row["cached"] else "no") + (f" (+{others})" if others > 0 else "")


def _check_seed(seed: int) -> None:
    if seed < 0:
        raise InputError(f"must be >= 0, got {seed}", where="--seed")


def run_list(args: argparse.Namespace) -> int:
    from ..inference import cache, zoo

    _check_seed(args.seed)
    directory = cache.resolve_cache_dir(args.cache_dir)
    builds = cache.cached_builds(directory)
    rows = []
    for name, entry in zoo.ZOO.items():
        opts = _options(name, args)
        net = zoo.spec(name, opts)
        path = cache.cached_path(name, opts, args.seed, directory)
        rows.append({
            "name": name, "family": entry.family, "params": net.params(),
            "published_params": entry.published_params, "macs": net.macs(), "input_size": opts.input_size,
            "cached": path.is_file(), "path": str(path) if path.is_file() else None,
            "size_bytes": path.stat().st_size if path.is_file() else None,
            "cached_builds": [b for b in builds if b.get("name") == name],
        })
    if args.json:
        print_json({"cache_dir": str(directory), "models": rows})
        return 0
    print(table(["name", "family", "params_M", "published_M", "GMACs", "input", "cached", "size_MB"],
                [[r["name"], r["family"], f"{r['params'] / MB:.2f}", f"{r['published_params'] / MB:.2f}",
                  f"{r['macs'] / 1e9:.2f}", r["input_size"], _cached(r),
                  f"{r['size_bytes'] / MB:.1f}" if r["cached"] else "-"] for r in rows]))
    total = sum(b["size_bytes"] for b in builds)
    print(f"cache: {directory} ({len(builds)} file{'s' if len(builds) != 1 else ''}, {total / MB:.1f} MB)")
    return 0


def run_build(args: argparse.Namespace) -> int:
    from ..inference import cache, zoo

    _check_seed(args.seed)
    for name in args.names:  # every name and option is checked before anything is built
        zoo.entry(name)
        _options(name, args, width=args.width)
    results = []
    for name in args.names:
        if sys.stderr.isatty():
            print(f"ipa-ext: building {name}...", file=sys.stderr, flush=True)
        model = cache.zoo_model(name, _options(name, args, width=args.width), seed=args.seed,
                                cache_dir=args.cache_dir, force=args.force)
        results.append(model)
    if args.json:
        print_json([m.as_dict() for m in results])
        return 0
    print(table(["name", "input", "params_M", "size_MB", "build_s", "status", "path"],
                [[m.name, m.options.input_size, f"{m.params / MB:.2f}", f"{m.size_bytes / MB:.1f}",
                  f"{m.build_time_s:.1f}" if m.build_time_s is not None else "-",
                  "built" if m.built else "cached", m.path] for m in results]))
    return 0
