"""The core never imports the built-in plugins or the CLI (an AST scan of ``ipa_ext/``)."""

from __future__ import annotations

import ast
from pathlib import Path

from support.paths import ROOT

CORE = ROOT / "ipa_ext"
FORBIDDEN = ("ipa_ext_plugins", "ipa_ext.cli")
ALLOWED = {"ipa_ext/__main__.py"}  # ``python -m ipa_ext`` runs the CLI
"""Besides ``ipa_ext/cli/`` itself."""


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every module an import statement or an ``import_module("...")`` call names, made absolute."""
    package = module if is_package else module.rpartition(".")[0]
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.append((node.lineno, base))
            out += [(node.lineno, f"{base}.{a.name}") for a in node.names]
        elif (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
              and isinstance(node.args[0].value, str)
              and getattr(node.func, "attr", getattr(node.func, "id", "")) in ("import_module", "__import__")):
            out.append((node.lineno, node.args[0].value))
    return out


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    rel = path.relative_to(ROOT).as_posix()
    return [f"{rel}:{line}: imports {name}"
            for line, name in imported(tree, module_name(path), path.name == "__init__.py")
            if any(name == f or name.startswith(f + ".") for f in FORBIDDEN)]


def test_core_imports_neither_builtin_plugins_nor_the_cli():
    files = [p for p in CORE.rglob("*.py")
             if not p.relative_to(ROOT).as_posix().startswith("ipa_ext/cli/")
             and p.relative_to(ROOT).as_posix() not in ALLOWED]
    assert len(files) > 50
    found = [v for p in files for v in violations(p)]
    assert found == []


def test_the_scan_sees_relative_absolute_and_dynamic_imports(tmp_path):
    code = ("from ..cli.common import table\nimport ipa_ext_plugins.energy.rapl\n"
            "from ipa_ext import cli\nimport importlib\nimportlib.import_module('ipa_ext_plugins.x')\n"
            "from ..report import tables\n")
    names = [n for _, n in imported(ast.parse(code), "ipa_ext.energy.report", False)]
    hits = [n for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    assert hits == ["ipa_ext.cli.common", "ipa_ext.cli.common.table", "ipa_ext_plugins.energy.rapl",
                    "ipa_ext.cli", "ipa_ext_plugins.x"]
    assert "ipa_ext.report.tables" in names
