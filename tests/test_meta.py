"""Meta-tests (datasette style): every hook has a docs section and a test; every built-in is documented."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

from r1h.harness import hookspecs

REPO = Path(__file__).resolve().parents[1]
HOOKS = [name for name, obj in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("r1h_")]


def test_there_are_hooks():
    assert set(HOOKS) == {"r1h_register_benchmarks", "r1h_register_rewards", "r1h_register_backends"}


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
