"""Meta-tests (datasette style): every hook has a docs section and a test; every built-in is documented."""

from __future__ import annotations

import ast
import inspect
import json
import re
import subprocess
import sys
from dataclasses import dataclass
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


# -- imports run one way, with no cycles ----------------------------------------------------------------------------
# A module may import modules of its own layer or a lower one: core <- grading/data <- eval <- plugins/benchmarks <-
# tools/trainers <- cli. settings and stack are standard-library leaves every layer may read; doctor is a tool.
LAYERS = {
    "r1h.harness.core": 0, "r1h.harness.system.settings": 0, "r1h.harness.system.stack": 0,
    "r1h.harness.grading": 1, "r1h.harness.data": 1,
    "r1h.harness.eval": 2,
    "r1h.plugins": 3, "r1h.benchmarks": 3,
    "r1h.tools": 4, "r1h.trainers": 4, "r1h.harness.system.doctor": 4,
    "r1h.harness.cli": 5,
}
PACKAGE_INITS = {"r1h": 0, "r1h.harness": 0, "r1h.harness.system": 0}  # these names exactly, not their contents
# Known exceptions, each (importer, imported) with the issue that removes it. An entry that no longer occurs fails
# too, so the lists only shrink.
KNOWN_UPWARD = {
    ("r1h", "r1h.harness.grading.pool"): "the composition root: `import r1h` plugs the batch grader into the core's "
                                         "Reward (core.reward.use_batch_grader), from a function, lazily",
}
KNOWN_CYCLE_EDGES: dict[tuple[str, str], str] = {}  # function-level imports that close a cycle


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    where: str  # path:line
    top: bool  # at module level (not inside a function)
    typing: bool  # under ``if TYPE_CHECKING:`` (never runs)


def modules(root: Path) -> dict[str, Path]:
    """Module name -> file, for every .py file under ``root``/r1h."""
    out = {}
    for path in sorted((root / "r1h").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def import_edges(root: Path) -> list[Edge]:
    """Every import of one r1h module by another (relative imports resolved; ``from pkg import name`` is an import
    of the module pkg.name where that is a module, else of pkg)."""
    mods = modules(root)
    return [edge for name, path in mods.items() for edge in _module_edges(name, path, root, mods)]


def _module_edges(name: str, path: Path, root: Path, mods: dict[str, Path]) -> list[Edge]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    edges, todo = [], [(ast.parse(path.read_text(encoding="utf-8")), True, False)]
    while todo:
        node, top, typing = todo.pop()
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            targets = [f"{module}.{a.name}" if f"{module}.{a.name}" in mods else module for a in node.names]
        where = f"{path.relative_to(root)}:{getattr(node, 'lineno', 0)}"
        edges += [Edge(name, t, where, top, typing) for t in dict.fromkeys(targets) if t in mods and t != name]
        top = top and not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
        type_only = set(map(id, node.body)) if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test) \
            else set()
        todo += [(child, top, typing or id(child) in type_only) for child in ast.iter_child_nodes(node)]
    return edges


def layer(module: str) -> int:
    if module in PACKAGE_INITS:
        return PACKAGE_INITS[module]
    prefixes = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    if not prefixes:
        raise KeyError(f"{module} has no layer: add its package to LAYERS in tests/test_meta.py")
    return LAYERS[max(prefixes, key=len)]


def upward(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if layer(e.imported) > layer(e.importer)]


def cycles(edges: list[Edge]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    graph: dict[str, set[str]] = {}
    for e in edges:
        graph.setdefault(e.importer, set()).add(e.imported)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def strong(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while not component or component[-1] != v:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for v in list(graph):
        if v not in index:
            strong(v)
    return sorted(found)


EDGES = import_edges(REPO)


def test_every_module_has_a_layer():
    for name in modules(REPO):
        layer(name)


def test_imports_run_one_way():
    """core <- grading/data <- eval <- plugins <- tools/trainers <- cli, function-level and type-only imports too."""
    found = {(e.importer, e.imported): e.where for e in upward(EDGES)}
    unexpected = [f"{where}: {a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
                  for (a, b), where in found.items() if (a, b) not in KNOWN_UPWARD]
    assert not unexpected, unexpected
    stale = [edge for edge in KNOWN_UPWARD if edge not in found]
    assert not stale, f"no longer imported: remove from KNOWN_UPWARD: {stale}"


def test_no_import_cycles():
    runtime = [e for e in EDGES if not e.typing]
    assert not cycles([e for e in runtime if e.top]), "a cycle of module-level imports"
    cut = [e for e in runtime if (e.importer, e.imported) not in KNOWN_CYCLE_EDGES]
    assert not cycles(cut), f"an import cycle (function-level imports count): {cycles(cut)}"
    for known in KNOWN_CYCLE_EDGES:  # each known edge must still close a cycle, or it leaves the list
        closing = [e for e in runtime if (e.importer, e.imported) not in KNOWN_CYCLE_EDGES or
                   (e.importer, e.imported) == known]
        assert any(set(known) <= set(c) for c in cycles(closing)), f"remove from KNOWN_CYCLE_EDGES: {known}"


def test_the_import_checks_catch_a_planted_violation(tmp_path):
    """A core module importing eval, and eval importing it back from a function: one upward edge, one cycle."""
    for name, text in {"__init__": "", "harness/__init__": "", "harness/core/__init__": "",
                       "harness/eval/__init__": "", "harness/core/a": "from r1h.harness.eval import b\n",
                       "harness/eval/b": "def f():\n    from ..core import a\n"}.items():
        (tmp_path / "r1h" / f"{name}.py").parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "r1h" / f"{name}.py").write_text(text)
    edges = import_edges(tmp_path)
    assert [(e.importer, e.imported, e.top) for e in upward(edges)] == [("r1h.harness.core.a", "r1h.harness.eval.b", True)]
    assert cycles(edges) == [["r1h.harness.core.a", "r1h.harness.eval.b"]]
    assert not cycles([e for e in edges if e.top])  # the function-level import is what closes it


def test_the_core_never_imports_a_concrete_plugin_or_a_tool():
    """r1h/harness holds contracts and machinery: built-in plugins reach it through the hooks, and the tools
    (r1h/tools: compare, regrade, distill) sit on top of it. Only the CLI's commands may import the tools."""
    offenders = [f"{e.where}: {e.importer} imports {e.imported}" for e in EDGES
                 if e.importer.startswith("r1h.harness") and not e.importer.startswith("r1h.harness.cli")
                 and any(e.imported == p or e.imported.startswith(p + ".")
                         for p in ("r1h.plugins", "r1h.benchmarks", "r1h.tools", "r1h.trainers"))]
    assert not offenders, offenders


# -- the README maps every module ------------------------------------------------------------------------------------
def _readme_map() -> str:
    text = (REPO / "README.md").read_text(encoding="utf-8")
    return text[text.index("## Architecture"):]


def test_the_readme_architecture_map_names_every_module():
    """Each module of r1h/ is named in the README's architecture section: by its file name where it has a line of
    its own, or by its stem in its folder's line (``math (_boxes, _numbers, ...)``)."""
    section = _readme_map()
    missing = []
    for path in sorted((REPO / "r1h").rglob("*.py")):
        if path.name == "__init__.py" and path.parent != REPO / "r1h":
            continue
        rel = path.relative_to(REPO / "r1h")
        folder = f"{rel.parent.as_posix()}/" if rel.parent.as_posix() != "." else ""
        if folder and folder not in section and f"{rel.parent.name}/" not in section:
            missing.append(f"{rel} (folder {folder})")
        elif not re.search(rf"(?<![\w.]){re.escape(path.stem)}(?![\w])", section):
            missing.append(str(rel))
    assert not missing, f"the README's architecture section does not name: {missing}"
