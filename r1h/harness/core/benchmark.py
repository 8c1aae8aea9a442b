"""The base class of benchmark plugins."""

from __future__ import annotations

from typing import Any

from r1h.harness.core.types import GenerationRequest, Message, Sample


class Benchmark:
    """A benchmark: where its data comes from, how a problem is asked, which reward grades it.

    - ``version``: bump it whenever the prompt or the data changes (runs of different versions are not compared).
    - ``default_samples``: the R1-protocol n.
    - ``reward``: the registered name of the reward that grades it.
    - ``default_source``: the hub dataset id used when no ``--data`` is given (``None`` = built-in data).
    - ``required_columns``: the columns a data source must have (named in the error when one is missing).
    - ``generation_overrides``: sampling settings the benchmark fixes by protocol (e.g. R1-V: greedy, 256 tokens).
    - ``answer_cue``: what ``--thinking-budget`` writes after a ``</think>`` it forces, so the model's next tokens
      are the answer in the form the reward reads (s1's "Final Answer:" by default; ``--answer-cue`` overrides it).
    """

    name: str = ""
    version: str = "1"
    description: str = ""
    default_samples: int = 1
    reward: str = ""
    default_source: str | None = None
    required_columns: tuple[str, ...] = ()
    generation_overrides: dict[str, Any] = {}
    answer_cue: str = "\n\nFinal Answer:"

    def load(self, source: str | None = None, limit: int | None = None) -> list[Sample]:
        """Load the problems from ``source`` (hub id, local dataset clone, or a .jsonl/.json/.parquet/.csv file)."""
        raise NotImplementedError

    def prompt(self, sample: Sample) -> list[Message]:
        """The chat for one problem. A final assistant message is a prefill the model continues."""
        raise NotImplementedError

    def reference_completion(self, sample: Sample) -> str:
        """A completion that the benchmark's reward must score 1.0 (the gold backend answers with it)."""
        raise NotImplementedError

    # -- provided -------------------------------------------------------------------------------------------------
    def request(self, sample: Sample, sample_indices: list[int], seeds: list[int]) -> GenerationRequest:
        messages = self.prompt(sample)
        return GenerationRequest(
            id=sample.id,
            messages=messages,
            sample_indices=list(sample_indices),
            seeds=list(seeds),
            images=list(sample.images),
            continue_final_message=bool(messages) and messages[-1].get("role") == "assistant",
        )

    def __repr__(self) -> str:
        return f"<benchmark {self.name} v{self.version}>"
