"""Data shapes shared by the core, the plugins and the trainers. Standard library only."""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Any

Message = dict[str, Any]  # {"role": ..., "content": str | list[parts]}


@dataclass
class Sample:
    """One benchmark problem.

    ``id`` is stable across runs (it keys resume and paired comparisons). ``columns`` are the gold columns that the
    benchmark's reward receives as keyword lists (e.g. ``{"answer": "25"}``). ``raw`` is the row as loaded.
    ``images`` are file paths (or PIL images) for multimodal benchmarks.
    """

    id: str
    columns: dict[str, Any]
    raw: dict[str, Any] = field(default_factory=dict)
    images: list[Any] = field(default_factory=list)


@dataclass
class GenerationConfig:
    """Sampling settings. ``n`` samples per problem; ``max_tokens`` new tokens per sample."""

    n: int = 1
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 32768
    seed: int = 0
    stop: list[str] = field(default_factory=list)
    # One sampling policy for every backend. "neutral" (the default): the backend sends explicit neutral values for
    # everything but temperature and top-p (repetition_penalty 1.0, no top-k, no min-p), so transformers, offline vLLM
    # and ``vllm serve`` sample the same distribution. "model": the checkpoint's generation_config.json fills the
    # fields below (``--generation-config model``); temperature, top-p and max_tokens stay as given.
    policy: str = "neutral"
    top_k: int | None = None  # None or 0: disabled
    min_p: float = 0.0
    repetition_penalty: float = 1.0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class GenerationRequest:
    """What a backend is asked to generate for one problem.

    ``messages`` is a chat; when ``continue_final_message`` is true the last message is an assistant prefill that the
    model continues (mini-r1's ``<think>`` prefill). ``sample_indices`` lists which of the problem's n samples are
    wanted (resume asks only for the missing ones); ``seeds`` holds one seed per wanted sample.
    """

    id: str
    messages: list[Message]
    sample_indices: list[int] = field(default_factory=lambda: [0])
    seeds: list[int] = field(default_factory=lambda: [0])
    images: list[Any] = field(default_factory=list)
    continue_final_message: bool = False
    reference: str | None = None  # filled by the runner for backends with ``needs_reference`` (the gold backend)

    def wanted(self) -> int:
        """How many samples are wanted; a seed count that does not match is a ConfigError (a backend's input check)."""
        if len(self.seeds) != len(self.sample_indices):
            from r1h.harness.core.errors import ConfigError

            raise ConfigError(f"request {self.id}: {len(self.seeds)} seeds for {len(self.sample_indices)} samples")
        return len(self.sample_indices)


@dataclass
class Completion:
    """One generated sample. ``finish_reason`` is "stop" or "length" (truncated)."""

    text: str
    finish_reason: str = "stop"
    num_tokens: int = 0


@dataclass
class Generated:
    """One finished sample, as a streaming backend yields it: the request it answers, which of the request's wanted
    samples (``sample_index`` is one of ``request.sample_indices``) and the completion."""

    request: GenerationRequest
    sample_index: int
    completion: Completion

    @property
    def seed(self) -> int:
        return int(self.request.seeds[self.request.sample_indices.index(self.sample_index)])


@dataclass
class GradeResult:
    """The verdict on one completion, as the batch grader returns it."""

    score: float | None
    extracted: str | None = None
    timed_out: bool = False
    error: str | None = None


def sample_seed(base_seed: int, problem_id: str, sample_index: int) -> int:
    """A per-sample seed that does not depend on batch composition or order (so resume reproduces a run)."""
    digest = hashlib.sha256(f"{base_seed}:{problem_id}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def completion_text(completion: Any) -> str:
    """Text of a completion given as a string or as TRL's conversational list of messages."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return content_text(completion.get("content", ""))
    if isinstance(completion, (list, tuple)):
        return "".join(
            content_text(m.get("content", "")) if isinstance(m, dict) else str(m) for m in completion
        )
    return "" if completion is None else str(completion)


def content_text(content: Any) -> str:
    """Text of a message content that is a string or a list of typed parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type", "text") == "text")
    return "" if content is None else str(content)


def prompt_tail(prompt: Any) -> str:
    """The text the model continues from: the last message's text for a chat prompt, the string itself otherwise."""
    if isinstance(prompt, str):
        return prompt
    if isinstance(prompt, (list, tuple)) and prompt:
        last = prompt[-1]
        if isinstance(last, dict):
            return content_text(last.get("content", ""))
    return ""
