"""The base class of inference backends."""

from __future__ import annotations

from typing import Any

from .types import Completion, GenerationConfig, GenerationRequest


class Backend:
    """Generates completions for batches of requests.

    Constructed as ``Backend(model=..., **backend_args)`` where backend_args come from ``--backend-arg key=value``
    (strings; convert them yourself). ``model`` may be None for the backend's default. Heavy imports (torch,
    transformers, vllm, httpx) happen inside methods, never at module import.
    """

    name: str = ""
    description: str = ""
    needs_reference: bool = False  # True: the runner fills ``request.reference`` with the benchmark's gold answer

    def __init__(self, model: str | None = None, **backend_args: Any):
        self.model = model
        self.backend_args = backend_args

    @property
    def model_id(self) -> str:
        """A name for results.json and the default run directory."""
        return self.model or "default"

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        """Return, for each request, one Completion per entry of ``request.sample_indices``, in that order.

        ``config.n`` is informational; the number wanted is ``len(request.sample_indices)``, and ``request.seeds``
        gives one seed per wanted sample (honour it where the backend can, so a resumed run reproduces).
        """
        raise NotImplementedError

    def close(self) -> None:
        """Release models, servers and pools."""
