"""``ipa-ext energy probe | measure | report | serve``: energy sources, measuring a command, reading logs, exporting.

- ``probe``: every source, its status (available, absent, permission,
  virtualised), its domains and a fix hint;
- ``measure -- CMD ARGS...``: runs CMD (no shell) and prints, like
  ``perf stat``, joules and average watts per domain, the duration, the
  quality and the scope (the whole system, or the command's process tree for
  the estimate source); passes CMD's exit code through (127: not found);
- ``report LOG``: totals, mean and peak watts per event and interval
  statistics of a perf interval log or an ipa-ext interval CSV; ``--csv`` and
  ``--plot`` files are named after the report (``"files"`` in ``--json``);
- ``serve --port P``: Prometheus metrics of the chosen sources.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Any, Sequence

from ..config.config import load_config
from ..config.show import clip, shown
from ..config.yamlsafe import parse_value
from ..energy.command import CommandEnergy, format_command, measure_command, tree_label
from ..energy.logs import load_log, log_rows, write_interval_csv
from ..energy.meter import IntervalSampler, Measurement, Meter
from ..energy.report import format_report, plot_power, summarise
from ..energy.select import choose, create, probe_order
from ..energy.source import WHOLE_SYSTEM, Status, root_domains
from ..errors import ConfigError, IpaExtError
from ..report.tables import table
from ..units import MS_PER_S
from .common import load_host, print_json, warn_failures


class CommandError(IpaExtError):
    """The measured command could not be started (exit code 127 or 126, as a shell gives)."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("energy", help="energy sources: probe, measure a command, report a log, serve metrics")
    esub = p.add_subparsers(dest="energy_command", metavar="SUBCOMMAND")
    esub.required = True

    def source_args(q: argparse.ArgumentParser) -> None:
        q.add_argument("--source", action="append", default=[], metavar="S",
                       help="energy source name (repeatable; default: the best available)")
        q.add_argument("-o", "--source-option", action="append", default=[], metavar="KEY=VALUE",
                       help="an option of the source (NAME.KEY=VALUE when several are named); YAML values")
        q.add_argument("--config", help="take sources and plugins from this config's energy section")

    q = esub.add_parser("probe", help="every energy source, its status, domains and a fix hint")
    source_args(q)
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.set_defaults(func=run_probe)

    q = esub.add_parser("measure", help="run a command and print its energy, like perf stat",
                        usage="ipa-ext energy measure [options] -- CMD [ARGS...]")
    source_args(q)
    q.add_argument("--interval", type=int, metavar="MS", help="also sample every MS milliseconds (power time series)")
    q.add_argument("--json", action="store_true", help="print JSON on stdout instead of the table on stderr")
    q.add_argument("--csv", metavar="FILE", help="write per-interval energy to FILE (default interval 1000 ms)")
    q.add_argument("--whole-system", action="store_true",
                   help="estimate the whole machine (every process and the idle floor) instead of the command's "
                        "process tree; counters (rapl, perf, nvml) always measure the whole system")
    q.add_argument("cmd", nargs=argparse.REMAINDER, help="the command and its arguments, after --")
    q.set_defaults(func=run_measure)

    q = esub.add_parser("report", help="summarise a perf interval log or an ipa-ext interval CSV")
    q.add_argument("log", help="perf stat -I output (human or -x, CSV; gzip ok) or an ipa-ext CSV")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.add_argument("--csv", metavar="FILE", help="write per-interval energy and power to FILE")
    q.add_argument("--plot", metavar="FILE", help="write a PNG of power over time (needs the plot extra)")
    q.set_defaults(func=run_report)

    q = esub.add_parser("serve", help="serve Prometheus energy metrics over HTTP")
    source_args(q)
    q.add_argument("--port", type=int, required=True, help="TCP port (0: any free port, printed)")
    q.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    q.add_argument("--interval", type=int, default=1000, metavar="MS", help="sampling interval (default 1000)")
    q.add_argument("--duration", type=float, metavar="S", help="stop after S seconds (default: until interrupted)")
    q.set_defaults(func=run_serve)


# --------------------------------------------------------------------------- sources
def _parse_options(args: argparse.Namespace, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for raw in args.source_option:
        if "=" not in raw:
            raise ConfigError(f"expected KEY=VALUE, got {shown(raw)}", where="--source-option")
        lhs, value = raw.split("=", 1)
        target, key = None, lhs
        for n in names:
            if lhs.startswith(n + "."):
                target, key = n, lhs[len(n) + 1:]
        if target is None:
            if len(names) != 1:
                raise ConfigError(f"{shown(raw)}: name the source (NAME.KEY=VALUE) "
                                  + ("when several are chosen" if names else "and choose it with --source"),
                                  where="--source-option")
            target = names[0]
        out.setdefault(target, {})[key] = parse_value(value, where=f"--source-option {clip(lhs, 60)}")
    return out


def _sources_from_args(args: argparse.Namespace):
    config = load_config(args.config) if args.config else None
    host = load_host(args, config)
    warn_failures(host)
    names = list(args.source)
    options = _parse_options(args, names)
    if not names and config is not None and config.energy_sources:
        names = [s.name for s in config.energy_sources]
        for s in config.energy_sources:
            options.setdefault(s.name, dict(s.options))
    return host, choose(host, names, options)


# --------------------------------------------------------------------------- probe
def run_probe(args: argparse.Namespace) -> int:
    config = load_config(args.config) if args.config else None
    host = load_host(args, config)
    warn_failures(host)
    names = list(args.source) or probe_order(host)
    options = _parse_options(args, names) if args.source_option else {}
    given = {n: "--source-option" for n in options}  # where options the user gave come from
    if config is not None:
        for s in config.energy_sources:
            if s.name not in options:
                options[s.name] = dict(s.options)
                given[s.name] = s.where
    rows = []
    for n in names:
        entry: dict[str, Any] = {"source": n, "plugin": host.registry.get("energy source", n).plugin}
        try:
            src = create(host, n, options.get(n))
        except ConfigError as exc:
            if n in given:  # options the user gave are wrong: an error, not a probe result
                from_config = given[n] != "--source-option"
                raise ConfigError(exc.detail, path=config.path if from_config and config else None,
                                  where=given[n]) from None
            entry.update(status="needs options", detail=str(exc), hint="give its options with -o KEY=VALUE",
                         quality=None, domains=[])
            rows.append(entry)
            continue
        try:
            res = src.probe()
            entry.update(status=res.status.value, detail=res.detail, hint=res.hint, quality=src.quality)
            doms: list[dict[str, Any]] = []
            if res.status is Status.AVAILABLE:
                try:
                    doms = [{"id": d.id, "kind": d.kind, "parent": d.parent} for d in src.domains()]
                except Exception as exc:  # a source that probes fine but cannot list domains
                    entry["detail"] += f" (domains failed: {exc})"
            entry["domains"] = doms
        finally:
            src.close()
        rows.append(entry)
    if args.json:
        print_json(rows)
        return 0
    out = []
    for r in rows:
        doms = ", ".join(d["id"] + (f" (in {d['parent']})" if d["parent"] else "") for d in r["domains"]) or "-"
        out.append([r["source"], r["status"], r["quality"] or "-", doms])
    print(table(["source", "status", "quality", "domains"], out))
    for r in rows:
        line = f"{r['source']}: {r['detail']}" if r["detail"] else r["source"]
        if r["hint"] and r["status"] != "available":
            line += f"\n    hint: {r['hint']}"
        print(line)
    return 0


# --------------------------------------------------------------------------- measure
WHOLE_SYSTEM_NOTE = "every process on the machine and its idle power, not only the command"


def _measurement_rows(run: CommandEnergy) -> list[dict[str, Any]]:
    """The CSV rows of a run: one per interval and domain, from the same intervals as the totals."""
    rows = []
    t0 = run.total.start_s
    for m in run.intervals:
        end = m.start_s + m.duration_s - t0
        for d in m.domains:
            gap = m.gap_s.get(d.id, 0.0)
            rows.append({"time_s": repr(end), "interval_s": repr(m.duration_s), "source": m.source_of[d.id],
                         "event": d.id, "domain": d.id, "parent": d.parent,
                         "energy_j": repr(m.energy_j.get(d.id, 0.0)), "power_w": f"{m.power_w(d.id):.6g}",
                         "quality": m.domain_quality[d.id], "gap_s": f"{gap:.6g}",
                         "scope": m.scope_of_domain(d.id)})
    return rows


def _run_json(cmd: Sequence[str], run: CommandEnergy, notes: Sequence[str]) -> dict[str, Any]:
    """The JSON of a run: the same totals and intervals as the table and the CSV."""
    m = run.total
    out: dict[str, Any] = {"command": list(cmd), "exit_code": run.exit_code, **m.as_dict()}
    out["cpu_s"] = run.cpu_s
    out["excluded"] = [{"domain": x.domain, "source": x.source, "power_w": x.power_w, "energy_j": run.excluded_j(x),
                        "quality": x.quality} for x in run.excluded]
    out["notes"] = list(notes)
    if run.sampled:
        t0 = m.start_s
        out["intervals"] = [{"time_s": i.start_s + i.duration_s - t0, "interval_s": i.duration_s,
                             "energy_j": dict(i.energy_j), "power_w": {d.id: i.power_w(d.id) for d in i.domains},
                             "gap_s": dict(i.gap_s)} for i in run.intervals]
    return out


def _header(cmd: Sequence[str], m: Measurement) -> list[str]:
    """The title and the scope line: whose energy the figures below are."""
    shown = format_command(cmd)
    srcs = ", ".join(dict.fromkeys(m.source_of.values()))
    scope = f"scope: {m.scope}"
    if m.scope == WHOLE_SYSTEM:
        title = f"Whole-system energy while '{shown}' ran"
        scope += f" ({WHOLE_SYSTEM_NOTE})"
    elif m.scope == tree_label(cmd):
        title = f"Energy of '{shown}' and its child processes"
    else:
        title = f"Energy while '{shown}' ran"
        if m.scope == "mixed":
            scope += ": " + "; ".join(f"{d.id}: {m.scope_of_domain(d.id)}" for d in root_domains(m.domains))
    return [f"\n {title} (source: {srcs}; {m.quality}):", f" {scope}\n"]


def _print_measurement(cmd: Sequence[str], run: CommandEnergy, notes: Sequence[str]) -> None:
    err = sys.stderr
    m = run.total
    print("\n".join(_header(cmd, m)), file=err)
    ids = {d.id for d in m.domains}
    for d in m.domains:
        j = m.energy_j.get(d.id, 0.0)
        inside = f"  (in {d.parent})" if d.parent in ids else ""
        gap = f"  gap {m.gap_s[d.id]:.3g} s" if d.id in m.gap_s else ""
        print(f" {j:16.2f} J   {d.id:<16} # {m.power_w(d.id):9.2f} W  {m.domain_quality[d.id]}{inside}{gap}", file=err)
    print(f"\n {m.duration_s:16.9f} seconds time elapsed", file=err)
    if run.cpu_s is not None:
        print(f" {run.cpu_s:16.9f} CPU seconds of the process tree", file=err)
    roots = [d.id for d in root_domains(m.domains)]
    print(f" {m.total_j:16.2f} J total ({' + '.join(roots)}), {m.total_power_w:.2f} W average\n", file=err)
    for x in run.excluded:
        print(f"ipa-ext: note: not included: {x.domain} ({x.source}, {x.quality}), {x.power_w:.2f} W × "
              f"{m.duration_s:.3g} s = {run.excluded_j(x):.2f} J that the machine draws anyway: it is not the "
              "command's", file=err)
    if m.below_resolution:
        print(f"ipa-ext: warning: the command ran {m.duration_s:.3g} s, shorter than the source resolution "
              f"{m.resolution_s:.3g} s: these joules are not meaningful", file=err)
    for d, g in m.gap_s.items():
        print(f"ipa-ext: warning: {d}: {g:.3g} s not covered (counter unreadable or went backwards); "
              "its joules are a lower bound", file=err)
    for n in notes:
        print(f"ipa-ext: note: {n}", file=err)
    if run.exit_code != 0:
        print(f"ipa-ext: note: the command exited with status {run.exit_code}", file=err)


def run_measure(args: argparse.Namespace) -> int:
    cmd = list(args.cmd)
    if cmd and cmd[0] == "--":
        cmd = cmd[1:]
    if not cmd:
        raise ConfigError("no command given: ipa-ext energy measure [options] -- CMD [ARGS...]", where="CMD")
    if args.interval is not None and args.interval <= 0:
        raise ConfigError("must be a positive number of milliseconds", where="--interval")
    host, choice = _sources_from_args(args)
    meter = Meter(choice.sources)
    interval_ms = args.interval or (1000 if args.csv else None)
    try:
        run = measure_command(meter, cmd, interval_ms / MS_PER_S if interval_ms else None,
                              process_tree=not args.whole_system)
    except FileNotFoundError:
        raise CommandError(f"cannot run {cmd[0]!r}: command not found", 127) from None
    except OSError as exc:
        raise CommandError(f"cannot run {cmd[0]!r}: {exc.strerror or exc}", 126) from None
    finally:
        meter.close()
    if args.csv:
        write_interval_csv(args.csv, _measurement_rows(run), extra_columns=("scope",))
    if args.json:
        print_json(_run_json(cmd, run, choice.notes))
    else:
        _print_measurement(cmd, run, choice.notes)
    return run.exit_code


# --------------------------------------------------------------------------- report
def run_report(args: argparse.Namespace) -> int:
    log = load_log(args.log)
    summary = summarise(log)
    files: dict[str, str] = {}
    if args.csv:
        write_interval_csv(args.csv, log_rows(log))
        files["csv"] = str(args.csv)
    if args.plot:
        plot_power(log, args.plot)
        files["plot"] = str(args.plot)
    if args.json:  # as simulate: the files in the JSON, "wrote ..." after the table
        print_json({**summary, "files": files})
    else:
        print(format_report(summary))
        if files:
            print(f"wrote {', '.join(files.values())}")
    for w in log.warnings:
        print(f"ipa-ext: warning: {args.log}: {w}", file=sys.stderr)
    return 0


# --------------------------------------------------------------------------- serve
def run_serve(args: argparse.Namespace) -> int:
    from socketserver import ThreadingMixIn
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from prometheus_client import make_wsgi_app

    from ..energy.export import EnergyMetrics, new_registry

    if args.interval <= 0:
        raise ConfigError("must be a positive number of milliseconds", where="--interval")
    if not 0 <= args.port <= 65535:
        raise ConfigError(f"must be 0..65535, got {args.port}", where="--port")

    class Server(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *a: Any) -> None:  # noqa: A002 - wsgiref's name
            pass

    host, choice = _sources_from_args(args)
    meter = Meter(choice.sources)
    metrics = EnergyMetrics()
    try:
        httpd = make_server(args.bind, args.port, make_wsgi_app(new_registry(metrics)), Server, handler_class=Quiet)
    except OSError as exc:
        meter.close()
        raise ConfigError(f"cannot listen on {args.bind}:{args.port}: {exc.strerror or exc}", where="--port") from None
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    web = threading.Thread(target=httpd.serve_forever, name="ipa-ext-metrics", daemon=True)
    web.start()
    sampler = IntervalSampler(meter, args.interval / MS_PER_S, on_interval=metrics.observe).start()
    srcs = ", ".join(s.name for s in choice.sources)
    print(f"serving http://{args.bind}:{httpd.server_port}/metrics (sources: {srcs}; every {args.interval} ms)",
          flush=True)
    for n in choice.notes:
        print(f"ipa-ext: note: {n}", file=sys.stderr, flush=True)
    try:
        stop.wait(args.duration)
    except KeyboardInterrupt:
        pass
    finally:
        sampler.stop(final=False)
        httpd.shutdown()
        httpd.server_close()
        meter.close()
    for e in sampler.errors[:3]:
        print(f"ipa-ext: warning: sampling failed: {e}", file=sys.stderr)
    return 0
