"""r1h: a harness for reproducing DeepSeek-R1-style reasoning models.

The public API is small and light to import (no torch):

>>> import r1h
>>> reward = r1h.get_reward("math_accuracy")
>>> reward(["... \\\\boxed{25}"], answer=["025"])
[1.0]
"""

from __future__ import annotations

from typing import Any

from r1h.harness.core.backend import Backend
from r1h.harness.core.benchmark import Benchmark
from r1h.harness.core.errors import R1HError
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.reward import Reward, use_batch_grader
from r1h.harness.core.types import Completion, GenerationConfig, GenerationRequest, Sample

__version__ = "0.1.0"

__all__ = [
    "Backend",
    "Benchmark",
    "Completion",
    "GenerationConfig",
    "GenerationRequest",
    "R1HError",
    "Reward",
    "Sample",
    "get_anchor",
    "get_backend",
    "get_benchmark",
    "get_reward",
    "hookimpl",
    "list_plugins",
]


def _grade(*args: Any, **kwargs: Any) -> Any:
    from r1h.harness.grading.pool import grade  # on first use: importing r1h starts no grading machinery

    return grade(*args, **kwargs)


use_batch_grader(_grade)  # Reward.__call__ grades through the batch grader; the core never imports it


def _plugins():
    from r1h.harness.core.plugins import get_plugins

    return get_plugins()


def _entry(kind: str, name: str):
    """The registry entry; an unknown name also names the plugins that failed to load (the name may be theirs)."""
    from r1h.harness.core.errors import UnknownNameError

    plugins = _plugins()
    try:
        return plugins.registry(kind).entry(name)
    except UnknownNameError as exc:
        if not plugins.failures:
            raise
        failed = "; ".join(f"{f.plugin}: {f.error}" for f in plugins.failures)
        raise UnknownNameError(f"{exc} (plugins that failed to load: {failed})") from None


def _instantiate(target: Any, name: str, kwargs: dict[str, Any]) -> Any:
    if isinstance(target, type):
        return target(name, **kwargs) if issubclass(target, Reward) else target(**kwargs)
    if callable(target) and not isinstance(target, (Reward, Benchmark, Backend)) and kwargs:
        return target(**kwargs)
    return target


def get_reward(name: str, **params: Any) -> Reward:
    """A reward instance by registered name (or alias); ``params`` override its documented defaults."""
    entry = _entry("reward", name)
    return _instantiate(entry.resolve(), entry.name, params)


def get_benchmark(name: str, **params: Any) -> Benchmark:
    """A benchmark instance by registered name (or alias)."""
    entry = _entry("benchmark", name)
    return _instantiate(entry.resolve(), entry.name, params)


def get_backend(name: str, model: str | None = None, **backend_args: Any) -> Backend:
    """A backend instance by registered name, for ``model`` (None: the backend's default)."""
    target = _entry("backend", name).resolve()
    return target(model=model, **backend_args) if isinstance(target, type) else target


def get_anchor(name: str) -> Any:
    """A published-results anchor (:class:`r1h.harness.core.anchor.Anchor`) by registered name."""
    return _entry("anchor", name).resolve()


def list_plugins(kind: str | None = None) -> list[dict[str, Any]]:
    """Every registered benchmark, reward, backend and anchor (or one kind) with version, source plugin and
    description."""
    plugins = _plugins()
    kinds = [kind] if kind else ["benchmark", "reward", "backend", "anchor"]
    rows: list[dict[str, Any]] = []
    for k in kinds:
        for entry in plugins.registry(k).entries():
            rows.append(entry.describe())
    return rows
