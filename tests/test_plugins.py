"""The plugin core: registration, load controls, errors, and a real third-party plugin package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import r1h
from r1h.harness.core import plugins
from r1h.harness.core.errors import DuplicateNameError, PluginLoadError, UnknownNameError
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.registry import Registrar, Registry


class _RewardPlugin:
    @hookimpl
    def r1h_register_rewards(self, register):
        register("always_one", f"{__name__}:AlwaysOne", aliases=("one",), version="7", description="Ones.")


class AlwaysOne(r1h.Reward):
    """Scores every completion 1.0."""

    name = "always_one"

    def score(self, completion, prompt=None, **row):
        return 1.0


def test_builtins_register_through_the_hooks():
    built = plugins.build(load_entry_points=False)
    assert not built.failures, built.failures
    # every built-in name comes from a module in DEFAULT_PLUGINS, attributed to that module
    for kind in ("benchmark", "reward", "backend"):
        for entry in built.registry(kind).entries():
            assert entry.plugin in plugins.DEFAULT_PLUGINS


def test_extra_plugin_is_listed_with_its_plugin_name_and_resolves_lazily():
    built = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(_RewardPlugin(),))
    entry = built.rewards.entry("one")  # alias
    assert entry.name == "always_one" and entry.version == "7"
    assert entry._resolved is None  # lazy until used
    assert entry.resolve() is AlwaysOne
    assert entry.describe()["description"] == "Ones."


def test_unknown_name_suggests_close_matches():
    registry = Registry("benchmark")
    Registrar(registry, "p").add("aime24", object())
    with pytest.raises(UnknownNameError, match=r"Unknown benchmark 'aime'\. Did you mean: aime24\?"):
        registry.entry("aime")
    with pytest.raises(UnknownNameError, match="Did you mean: aime24"):
        registry.entry("aime25")


def test_duplicate_name_names_both_plugins():
    class Other:
        @hookimpl
        def r1h_register_rewards(self, register):
            register("always_one", object())

    with pytest.raises(DuplicateNameError, match=r"always_one.*by plugin '_RewardPlugin' and by plugin '.*Other'"):
        plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(_RewardPlugin(), Other()))


def test_a_plugin_that_fails_to_import_is_reported_and_others_survive():
    built = plugins.build(default_plugins=("r1h_no_such_plugin_module", "r1h.plugins.rewards.format"),
                          load_entry_points=False)
    assert [f.plugin for f in built.failures] == ["r1h_no_such_plugin_module"]
    assert "think_format" in built.rewards
    # asking for a name that may have been the broken plugin's says which plugin failed and why
    plugins._CURRENT = built
    with pytest.raises(UnknownNameError, match=r"failed to load: r1h_no_such_plugin_module: ModuleNotFoundError"):
        r1h.get_reward("math_accuracy")


def test_a_plugin_whose_hook_raises_is_reported_and_others_survive():
    class Broken:
        @hookimpl
        def r1h_register_rewards(self, register):
            raise RuntimeError("boom")

    built = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(Broken(), _RewardPlugin()))
    assert len(built.failures) == 1 and "boom" in built.failures[0].error
    assert "always_one" in built.rewards


def test_misspelled_hook_is_an_error_of_that_plugin():
    class Typo:
        @hookimpl
        def r1h_register_reward(self, register):  # missing "s"
            register("x", object())

    built = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(Typo(), _RewardPlugin()))
    assert len(built.failures) == 1 and "unknown hook" in built.failures[0].error
    assert "always_one" in built.rewards and "x" not in built.rewards


def test_disable_plugins_env(monkeypatch):
    monkeypatch.setenv("R1H_DISABLE_PLUGINS", "r1h.plugins.rewards.format")
    built = plugins.build(load_entry_points=False)
    assert "think_format" not in built.rewards
    assert "countdown_equation" in built.rewards


def test_trace_plugins_env(monkeypatch, capsys):
    monkeypatch.setenv("R1H_TRACE_PLUGINS", "1")
    plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(_RewardPlugin(),))
    assert "r1h_register_rewards: always_one" in capsys.readouterr().err


def test_lazy_target_that_cannot_import_is_a_plugin_load_error():
    registry = Registry("reward")
    Registrar(registry, "p").add("bad", "r1h_missing_mod:Thing")
    with pytest.raises(PluginLoadError, match="r1h_missing_mod"):
        registry.get("bad")
    assert "error" in registry.entry("bad").describe()


def test_public_api_returns_named_picklable_rewards():
    import pickle

    reward = r1h.get_reward("think_format")
    assert reward.__name__ == "think_format"
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "think_format"
    names = {row["name"] for row in r1h.list_plugins("reward")}
    assert {"math_accuracy", "think_format", "countdown_equation"} <= names


# -- a real third-party package, built and pip-installed into this environment ---------------------------------------

PLUGIN_SOURCE = '''
import r1h


class TinyBench(r1h.Benchmark):
    """A third-party benchmark for the plugin test."""

    name = "tiny_bench"
    version = "3"
    reward = "tiny_exact"


class TinyExact(r1h.Reward):
    """Exact-match third-party reward."""

    name = "tiny_exact"
    columns = ("answer",)

    def score(self, completion, prompt=None, **row):
        return float(completion.strip() == str(row.get("answer")))


@r1h.hookimpl
def r1h_register_benchmarks(register):
    register("tiny_bench", "r1h_tiny_plugin:TinyBench")


@r1h.hookimpl
def r1h_register_rewards(register):
    register("tiny_exact", TinyExact)
'''


def _r1h_list_json(env: dict[str, str]) -> list[dict]:
    out = subprocess.run(
        [sys.executable, "-m", "r1h.harness.cli.main", "list", "--json"],
        capture_output=True, text=True, env=env, check=True, timeout=120,
    )
    return json.loads(out.stdout)


@pytest.mark.slow
def test_third_party_plugin_package_install_and_uninstall(tmp_path: Path):
    pkg = tmp_path / "r1h-tiny-plugin"
    pkg.mkdir()
    (pkg / "r1h_tiny_plugin.py").write_text(PLUGIN_SOURCE)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools"]
        build-backend = "setuptools.build_meta"

        [project]
        name = "r1h-tiny-plugin"
        version = "0.0.1"

        [tool.setuptools]
        py-modules = ["r1h_tiny_plugin"]

        [project.entry-points.r1h]
        tiny = "r1h_tiny_plugin"
    """))
    env = {k: v for k, v in os.environ.items() if k != "R1H_LOAD_PLUGINS"}
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "--no-index", str(pkg)],
                   check=True, timeout=300, cwd=tmp_path)
    try:
        rows = _r1h_list_json(env)
        mine = {(r["kind"], r["name"]): r for r in rows if r["plugin"] == "tiny"}
        assert set(mine) == {("benchmark", "tiny_bench"), ("reward", "tiny_exact")}
        assert mine[("benchmark", "tiny_bench")]["version"] == "3"
        # the load controls apply to it
        assert not any(r["plugin"] == "tiny" for r in _r1h_list_json({**env, "R1H_LOAD_PLUGINS": ""}))
        assert not any(r["plugin"] == "tiny" for r in _r1h_list_json({**env, "R1H_DISABLE_PLUGINS": "tiny"}))
        assert any(r["plugin"] == "tiny" for r in _r1h_list_json({**env, "R1H_LOAD_PLUGINS": "tiny"}))
    finally:
        subprocess.run([*pip, "uninstall", "-y", "r1h-tiny-plugin"], check=True, timeout=300)
    rows = _r1h_list_json(env)
    assert not any(r["plugin"] == "tiny" for r in rows)
    assert any(r["name"] == "math_accuracy" for r in rows)


class EchoBackend(r1h.Backend):
    """Answers every request with its last message."""

    name = "echo"

    def generate(self, requests, config):
        return [[r1h.Completion(text=str(req.messages[-1]["content"])) for _ in req.sample_indices] for req in requests]


class _BackendPlugin:
    @hookimpl
    def r1h_register_backends(self, register):
        register("echo", EchoBackend, description="Echo backend.")


def test_backend_registration_and_get_backend():
    plugins._CURRENT = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(_BackendPlugin(),))
    backend = r1h.get_backend("echo", model="m", batch_size="2")
    assert backend.model == "m" and backend.backend_args == {"batch_size": "2"}
    req = r1h.GenerationRequest(id="1", messages=[{"role": "user", "content": "hi"}], sample_indices=[0, 1], seeds=[1, 2])
    assert [c.text for c in backend.generate([req], r1h.GenerationConfig())[0]] == ["hi", "hi"]
    with pytest.raises(UnknownNameError, match="Did you mean: echo"):
        r1h.get_backend("ecco")
