"""The test suite's own layout: helpers shared by several test modules live in tests/helpers/ (or conftest.py), and no
test module imports another test module (importing one runs its module-level code and fixtures a second time, under a
second module name)."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _imported(tree: ast.AST) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return names


def test_no_test_module_imports_another():
    found = []
    for path in sorted(TESTS.rglob("*.py")):
        for name in _imported(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if any(part.startswith("test_") for part in name.lstrip(".").split(".")):
                found.append(f"{path.relative_to(TESTS)}: imports {name}")
    assert not found, "move what is shared to tests/helpers/ or conftest.py:\n" + "\n".join(found)


def test_shared_helpers_are_in_the_helpers_package():
    loose = [p.name for p in TESTS.glob("*.py") if not p.name.startswith("test_") and p.name != "conftest.py"]
    assert not loose, f"helper modules outside tests/helpers/: {loose}"
