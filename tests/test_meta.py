"""Meta-tests (datasette style): every hook has a docs section and a test; every built-in is documented."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from r1h.harness.core import hookspecs

REPO = Path(__file__).resolve().parents[1]
HOOKS = [name for name, obj in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("r1h_")]


def test_there_are_hooks():
    assert set(HOOKS) == {"r1h_register_benchmarks", "r1h_register_rewards", "r1h_register_backends",
                          "r1h_register_anchors"}


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docs_section(hook):
    assert f"### {hook}" in (REPO / "docs" / "plugins.md").read_text()


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_has_a_docstring(hook):
    assert (getattr(hookspecs, hook).__doc__ or "").strip()


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test(hook):
    tests = [p for p in (REPO / "tests").glob("test_*.py") if p.name != "test_meta.py"]
    assert any(f"def {hook}(" in p.read_text() for p in tests), f"no test implements {hook}"


def _imports(path: Path) -> set[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved against its package)."""
    import ast

    package = ".".join(path.relative_to(REPO).with_suffix("").parts[:-1])
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def test_the_core_never_imports_a_concrete_plugin_or_a_tool():
    """r1h/harness holds contracts and machinery: built-in plugins reach it through the hooks, and the tools
    (r1h/tools: compare, regrade, distill) sit on top of it. Only the CLI's commands may import the tools."""
    offenders = []
    for path in sorted((REPO / "r1h" / "harness").rglob("*.py")):
        if "cli" in path.parts:
            continue
        for name in _imports(path):
            if name.startswith(("r1h.plugins.", "r1h.benchmarks.", "r1h.tools", "r1h.trainers")):
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert not offenders, offenders
