"""``gold``: answers every problem with the benchmark's reference completion, to prove data + grading end to end.

On correct data every benchmark must score pass@1 = 100% with it (``r1h eval --backend gold``). It loads no model.
"""

from __future__ import annotations

from r1h.harness.backend import Backend
from r1h.harness.errors import RunError
from r1h.harness.hookspecs import hookimpl
from r1h.harness.types import Completion, GenerationConfig, GenerationRequest


class GoldBackend(Backend):
    """Returns ``request.reference`` (the benchmark's reference_completion) for every wanted sample."""

    name = "gold"
    description = "answers with each benchmark's reference completion (checks data + grading; expect 100%)"
    needs_reference = True

    @property
    def model_id(self) -> str:
        return "gold"

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        out: list[list[Completion]] = []
        for request in requests:
            if request.reference is None:
                raise RunError(
                    f"gold backend: request {request.id!r} has no reference completion (the runner fills "
                    "request.reference for backends with needs_reference)"
                )
            text = request.reference
            out.append([Completion(text=text, finish_reason="stop", num_tokens=len(text.split()))
                        for _ in request.sample_indices])
        return out


@hookimpl
def r1h_register_backends(register):
    register("gold", "r1h.plugins.backends.gold:GoldBackend", description=GoldBackend.description)
