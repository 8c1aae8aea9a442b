"""The base class of inference backends, and the adapter that streams an old-style ``generate`` backend.

A backend is driven as one stream, the way vLLM's ``LLMEngine`` is (``add_request``/``step``, results as they
finish): the runner hands :meth:`Backend.stream` an iterator over *every* pending request of a benchmark, and the
backend yields each sample as it finishes, in any order. The backend pulls requests from the iterator only as fast as
it has room (its own in-flight window), so a 100k-sample run never holds all prompts or completions in memory.

Write ``stream`` for an engine that batches continuously (vLLM, an OpenAI-compatible server, transformers'
continuous batching). ``generate`` (a batch in, a batch out) still works: the base ``stream`` feeds it chunks of
``stream_chunk`` requests.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, ClassVar

from r1h.harness.core.errors import RunError
from r1h.harness.core.options import Options
from r1h.harness.core.types import Completion, Generated, GenerationConfig, GenerationRequest


class Backend:
    """Generates completions for requests.

    Constructed as ``Backend(model=..., **backend_args)`` where backend_args come from ``--backend-arg key=value``.
    Declare them as ``Options`` (a dataclass subclassing :class:`r1h.harness.core.options.Options`): the base
    ``__init__`` reads them into ``self.options`` (typed, defaults filled; an unknown key or bad value is a one-line
    error), and ``r1h list backends --wide`` shows them. A backend without ``Options`` gets the raw strings in
    ``self.backend_args``. ``model`` may be None for the backend's default. Heavy imports (torch, transformers,
    vllm, httpx) happen inside methods, never at module import: ``r1h list`` imports the module for ``Options``.
    """

    name: str = ""
    description: str = ""
    needs_reference: bool = False  # True: the runner fills ``request.reference`` with the benchmark's gold answer
    stream_chunk: int = 32  # requests per ``generate`` call when the base ``stream`` adapts a batch backend
    Options: ClassVar[type[Options] | None] = None  # the ``--backend-arg``s it takes; None: raw strings
    # True: two ``stream`` calls may run at once from two threads (an async engine or a server); --thinking-budget
    # then feeds each answer-phase request to the engine as its phase-1 sample returns (eval/budget.py)
    concurrent_streams: bool = False

    def __init__(self, model: str | None = None, **backend_args: Any):
        self.model = model
        self.backend_args = backend_args
        self.options = (type(self).Options.parse(backend_args, owner=f"backend {self.name!r}")
                        if type(self).Options is not None else None)

    @property
    def model_id(self) -> str:
        """A name for results.json and the default run directory."""
        return self.model or "default"

    def stream(self, requests: Iterable[GenerationRequest], config: GenerationConfig) -> Iterator[Generated]:
        """Yield one :class:`Generated` per wanted sample of every request, each as soon as it is finished.

        ``requests`` may be a long lazy iterator: pull from it only as the engine has room. Order is free. Honour
        ``request.seeds`` where the engine can (a resumed run then regenerates the same text). The default
        implementation adapts :meth:`generate`, ``stream_chunk`` requests at a time.
        """
        yield from stream_from_generate(self, requests, config, self.stream_chunk)

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        """Return, for each request, one Completion per entry of ``request.sample_indices``, in that order.

        ``config.n`` is informational; the number wanted is ``len(request.sample_indices)``, and ``request.seeds``
        gives one seed per wanted sample (honour it where the backend can, so a resumed run reproduces).
        A backend that overrides :meth:`stream` need not implement this.
        """
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        """The engine settings that can change scores (engine and version, dtype, device, parallelism, the sampling
        parameters actually sent ...), recorded in run.json and results.json. JSON-serialisable; cheap."""
        return {"backend": self.name}

    def close(self) -> None:
        """Release models, servers and pools."""


def stream_from_generate(
    backend: Any, requests: Iterable[GenerationRequest], config: GenerationConfig, chunk: int = 32
) -> Iterator[Generated]:
    """Stream a batch backend: ``generate`` on chunks of ``chunk`` requests, each chunk yielded as it returns."""
    it = iter(requests)
    name = getattr(backend, "name", type(backend).__name__)
    while batch := list(islice(it, max(1, int(chunk)))):
        outputs = backend.generate(batch, config)
        if len(outputs) != len(batch):
            raise RunError(f"backend {name!r} returned {len(outputs)} results for {len(batch)} requests")
        for request, completions in zip(batch, outputs, strict=True):
            if len(completions) != len(request.sample_indices):
                raise RunError(
                    f"backend {name!r} returned {len(completions)} completions for {len(request.sample_indices)} "
                    f"wanted samples of problem {request.id!r}"
                )
            for index, completion in zip(request.sample_indices, completions, strict=True):
                yield Generated(request, index, completion)


def backend_stream(backend: Any, requests: Iterable[GenerationRequest], config: GenerationConfig) -> Iterator[Generated]:
    """The one way the core drives a backend: its ``stream`` if it has one (a :class:`Backend` subclass always
    does), else ``generate`` adapted (a duck-typed third-party backend with only ``generate``)."""
    stream = getattr(backend, "stream", None)
    if callable(stream):
        return iter(stream(requests, config))
    return stream_from_generate(backend, requests, config, getattr(backend, "stream_chunk", 32))


def describe_backend(backend: Any) -> dict[str, Any]:
    """The one way the core records a backend: its :meth:`Backend.describe` as plain JSON (``{}`` for a duck-typed
    backend without one). Never raises: a failing ``describe`` is recorded as ``describe_error``, not a lost run."""
    try:
        described = backend.describe() if callable(getattr(backend, "describe", None)) else {}
        return json.loads(json.dumps(described, default=str))
    except Exception as exc:
        return {"backend": getattr(backend, "name", ""), "describe_error": f"{type(exc).__name__}: {exc}"}
