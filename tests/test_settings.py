"""The R1H_* settings: one typed list (r1h/harness/system/settings.py), read through settings.get everywhere, and
documented in docs/settings.md from that list."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from r1h.harness.core.errors import ConfigError
from r1h.harness.system import doctor, settings

REPO = Path(__file__).resolve().parents[1]
NAME = re.compile(r"\bR1H_[A-Z][A-Z0-9_]*[A-Z0-9]\b")
SETTINGS_PY = REPO / "r1h" / "harness" / "system" / "settings.py"


def _sources(*folders: str):
    for folder in folders:
        yield from sorted((REPO / folder).rglob("*.py"))


def test_the_docs_table_is_the_modules():
    text = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    table = text.split("<!-- settings:start -->\n", 1)[1].split("<!-- settings:end -->", 1)[0]
    assert table == settings.markdown(), "docs/settings.md is stale: python -m r1h.harness.system.settings prints it"


def test_every_r1h_variable_mentioned_anywhere_is_a_declared_setting():
    mentioned: dict[str, str] = {}
    texts = [*_sources("r1h"), *(REPO / "docs").glob("*.md"), REPO / "README.md", REPO / "tox.ini"]
    for path in texts:
        for name in NAME.findall(path.read_text(encoding="utf-8")):
            mentioned.setdefault(name, str(path.relative_to(REPO)))
    for path in _sources("tests", "perf"):  # string literals only: R1H_SCRIPT in a test is a Python name
        if path.name == Path(__file__).name:
            continue  # this file names unknown variables on purpose
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and NAME.fullmatch(node.value):
                mentioned.setdefault(node.value, str(path.relative_to(REPO)))
    unknown = {name: where for name, where in mentioned.items() if name not in settings.SETTINGS}
    assert not unknown, f"declare these in {SETTINGS_PY.relative_to(REPO)}: {unknown}"


def test_every_declared_setting_is_read_somewhere():
    code = "\n".join(p.read_text(encoding="utf-8") for p in _sources("r1h") if p != SETTINGS_PY)
    tests = "\n".join([*(p.read_text(encoding="utf-8") for p in _sources("tests", "perf")),
                       (REPO / "tox.ini").read_text(encoding="utf-8")])
    built = {"R1H_LIGHTEVAL_PYTHON": "R1H_{grader", "R1H_LMEVAL_PYTHON": "R1H_{grader"}  # test_regrade.py's f-string
    for spec in settings.SETTINGS.values():
        needle = f'"{spec.name}"' if spec.scope == "r1h" else built.get(spec.name, spec.name)
        assert needle in (code if spec.scope == "r1h" else tests), f"{spec.name} is declared but nothing reads it"


def _environ_reads(path: Path) -> list[str]:
    """``os.environ.get / [] / pop / setdefault`` and ``os.getenv`` of an R1H_* name (a literal or a module constant
    holding one) in ``path``."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = {t.id: n.value.value for n in tree.body if isinstance(n, ast.Assign) and isinstance(n.value, ast.Constant)
                 for t in n.targets if isinstance(t, ast.Name) and isinstance(n.value.value, str)}

    def r1h_name(node: ast.AST) -> str | None:
        value = node.value if isinstance(node, ast.Constant) else constants.get(getattr(node, "id", ""))
        return value if isinstance(value, str) and value.startswith("R1H_") else None

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = ast.unparse(node.func)
            if func.endswith(("environ.get", "environ.pop", "environ.setdefault", "getenv")) and r1h_name(node.args[0]):
                found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ") and r1h_name(node.slice):
            found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_module_reads_an_r1h_variable_but_through_settings():
    offenders = [hit for path in _sources("r1h") if path != SETTINGS_PY for hit in _environ_reads(path)]
    assert not offenders, f"read these through r1h.harness.system.settings.get: {offenders}"


def test_the_environ_check_finds_a_direct_read(tmp_path):
    planted = tmp_path / "planted.py"
    planted.write_text('import os\nENV = "R1H_CACHE"\nA = os.environ.get("R1H_GRADER_HOME")\nB = os.environ[ENV]\n'
                       'C = os.environ.get("HOME")\n')
    assert [hit.split()[0] for hit in _environ_reads(planted)] == ["planted.py:3", "planted.py:4"]


@pytest.mark.parametrize(("name", "raw", "message"), [
    ("R1H_GRADING_BUDGET", "soon", "R1H_GRADING_BUDGET='soon' is not a number of seconds"),
    ("R1H_GRADING_BUDGET", "0", "R1H_GRADING_BUDGET must be a positive number of seconds, got 0.0"),
    ("R1H_GRADING_WORKERS", "two", "R1H_GRADING_WORKERS='two' is not a whole number"),
    ("R1H_GRADING_WORKERS", "0", "R1H_GRADING_WORKERS must be at least 1, got 0"),
    ("R1H_GRADING_MEMORY_MB", "100", "R1H_GRADING_MEMORY_MB must be 0 (no cap) or at least 256 MB, got 100"),
])
def test_a_bad_value_is_one_line_naming_the_variable(name, raw, message):
    with pytest.raises(ConfigError) as err:
        settings.get(name, {name: raw})
    assert str(err.value) == message


def test_typed_values_defaults_blanks_and_lenient_settings():
    assert settings.get("R1H_GRADING_WORKERS", {"R1H_GRADING_WORKERS": " 3 "}) == 3
    assert settings.get("R1H_GRADING_BUDGET", {"R1H_GRADING_BUDGET": "  "}) == 2.0  # blank: unset
    assert settings.get("R1H_LOAD_PLUGINS", {}) is None  # unset: every entry point
    assert settings.get("R1H_LOAD_PLUGINS", {"R1H_LOAD_PLUGINS": ""}) == []  # set and empty: none
    assert settings.get("R1H_DISABLE_PLUGINS", {"R1H_DISABLE_PLUGINS": "a, b,"}) == ["a", "b"]
    assert settings.get("R1H_GRADER_PIP_ARGS", {"R1H_GRADER_PIP_ARGS": "--no-index  --find-links d"}) == \
        ["--no-index", "--find-links", "d"]
    assert settings.get("R1H_CACHE", {"R1H_CACHE": "/c"}) == Path("/c")
    assert settings.get("R1H_LATEX_FAST", {"R1H_LATEX_FAST": "0"}) is False
    assert settings.get("R1H_LATEX_FAST", {"R1H_LATEX_FAST": "1"}) is True
    assert settings.get("R1H_TRACE_PLUGINS", {"R1H_TRACE_PLUGINS": "yes"}) is True
    assert settings.get("R1H_PROGRESS_INTERVAL_S", {"R1H_PROGRESS_INTERVAL_S": "junk"}) == 30.0  # lenient
    assert settings.get("R1H_PROGRESS_INTERVAL_S", {"R1H_PROGRESS_INTERVAL_S": "-1"}, default=5.0) == 5.0
    assert settings.get("R1H_HUB_PROBE_S", {"R1H_HUB_PROBE_S": "0.5"}) == 0.5
    with pytest.raises(KeyError, match="R1H_NOPE is not an r1h setting"):
        settings.get("R1H_NOPE")


def test_the_grading_budget_default_is_the_rewards():
    from r1h.harness.grading.budget import DEFAULT_BUDGET_S

    assert settings.default("R1H_GRADING_BUDGET") == DEFAULT_BUDGET_S  # one default budget, whoever asks


def test_a_setting_is_read_when_used(monkeypatch):
    monkeypatch.setenv("R1H_GRADING_WORKERS", "5")
    assert settings.get("R1H_GRADING_WORKERS") == 5
    monkeypatch.delenv("R1H_GRADING_WORKERS")
    assert settings.get("R1H_GRADING_WORKERS") >= 1


def test_doctor_lists_the_settings_set_and_flags_bad_and_unknown_ones():
    environ = {"R1H_CACHE": "/c", "R1H_GRADING_WORKERS": "0", "R1H_GRADNG_BUDGET": "3",
               "R1H_PROGRESS_INTERVAL_S": "junk", "HOME": "/h"}
    found = {(f.level, f.message, f.fix) for f in doctor.check_settings(environ)}
    assert ("info", "R1H_CACHE=/c", "") in found
    assert any(level == "fail" and msg.startswith("R1H_GRADING_WORKERS must be at least 1") for level, msg, _ in found)
    assert ("warn", "R1H_GRADNG_BUDGET is not an r1h setting", "did you mean R1H_GRADING_BUDGET?") in found
    assert any(level == "warn" and "R1H_PROGRESS_INTERVAL_S='junk'" in msg and "30 is used" in msg
               for level, msg, _ in found)
    assert len(found) == 4  # HOME is not r1h's
