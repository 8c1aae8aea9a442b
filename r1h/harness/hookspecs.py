"""The plugin contract. Every hook takes a ``register`` callback (a :class:`~r1h.harness.registry.Registrar`)."""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("r1h")
hookimpl = pluggy.HookimplMarker("r1h")


@hookspec
def r1h_register_benchmarks(register):
    """Add Benchmark classes (or lazy ``"module:attr"`` paths) by name: ``register("aime24", "pkg.mod:Aime24")``."""


@hookspec
def r1h_register_rewards(register):
    """Add reward classes by name. Instances follow TRL's reward signature ``f(completions, prompts=None, **columns)``."""


@hookspec
def r1h_register_backends(register):
    """Add inference backend classes by name; a backend implements ``generate(requests, config)``."""
