"""The plugin manager: built-ins first (DEFAULT_PLUGINS), then entry points of group ``r1h``, then check_pending.

Environment controls:
- ``R1H_LOAD_PLUGINS``: comma list of entry-point names to load; set but empty means none. Unset means all.
- ``R1H_DISABLE_PLUGINS``: comma list of plugin names (entry-point names or built-in module names) to block.
- ``R1H_TRACE_PLUGINS``: any non-empty value prints each hook call and each registration to stderr.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass, field
from importlib import metadata

import pluggy

from r1h.harness.core import hookspecs
from r1h.harness.core.errors import DuplicateNameError
from r1h.harness.core.registry import Registrar, Registry
from r1h.harness.system import settings

ENTRY_POINT_GROUP = "r1h"

DEFAULT_PLUGINS = (
    "r1h.plugins.rewards.math",
    "r1h.plugins.rewards.format",
    "r1h.plugins.rewards.countdown",
    "r1h.plugins.rewards.choice",
    "r1h.plugins.rewards.counting",
    "r1h.plugins.rewards.shaping",
    "r1h.plugins.backends.transformers",
    "r1h.plugins.backends.vllm",
    "r1h.plugins.backends.openai",
    "r1h.plugins.backends.gold",
    "r1h.benchmarks.aime24",
    "r1h.benchmarks.math500",
    "r1h.benchmarks.gpqa",
    "r1h.benchmarks.countdown",
    "r1h.benchmarks.superclevr",
    "r1h.plugins.anchors",
)

# hook name -> registry kind
KINDS = {
    "r1h_register_benchmarks": "benchmark",
    "r1h_register_rewards": "reward",
    "r1h_register_backends": "backend",
    "r1h_register_anchors": "anchor",
}


@dataclass
class Failure:
    plugin: str
    error: str


@dataclass
class Plugins:
    """A typed facade over the plugin manager and the four registries it fills."""

    pm: pluggy.PluginManager
    benchmarks: Registry = field(default_factory=lambda: Registry("benchmark"))
    rewards: Registry = field(default_factory=lambda: Registry("reward"))
    backends: Registry = field(default_factory=lambda: Registry("backend"))
    anchors: Registry = field(default_factory=lambda: Registry("anchor"))
    failures: list[Failure] = field(default_factory=list)

    def registry(self, kind: str) -> Registry:
        return {"benchmark": self.benchmarks, "reward": self.rewards, "backend": self.backends,
                "anchor": self.anchors}[kind]


def build(
    *,
    default_plugins: tuple[str, ...] = DEFAULT_PLUGINS,
    load_entry_points: bool = True,
    extra_plugins: tuple[object, ...] = (),
) -> Plugins:
    """Create a plugin manager, load plugins and fill the registries.

    A plugin that fails to import or to register is recorded in ``failures`` (``r1h list`` reports them, and an
    unknown-name error mentions them); a name registered by two plugins raises :class:`DuplicateNameError` naming both.
    """
    pm = pluggy.PluginManager("r1h")
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(pm=pm)
    disabled = set(settings.get("R1H_DISABLE_PLUGINS"))
    trace = settings.get("R1H_TRACE_PLUGINS")
    for name in disabled:
        pm.set_blocked(name)

    for module_name in default_plugins:
        if module_name in disabled:
            continue
        try:
            pm.register(importlib.import_module(module_name), name=module_name)
        except Exception as exc:
            plugins.failures.append(Failure(module_name, f"{type(exc).__name__}: {exc}"))

    for plugin in extra_plugins:
        name = getattr(plugin, "__name__", None) or type(plugin).__qualname__
        pm.register(plugin, name=name if pm.get_plugin(name) is None else f"{name}-{id(plugin)}")

    if load_entry_points:
        _load_entry_points(plugins, disabled)

    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        # A misspelled hook is an error of that plugin: report it, unregister it, keep the others.
        bad = exc.plugin
        name = pm.get_name(bad) or repr(bad)
        plugins.failures.append(Failure(name, f"unknown hook: {exc}"))
        pm.unregister(bad)

    if trace:
        pm.trace.root.setwriter(lambda msg: print(f"r1h-trace: {msg}", end="", file=sys.stderr))
        pm.enable_tracing()

    for hook_name, kind in KINDS.items():
        _run_registration(plugins, hook_name, plugins.registry(kind), trace)

    return plugins


def _load_entry_points(plugins: Plugins, disabled: set[str]) -> None:
    allowed = settings.get("R1H_LOAD_PLUGINS")
    try:
        eps = metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception as exc:  # pragma: no cover - broken metadata
        plugins.failures.append(Failure("<entry points>", str(exc)))
        return
    seen: set[str] = set()
    for ep in eps:
        if ep.name in seen or ep.name in disabled or (allowed is not None and ep.name not in allowed):
            continue
        seen.add(ep.name)
        try:
            plugin = ep.load()
            plugins.pm.register(plugin, name=ep.name)
        except Exception as exc:
            plugins.failures.append(Failure(ep.name, f"{type(exc).__name__}: {exc}"))


def _run_registration(plugins: Plugins, hook_name: str, registry: Registry, trace: bool) -> None:
    hook = getattr(plugins.pm.hook, hook_name)
    # Call each implementation on its own so every name is attributed to its plugin and one failure stays local.
    for impl in hook.get_hookimpls():  # registration order: built-ins first, then entry points
        registrar = Registrar(registry, impl.plugin_name)
        try:
            impl.function(**{arg: registrar for arg in impl.argnames})
        except DuplicateNameError:
            raise  # two plugins claiming one name is an error, never a silent shadowing
        except Exception as exc:
            plugins.failures.append(Failure(impl.plugin_name, f"{hook_name}: {type(exc).__name__}: {exc}"))
        if trace and registrar.added:
            print(f"r1h-trace: {impl.plugin_name} {hook_name}: {', '.join(registrar.added)}", file=sys.stderr)


_CURRENT: Plugins | None = None


def get_plugins() -> Plugins:
    """The process-wide plugins, built on first use."""
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = build()
    return _CURRENT


def reset() -> None:
    """Forget the process-wide plugins (tests, or after installing a plugin package)."""
    global _CURRENT
    _CURRENT = None
