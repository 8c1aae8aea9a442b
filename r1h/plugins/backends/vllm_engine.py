"""Streaming through one vLLM engine: render chat prompts, add requests, step, yield each finished sample.

Used in-process (``data_parallel_size`` 1) and inside every data-parallel worker (``vllm_dp.py``). Upstream names
(vllm-project/vllm, read for this module):

- ``vllm/entrypoints/llm.py``: ``LLM.__init__`` builds ``self.llm_engine = LLMEngine.from_engine_args(...)``;
  ``LLM._run_engine`` is the loop we reproduce without its all-at-once barrier (``while
  self.llm_engine.has_unfinished_requests(): for output in self.llm_engine.step(): if output.finished: ...``);
  ``LLM.chat`` renders each conversation with the tokenizer's chat template (``apply_hf_chat_template(...,
  add_generation_prompt=..., continue_final_message=...)``) into a ``TextPrompt`` ``{"prompt": text,
  "multi_modal_data": {"image": ...}}``; ``LLM.get_default_sampling_params`` returns the checkpoint's
  generation-config defaults (``model_config.get_diff_sampling_param()``).
- ``vllm/v1/engine/llm_engine.py``: ``LLMEngine.add_request(request_id: str, prompt, params)``, ``step() ->
  list[RequestOutput]``, ``has_unfinished_requests()``, ``abort_request(request_ids)``.
- ``vllm/sampling_params.py``: ``SamplingParams(n, temperature, top_p, top_k, min_p, repetition_penalty, seed, stop,
  max_tokens, output_kind)``; ``RequestOutputKind.FINAL_ONLY`` (what ``LLM`` sets) so ``step`` does not build
  cumulative outputs for every running sequence.

We render the prompt ourselves rather than calling ``LLM.chat`` because ``chat`` runs the engine to completion for
the whole batch; rendering with ``tokenizer.apply_chat_template`` is what ``chat`` does for HF tokenizers.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

NEUTRAL_KEYS = ("top_k", "min_p", "repetition_penalty")


@dataclass
class WorkItem:
    """One engine request: a chat (OpenAI-style messages, images as paths/PIL), the prefill flag and the
    ``SamplingParams`` keyword arguments (without the model-policy fields when ``model_defaults`` is true)."""

    key: Any
    messages: list[dict[str, Any]]
    images: list[Any] = field(default_factory=list)
    continue_final_message: bool = False
    params: dict[str, Any] = field(default_factory=dict)
    model_defaults: bool = False


def hf_messages(messages: list[dict[str, Any]], n_images: int) -> list[dict[str, Any]]:
    """Messages for ``apply_chat_template``: ``{"type": "image"}`` parts stay (HF multimodal templates render them as
    the model's image placeholder); with images and no placeholder, one per image goes before the first user text."""
    out = [dict(m) for m in messages]
    has_placeholder = any(
        isinstance(m.get("content"), list) and any(isinstance(p, dict) and p.get("type") == "image" for p in m["content"])
        for m in out
    )
    if n_images and not has_placeholder:
        for m in out:
            if m.get("role") == "user":
                text = m.get("content", "")
                parts = [{"type": "text", "text": text}] if isinstance(text, str) else list(text)
                m["content"] = [{"type": "image"} for _ in range(n_images)] + parts
                break
    return out


def load_image(image: Any) -> Any:
    """A PIL image from a path (or a PIL image as is), for ``multi_modal_data``."""
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        import io
        import os

        from PIL import Image

        if isinstance(image, bytes):
            return Image.open(io.BytesIO(image)).convert("RGB")
        from r1h.harness.errors import ConfigError

        try:
            with Image.open(os.fspath(image)) as im:
                return im.convert("RGB")
        except OSError as exc:
            raise ConfigError(f"image {image}: cannot read it ({exc})") from None
    return image


def render_prompt(tokenizer: Any, item: WorkItem) -> dict[str, Any]:
    """A vLLM ``TextPrompt`` for one chat, rendered the way ``LLM.chat`` does for HF tokenizers."""
    cont = bool(item.continue_final_message)
    text = tokenizer.apply_chat_template(
        hf_messages(item.messages, len(item.images)), tokenize=False,
        add_generation_prompt=not cont, continue_final_message=cont,
    )
    prompt: dict[str, Any] = {"prompt": text}
    if item.images:
        prompt["multi_modal_data"] = {"image": [load_image(im) for im in item.images]}
    return prompt


def build_params(vllm: Any, item: WorkItem, defaults: Any | None) -> Any:
    """``SamplingParams`` for one item; with ``model_defaults`` the checkpoint's top-k/min-p/repetition penalty
    (``LLM.get_default_sampling_params()``) fill the fields r1h leaves to the model."""
    kwargs = dict(item.params)
    if item.model_defaults and defaults is not None:
        for key in NEUTRAL_KEYS:
            if hasattr(defaults, key):
                kwargs[key] = getattr(defaults, key)
    kind = final_only(vllm)
    if kind is not None:
        kwargs.setdefault("output_kind", kind)
    return vllm.SamplingParams(**kwargs)


def final_only(vllm: Any) -> Any:
    """``RequestOutputKind.FINAL_ONLY`` where this vLLM has it (vllm/sampling_params.py), else None."""
    import importlib

    try:
        module = importlib.import_module(f"{vllm.__name__}.sampling_params")
    except ImportError:
        return None
    return getattr(getattr(module, "RequestOutputKind", None), "FINAL_ONLY", None)


def engine_window(llm: Any, default: int = 2048) -> int:
    """In-flight requests to keep in one engine: twice its ``max_num_seqs`` (so a finished sequence's slot is refilled
    at the next step from the engine's own queue), or ``default`` where the config cannot be read."""
    try:
        seqs = int(llm.llm_engine.vllm_config.scheduler_config.max_num_seqs)
    except (AttributeError, TypeError, ValueError):
        return default
    return max(2, 2 * seqs)


class EngineStream:
    """One engine, driven request by request. ``pull(block)`` returns the next :class:`WorkItem`, ``None`` when
    nothing is ready yet (only asked with ``block=False`` while requests are in flight), and raises StopIteration
    when the source is exhausted. ``run`` yields ``(key, RequestOutput)`` as each finishes."""

    def __init__(self, llm: Any, vllm: Any, window: int):
        self.llm = llm
        self.vllm = vllm
        self.engine = llm.llm_engine
        self.window = max(1, int(window))
        self.tokenizer = llm.get_tokenizer()
        self._defaults: Any = None
        self._defaults_loaded = False
        self._ids = itertools.count()

    def defaults(self) -> Any:
        if not self._defaults_loaded:
            self._defaults = self.llm.get_default_sampling_params()
            self._defaults_loaded = True
        return self._defaults

    def add(self, item: WorkItem) -> str:
        request_id = f"r1h-{next(self._ids)}"
        defaults = self.defaults() if item.model_defaults else None
        self.engine.add_request(request_id, render_prompt(self.tokenizer, item), build_params(self.vllm, item, defaults))
        return request_id

    def run(self, pull: Callable[[bool], WorkItem | None]) -> Iterator[tuple[Any, Any]]:
        pending: dict[str, Any] = {}
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.window:
                    try:
                        item = pull(not pending)
                    except StopIteration:
                        exhausted = True
                        break
                    if item is None:
                        break
                    pending[self.add(item)] = item.key
                if not pending:
                    if exhausted:
                        return
                    continue
                for output in self.engine.step():
                    if getattr(output, "finished", True) and output.request_id in pending:
                        yield pending.pop(output.request_id), output
        finally:
            if pending:  # closed early (an error, Ctrl-C): free the engine for the next stream
                try:
                    self.engine.abort_request(list(pending))
                except Exception:  # noqa: S110 - best effort while unwinding
                    pass


def output_fields(output: Any) -> tuple[str, str, int]:
    """(text, finish_reason, tokens) of a ``RequestOutput``'s first ``CompletionOutput``."""
    first = output.outputs[0]
    reason = "length" if getattr(first, "finish_reason", None) == "length" else "stop"
    return first.text or "", reason, len(getattr(first, "token_ids", None) or ())
