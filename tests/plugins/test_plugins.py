"""The plugin host: loading order, isolation, strictness, duplicates, disabling, discovery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

import pytest

from ipa_ext.errors import PluginError, UnknownNameError
from ipa_ext.host import load_plugins

from support.cli import assert_one_line_error, run_cli, spawn_cli
from support.paths import ROOT

GOOD = """
from ipa_ext import hookimpl
from ipa_ext.optimizers import Optimizer

class Noop(Optimizer):
    def solve(self, problem, rate, current, k):
        return [], {}

@hookimpl
def register_optimizers(register):
    register("noop-{tag}", Noop)
"""


def plugin_file(tmp_path: Path, name: str, body: str) -> str:
    p = tmp_path / f"{name}.py"
    p.write_text(textwrap.dedent(body))
    return str(p)


def declared_builtins() -> dict[str, str]:
    """pyproject's entry-point table: the one list of built-in plugins."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["entry-points"]["ipa_ext"]


def test_builtins_load_through_entry_points(host):
    recs = {r.name: r for r in host.records}
    declared = declared_builtins()
    for name, module in declared.items():
        assert recs[name].status == "loaded", recs[name].error
        assert recs[name].origin == "builtin"
        assert recs[name].module == module
    builtin = [r.name for r in host.records if r.origin == "builtin"]
    assert builtin == sorted(declared)  # name order, before any other plugin
    assert host.records[: len(builtin)] == [recs[n] for n in builtin]
    assert "brute-force" in host.registry.names("optimizer")
    assert host.registry.names("objective")[:5] == ["accuracy", "cost", "batch", "power", "carbon"]


def test_host_source_does_not_repeat_the_builtin_list():
    text = (ROOT / "ipa_ext" / "host.py").read_text()
    assert [m for m in declared_builtins().values() if m in text] == []


def test_entry_points_off_loads_no_builtins_until_added(tmp_path):
    f = plugin_file(tmp_path, "mine", GOOD.replace("{tag}", "z"))
    host = load_plugins([f], entry_points=False)
    assert [r.name for r in host.records] == ["mine"]
    assert host.registry.names("optimizer") == ["noop-z"]
    import importlib

    rec = host.add_plugin(importlib.import_module(declared_builtins()["brute_force"]), "brute_force")
    assert rec.status == "loaded" and rec.registered == {"optimizer": ["brute-force"]}
    assert host.registry.names("optimizer") == ["noop-z", "brute-force"]


def test_config_modules_load_after_builtins(tmp_path):
    f = plugin_file(tmp_path, "mine", GOOD.replace("{tag}", "a"))
    host = load_plugins([f])
    assert host.records[-1].name == "mine" and host.records[-1].origin == "config"
    assert host.records[-1].hooks == ["register_optimizers"]
    assert host.registry.get("optimizer", "noop-a").plugin == "mine"


def test_failing_plugin_is_isolated_and_reported(tmp_path):
    bad = plugin_file(tmp_path, "broken", "raise ImportError('needs libfoo')\n")
    good = plugin_file(tmp_path, "fine", GOOD.replace("{tag}", "b"))
    host = load_plugins([bad, good])
    broken = host.record("broken")
    assert broken.status == "failed"
    assert "ImportError: needs libfoo" in broken.error
    assert host.record("fine").status == "loaded"
    assert "noop-b" in host.registry.names("optimizer")
    assert "brute-force" in host.registry.names("optimizer")


def test_strict_makes_failure_fatal(tmp_path):
    bad = plugin_file(tmp_path, "broken", "raise RuntimeError('boom')\n")
    with pytest.raises(PluginError, match="plugin 'broken'.*RuntimeError: boom"):
        load_plugins([bad], strict=True)


def test_hook_that_raises_registers_nothing(tmp_path):
    body = GOOD.replace("{tag}", "c") + textwrap.dedent("""
        @hookimpl
        def register_objectives(register):
            raise ValueError("bad objective table")
    """)
    host = load_plugins([plugin_file(tmp_path, "half", body)])
    rec = host.record("half")
    assert rec.status == "failed" and "register_objectives raised ValueError" in rec.error
    assert "noop-c" not in host.registry.names("optimizer")


def test_duplicate_names_are_rejected_naming_both_plugins(tmp_path):
    dup = plugin_file(tmp_path, "dupe", """
        from ipa_ext import hookimpl
        from ipa_ext_plugins.optimizers.brute_force import BruteForceOptimizer

        @hookimpl
        def register_optimizers(register):
            register("brute-force", BruteForceOptimizer)
    """)
    host = load_plugins([dup])
    rec = host.record("dupe")
    assert rec.status == "failed"
    assert "'brute-force' is already registered by plugin 'brute_force'" in rec.error
    assert "duplicate from plugin 'dupe'" in rec.error
    assert host.registry.get("optimizer", "brute-force").plugin == "brute_force"
    with pytest.raises(PluginError, match="brute_force"):
        load_plugins([dup], strict=True)


def test_unknown_hook_and_invalid_registration(tmp_path):
    unknown = plugin_file(tmp_path, "typo", """
        from ipa_ext import hookimpl

        @hookimpl
        def register_optimiser(register):
            pass
    """)
    badname = plugin_file(tmp_path, "badname", """
        from ipa_ext import hookimpl

        @hookimpl
        def register_optimizers(register):
            register("has space", object)
    """)
    host = load_plugins([unknown, badname])
    assert "unknown hook(s) register_optimiser" in host.record("typo").error
    assert "invalid optimizer name 'has space'" in host.record("badname").error


def test_disabled_plugins_are_not_imported(tmp_path):
    marker = tmp_path / "imported"
    f = plugin_file(tmp_path, "sidefx", f"open({str(marker)!r}, 'w').write('x')\n")
    host = load_plugins([f], disabled=["sidefx"])
    assert host.record("sidefx").status == "disabled"
    assert not marker.exists()
    # built-in entry points too, checked in a fresh interpreter
    code = ("import sys; from ipa_ext.host import load_plugins; h = load_plugins(disabled=['brute_force']);"
            "print(h.record('brute_force').status, 'ipa_ext_plugins.optimizers.brute_force' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["disabled", "False"]


def test_unknown_component_name_lists_choices(host):
    with pytest.raises(UnknownNameError, match=r"unknown optimizer 'nope' \(available: .*brute-force"):
        host.registry.create("optimizer", "nope")


def test_plugins_cli_json_and_table():
    proc = run_cli("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    bf = next(p for p in data if p["name"] == "brute_force")
    assert bf["status"] == "loaded" and bf["origin"] == "builtin"
    assert bf["hooks"] == ["register_optimizers"] and bf["version"]
    assert bf["registered"] == {"optimizer": ["brute-force"]}
    table = run_cli("plugins").stdout
    assert "brute_force" in table and "loaded" in table


def test_config_plugin_that_fails_to_import_is_one_line_error(tmp_path, root):
    bad = plugin_file(tmp_path, "broken", "import does_not_exist_anywhere\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text((root / "examples/video/config.yaml").read_text()
                   .replace("pipeline.yaml", str(root / "examples/video/pipeline.yaml"))
                   .replace("profiles.csv", str(root / "examples/video/profiles.csv"))
                   + f"plugins:\n  load: [{bad}]\n")
    proc = run_cli("validate", str(cfg))
    assert_one_line_error(proc, "broken", "ModuleNotFoundError", "does_not_exist_anywhere")
    # `plugins` reports it instead of stopping
    proc = run_cli("plugins", "--config", str(cfg), "--json")
    assert proc.returncode == 0
    assert any(p["name"] == "broken" and p["status"] == "failed" for p in json.loads(proc.stdout))
    proc = run_cli("--strict", "plugins", "--config", str(cfg))
    assert_one_line_error(proc, "broken")


@pytest.fixture(scope="module")
def installed_testpdu(tmp_path_factory):
    """Install the throwaway plugin distribution in plugin_dist/ into a target dir."""
    target = tmp_path_factory.mktemp("site")
    src = Path(__file__).resolve().parent / "plugin_dist" / "ipa-ext-testpdu"
    build = tmp_path_factory.mktemp("build")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--target", str(target), str(src)],
        check=True, capture_output=True, text=True, cwd=build,
        env={**os.environ, "PIP_NO_INPUT": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"},
    )
    assert list(target.glob("ipa_ext_testpdu-0.0.1.dist-info"))
    return target


@pytest.mark.slow  # a pip install and child processes
def test_third_party_distribution_is_discovered_and_used(installed_testpdu, tmp_path):
    # child processes: the distribution is found on a fresh interpreter's PYTHONPATH
    counter = tmp_path / "pdu.txt"
    counter.write_text("1.5\n")
    env = {"PYTHONPATH": str(installed_testpdu)}
    proc = spawn_cli("plugins", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    rec = next(p for p in json.loads(proc.stdout) if p["name"] == "testpdu")
    assert rec["origin"] == "entry point (ipa-ext-testpdu)"
    assert rec["version"] == "0.0.1" and rec["status"] == "loaded"
    assert rec["registered"] == {"energy source": ["test-pdu"]}
    code = textwrap.dedent(f"""
        from ipa_ext.host import load_plugins
        src = load_plugins().registry.create("energy source", "test-pdu", {{"path": {str(counter)!r}}})
        print(src.probe().status.value, src.read().joules["pdu0/outlet"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, **env}, check=True).stdout.split()
    assert out == ["available", str(1.5 * 3600.0)]
    # ... and used through the CLI like a built-in source: probed, then measuring a command
    proc = spawn_cli("energy", "probe", "--source", "test-pdu", "-o", f"path={counter}", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    probed = json.loads(proc.stdout)
    assert probed == [{"source": "test-pdu", "plugin": "testpdu", "status": "available",
                       "detail": f"counter file {counter}", "hint": "", "quality": "measured",
                       "domains": [{"id": "pdu0/outlet", "kind": "outlet", "parent": None}]}]
    draw = f"open({str(counter)!r}, 'w').write('1.6\\n')"  # the command draws 0.1 Wh
    proc = spawn_cli("energy", "measure", "--source", "test-pdu", "-o", f"path={counter}", "--json",
                   "--", sys.executable, "-c", draw, env=env)
    assert proc.returncode == 0, proc.stderr
    rep = json.loads(proc.stdout)
    assert rep["domains"][0]["id"] == "pdu0/outlet" and rep["domains"][0]["source"] == "test-pdu"
    assert rep["total_j"] == pytest.approx(0.1 * 3600.0) and rep["quality"] == "measured"


def test_a_plugin_that_registers_nothing_is_warned_about(tmp_path, root):
    nohook = plugin_file(tmp_path, "nohook", "def register_optimizers(register):\n    register('x', object)\n")
    empty = plugin_file(tmp_path, "empty", "from ipa_ext import hookimpl\n\n@hookimpl\n"
                                          "def register_optimizers(register):\n    pass\n")
    cfg = tmp_path / "c.yaml"
    cfg.write_text((root / "examples/video/config.yaml").read_text()
                   .replace("pipeline.yaml", str(root / "examples/video/pipeline.yaml"))
                   .replace("profiles.csv", str(root / "examples/video/profiles.csv"))
                   + f"plugins:\n  load: [{nohook}, {empty}]\n")
    proc = run_cli("optimize", str(cfg), "--rate", "10")
    assert proc.returncode == 0, proc.stderr
    warnings = proc.stderr.splitlines()
    assert warnings == [
        f"ipa-ext: warning: plugin 'nohook' ({nohook}) registered nothing: it has no @ipa_ext.hookimpl "
        "register_* functions",
        f"ipa-ext: warning: plugin 'empty' ({empty}) registered nothing: its register_optimizers did not "
        "call register()",
    ]
    # the built-ins all register something: no warning without these two
    assert run_cli("optimize", str(root / "examples/video/config.yaml"), "--rate", "10").stderr == ""
