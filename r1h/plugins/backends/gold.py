"""``gold``: answers every problem with the benchmark's reference completion, to prove data + grading end to end.

On correct data every benchmark must score pass@1 = 100% with it (``r1h eval --backend gold``). It loads no model.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from r1h.harness.core.backend import Backend
from r1h.harness.core.errors import RunError
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.options import NoOptions
from r1h.harness.core.types import Completion, Generated, GenerationConfig, GenerationRequest


class GoldBackend(Backend):
    """Returns ``request.reference`` (the benchmark's reference_completion) for every wanted sample."""

    name = "gold"
    description = "answers with each benchmark's reference completion (checks data + grading; expect 100%)"
    needs_reference = True
    Options = NoOptions  # nothing to tune: a --backend-arg here is a mistake, not a no-op

    @property
    def model_id(self) -> str:
        return "gold"

    def stream(self, requests: Iterable[GenerationRequest], config: GenerationConfig) -> Iterator[Generated]:
        for request in requests:
            for index, completion in zip(request.sample_indices, self._answer(request), strict=True):
                yield Generated(request, index, completion)

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        return [self._answer(request) for request in requests]

    @staticmethod
    def _answer(request: GenerationRequest) -> list[Completion]:
        if request.reference is None:
            raise RunError(
                f"gold backend: request {request.id!r} has no reference completion (the runner fills "
                "request.reference for backends with needs_reference)"
            )
        text = request.reference
        return [Completion(text=text, finish_reason="stop", num_tokens=len(text.split()))
                for _ in request.sample_indices]


@hookimpl
def r1h_register_backends(register):
    register("gold", "r1h.plugins.backends.gold:GoldBackend", description=GoldBackend.description)
