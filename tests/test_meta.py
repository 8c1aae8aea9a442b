"""Meta-tests (datasette style): every hook has a docs section and a test; every built-in is documented."""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
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


# hook -> a test that registers a plugin of its own through the hook and then uses what it registered through the
# public interface (r1h eval, r1h regrade, r1h check). The conftest's --hook-usage recorder checks the "uses".
EXERCISED_BY = {
    "r1h_register_benchmarks": "tests/test_regrade.py::test_regrade_r1h_grader_finds_recorded_disagreements",
    "r1h_register_rewards": "tests/test_regrade.py::test_regrade_r1h_grader_finds_recorded_disagreements",
    "r1h_register_backends": "tests/test_logs.py::test_last_progress_line_printed_once",
    "r1h_register_anchors": "tests/test_anchors.py::test_a_third_party_plugin_registers_its_own_anchor",
}
# A control: it registers a reward through a plugin of its own but never uses it, so it must not count.
REGISTERS_ONLY = "tests/test_plugins.py::test_trace_plugins_env"


@pytest.fixture(scope="module")
def hook_usage(tmp_path_factory) -> dict[str, list[str]]:
    """Run the tests named in EXERCISED_BY (and the control) with the conftest's recorder: hook -> tests."""
    out = tmp_path_factory.mktemp("hooks") / "usage.json"
    tests = sorted({*EXERCISED_BY.values(), REGISTERS_ONLY})
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           f"--hook-usage={out}", *tests], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"the hook tests did not all pass:\n{proc.stdout[-3000:]}{proc.stderr[-2000:]}"
    return json.loads(out.read_text())


def test_every_hook_names_the_test_that_exercises_it():
    assert set(EXERCISED_BY) == set(HOOKS)


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_exercised_by_a_test(hook, hook_usage):
    assert EXERCISED_BY[hook] in hook_usage.get(hook, []), \
        f"{EXERCISED_BY[hook]} registered nothing through {hook} that it then used: {hook_usage}"
    assert REGISTERS_ONLY not in hook_usage.get(hook, [])  # registering alone is not exercising


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
