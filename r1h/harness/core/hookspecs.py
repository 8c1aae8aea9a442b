"""The plugin contract. Every hook takes a ``register`` callback (a :class:`~r1h.harness.core.registry.Registrar`)."""

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
    """Add inference backend classes (``r1h.Backend`` subclasses, or lazy ``"module:attr"`` paths) by name.

    A backend implements one of two methods; the core drives either through ``backend_stream``:

    - ``stream(requests, config) -> Iterator[Generated]`` (write this one): ``requests`` is a lazy iterator over
      every pending problem of a benchmark; pull from it as the engine has room and yield one ``Generated(request,
      sample_index, completion)`` per wanted sample as soon as it finishes, in any order. The runner grades and
      saves each one while the rest generate.
    - ``generate(requests, config) -> list[list[Completion]]`` (the older batch form, still supported): one list
      per request, one completion per ``request.sample_indices`` entry. The core feeds it chunks of
      ``stream_chunk`` (32) requests, so the engine waits for the slowest sample of every chunk.

    Either way honour ``request.seeds`` where the engine can, and describe the engine in ``describe()``.
    """


@hookspec
def r1h_register_anchors(register):
    """Add published results (:class:`r1h.harness.core.anchor.Anchor` objects, or lazy ``"module:attr"`` paths) by name,
    for ``r1h check RUN --anchor NAME``: ``register("r1-paper-distill-qwen-1.5b", Anchor(...))``. Each anchor names
    its source and the settings it was measured with."""
