"""The command line as a user meets it: help that reads as a Typer/Click tool's, and the
package's layers importing one way."""

from __future__ import annotations

import ast
import graphlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from speecheq.cli.main import app

ROOT = Path(__file__).resolve().parents[1]


def commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command's words, group by group (hidden ones aside)."""
    found = [prefix]
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue
        if hasattr(command, "commands"):
            found += commands(command, (*prefix, name))
        else:
            found.append((*prefix, name))
    return found


@pytest.mark.parametrize("words", commands(typer.main.get_command(app)), ids=" ".join)
def test_help_shows_flags_without_values_and_arguments_by_name(words: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*words, "--help"], terminal_width=100)
    assert result.exit_code == 0, result.output
    assert "<bool>" not in result.output and "list[" not in result.output
    assert (
        "Usage: " in result.output and "{" not in result.output.split("Usage: ")[1].split("\n")[0]
    )


def test_python_m_speecheq_runs_the_command_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "speecheq", "--help"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0 and "Usage:" in done.stdout


LAYERS = [
    ("errors", "labels", "fileio", "audio", "metrics", "console", "device", "cluster"),
    ("data",),
    ("features", "lexicon", "corpora", "synth"),
    ("models",),
    ("tasks",),
    ("config", "annotated_config", "batching", "modelfile"),
    ("scoring", "predict", "inference"),
    ("train", "baseline", "serve"),
    ("experiments",),
    ("cli", "__main__"),
]
"""The package's layers, lowest first: a module imports from its own layer or lower ones."""


def test_layers_import_one_way() -> None:
    rank = {name: index for index, names in enumerate(LAYERS) for name in names}
    upward = []
    for path in sorted((ROOT / "speecheq").rglob("*.py")):
        parts = path.relative_to(ROOT / "speecheq").with_suffix("").parts
        if parts == ("__init__",):
            continue
        layer = rank[parts[0]]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            for target in imported_modules(node):
                if rank.get(target, 0) > layer:  # not a module (__version__): the root's own
                    upward.append(f"{'/'.join(parts)} imports speecheq.{target}")
    assert not upward


def test_no_module_imports_itself_through_others() -> None:
    """The modules' import graph has no circle; imports inside functions and under
    ``TYPE_CHECKING`` count."""
    modules = {
        ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): path
        for path in (ROOT / "speecheq").rglob("*.py")
    }
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        graph[name] = {
            target
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
            for target in imported_submodules(node, package, modules)
            if target != name
        }
    try:
        tuple(graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as err:
        pytest.fail(f"import circle: {' -> '.join(err.args[1])}")


def imported_submodules(node: ast.AST, package: str, modules: dict[str, Path]) -> list[str]:
    """The speecheq modules (of ``modules``) an import statement in ``package`` reaches: the
    module named, or the module a name is imported from."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names if alias.name in modules]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:
        parent = package.split(".")[: len(package.split(".")) - node.level + 1]
        base = ".".join([*parent, base] if base else parent)
    found = []
    for alias in node.names:
        if f"{base}.{alias.name}" in modules:
            found.append(f"{base}.{alias.name}")
        elif base in modules:
            found.append(base)
    return found


def imported_modules(node: ast.AST) -> list[str]:
    """The top-level speecheq modules an import statement reaches: ``from speecheq.x import``,
    ``from speecheq import x``, ``import speecheq.x`` (the package's own names, such as
    ``Recognizer``, count as the layer they come from)."""
    package_names = {"Recognizer": "inference", "timeline_of": "inference"}
    if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module == "speecheq":
        return [package_names.get(alias.name, alias.name) for alias in node.names]
    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("speecheq."):
        return [node.module.split(".")[1]]
    if isinstance(node, ast.Import):
        return [a.name.split(".")[1] for a in node.names if a.name.startswith("speecheq.")]
    return []
