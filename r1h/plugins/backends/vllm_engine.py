"""Streaming through vLLM's ``AsyncLLM``: every sample one request, each yielded the moment it finishes.

``AsyncLLM`` is vLLM's engine built for streaming, and the one ``vllm serve`` runs; with ``data_parallel_size=N`` it
starts N engine cores behind one client, with vLLM's own load balancer and coordinator (what ``vllm serve
--data-parallel-size N`` does), so data parallelism needs no processes of r1h's own. Upstream names (vLLM 0.32,
read for this module):

- ``vllm/v1/engine/async_llm.py``: ``AsyncLLM.from_engine_args(AsyncEngineArgs)``; ``generate(prompt, params,
  request_id)`` is an async generator per request that aborts the request when it is cancelled (its ``except
  (asyncio.CancelledError, GeneratorExit)`` branch) and raises ``EngineDeadError`` when an engine core dies;
  ``renderer``; ``shutdown()``. ``generate``'s docstring: passing a raw prompt is deprecated; pass the output of
  ``Renderer.render_chat()`` / ``render_cmpl()``.
- ``vllm/renderers/base.py``: ``render_chat(conversations, ChatParams, TokenizeParams)`` (``render_chat_async``
  here) renders and tokenizes a conversation with the model's chat template, as ``LLM.chat`` does
  (``vllm/entrypoints/common/offline.py``, ``_preprocess_chat``: ``add_special_tokens=False``, the template emits
  BOS). Images go in as OpenAI-style ``{"type": "image_pil", "image_pil": PIL.Image}`` parts.
- ``vllm/entrypoints/llm.py``: ``LLM.get_default_sampling_params`` = ``SamplingParams.from_optional(
  **model_config.get_diff_sampling_param())`` (the checkpoint's generation_config.json), mirrored in
  :meth:`EngineStream.defaults`.
- ``vllm/sampling_params.py``: ``RequestOutputKind.FINAL_ONLY`` (what ``LLM`` sets), so no partial output is built.

The engine lives on an asyncio loop in a daemon thread; the caller's thread pulls work lazily (up to ``window``
requests in flight), hands each to the loop with ``run_coroutine_threadsafe`` and takes finished ones from a queue.
Closing the stream early (an error, Ctrl-C) cancels every request in flight, which aborts it in the engine.
"""

from __future__ import annotations

import asyncio
import itertools
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from r1h.harness.core.errors import ConfigError, RunError
from r1h.harness.core.sampling import NEUTRAL_KEYS

POLL_S = 0.5  # how often a waiting caller looks at the engine's health
CALL_TIMEOUT_S = 3600.0  # engine start (a cold torch.compile on CPU takes minutes) and shutdown


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


def load_image(image: Any) -> Any:
    """A PIL image from a path or bytes (a PIL image as is)."""
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        import io
        import os

        from PIL import Image

        if isinstance(image, bytes):
            return Image.open(io.BytesIO(image)).convert("RGB")
        try:
            with Image.open(os.fspath(image)) as im:
                return im.convert("RGB")
        except OSError as exc:
            raise ConfigError(f"image {image}: cannot read it ({exc})") from None
    return image


def vllm_messages(messages: list[dict[str, Any]], images: list[Any]) -> list[dict[str, Any]]:
    """OpenAI-style messages for vLLM's renderer: each ``{"type": "image"}`` placeholder takes the next image as an
    ``image_pil`` part; images without placeholders go before the first user text, one part each."""
    pils = [load_image(im) for im in images]
    out: list[dict[str, Any]] = []
    taken = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, list):
            parts = []
            for part in content:
                if isinstance(part, dict) and part.get("type") == "image":
                    if taken < len(pils):
                        parts.append({"type": "image_pil", "image_pil": pils[taken]})
                        taken += 1
                else:
                    parts.append(part)
            m = {**m, "content": parts}
        out.append(m)
    if taken == 0 and pils:
        for i, m in enumerate(out):
            if m.get("role") == "user":
                text = m.get("content", "")
                parts = [{"type": "text", "text": text}] if isinstance(text, str) else list(text)
                out[i] = {**m, "content": [{"type": "image_pil", "image_pil": im} for im in pils] + parts}
                break
    return out


def final_only(vllm: Any) -> Any:
    """``RequestOutputKind.FINAL_ONLY`` where this vLLM has it (vllm/sampling_params.py), else None."""
    import importlib

    try:
        module = importlib.import_module(f"{vllm.__name__}.sampling_params")
    except ImportError:
        return None
    return getattr(getattr(module, "RequestOutputKind", None), "FINAL_ONLY", None)


def output_fields(output: Any) -> tuple[str, str, int]:
    """(text, finish_reason, tokens) of a ``RequestOutput``'s first ``CompletionOutput``."""
    first = output.outputs[0]
    reason = "length" if getattr(first, "finish_reason", None) == "length" else "stop"
    return first.text or "", reason, len(getattr(first, "token_ids", None) or ())


class EngineStream:
    """One ``AsyncLLM`` (one or N data-parallel engine cores behind one client), driven from a plain iterator."""

    def __init__(self, vllm: Any, engine_kwargs: dict[str, Any], window: int | None = None):
        from vllm.renderers import ChatParams  # noqa: F401 - fail now, not per request, on a vLLM without renderers

        self.vllm = vllm
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="r1h-vllm-loop", daemon=True)
        self._thread.start()
        self._ids = itertools.count()
        self._defaults: Any = None
        self._defaults_loaded = False
        self._final = final_only(vllm)
        try:
            self.engine = self._call(self._start(engine_kwargs))
        except BaseException:
            self._stop_loop()
            raise
        dp = int(engine_kwargs.get("data_parallel_size", 1) or 1)
        self.window = max(1, int(window)) if window else engine_window(self.engine, dp)

    # ----- the loop thread -----

    def _call(self, coro: Any, timeout: float = CALL_TIMEOUT_S) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    async def _start(self, engine_kwargs: dict[str, Any]) -> Any:
        args = self.vllm.AsyncEngineArgs(**engine_kwargs)
        return self.vllm.AsyncLLMEngine.from_engine_args(args)

    def _chat_params(self, item: WorkItem) -> tuple[Any, Any]:
        from vllm.renderers import ChatParams

        cont = bool(item.continue_final_message)
        chat = ChatParams(chat_template_kwargs={"add_generation_prompt": not cont, "continue_final_message": cont})
        tokenize = self.engine.renderer.default_chat_tok_params.with_kwargs(add_special_tokens=False)
        return chat, tokenize

    async def _render(self, item: WorkItem) -> Any:
        chat, tokenize = self._chat_params(item)
        _, (prompt,) = await self.engine.renderer.render_chat_async(
            [vllm_messages(item.messages, item.images)], chat, tokenize)
        return prompt

    async def _one(self, request_id: str, item: WorkItem, params: Any, results: queue.Queue) -> None:
        try:
            prompt = await self._render(item)
            final = None
            async for output in self.engine.generate(prompt, params, request_id):
                final = output
            results.put((request_id, final, None))
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            results.put((request_id, None, exc))

    # ----- the caller's side -----

    def prompt_token_ids(self, item: WorkItem) -> list[int]:
        """The prompt tokens the engine would see for ``item`` (vllm/inputs/engine.py: ``prompt_token_ids``)."""
        return list(self._call(self._render(item), timeout=600)["prompt_token_ids"])

    def defaults(self) -> Any:
        """The checkpoint's sampling defaults, as ``LLM.get_default_sampling_params`` reads them."""
        if not self._defaults_loaded:
            diff = self.engine.model_config.get_diff_sampling_param()
            self._defaults = self.vllm.SamplingParams.from_optional(**diff) if diff else self.vllm.SamplingParams()
            self._defaults_loaded = True
        return self._defaults

    def params(self, item: WorkItem) -> Any:
        """``SamplingParams`` for one item; with ``model_defaults`` the checkpoint's top-k/min-p/repetition penalty
        fill the fields r1h leaves to the model."""
        kwargs = dict(item.params)
        if item.model_defaults:
            defaults = self.defaults()
            kwargs.update({k: getattr(defaults, k) for k in NEUTRAL_KEYS if hasattr(defaults, k)})
        if self._final is not None:
            kwargs.setdefault("output_kind", self._final)
        return self.vllm.SamplingParams(**kwargs)

    def run(self, items: Iterator[WorkItem]) -> Iterator[tuple[Any, str, str, int]]:
        """Yield ``(key, text, finish_reason, tokens)`` per finished item, pulling items only as the window allows."""
        results: queue.Queue = queue.Queue()
        pending: dict[str, tuple[Any, Any]] = {}  # request id -> (key, future)
        exhausted = False
        try:
            while True:
                while not exhausted and len(pending) < self.window:
                    item = next(items, None)
                    if item is None:
                        exhausted = True
                        break
                    request_id = f"r1h-{next(self._ids)}"
                    coro = self._one(request_id, item, self.params(item), results)
                    pending[request_id] = (item.key, asyncio.run_coroutine_threadsafe(coro, self._loop))
                if not pending:
                    return
                try:
                    request_id, output, error = results.get(timeout=POLL_S)
                except queue.Empty:
                    self._check_alive()
                    continue
                key, _ = pending.pop(request_id)
                if error is not None:
                    raise self._as_run_error(error) from error
                yield (key, *output_fields(output))
        finally:
            for _, future in pending.values():  # closed early: cancelling generate() aborts the request
                future.cancel()

    def _check_alive(self) -> None:
        if not self._thread.is_alive():
            raise RunError("vLLM's event loop stopped unexpectedly")
        if getattr(self.engine, "errored", False):
            raise self._as_run_error(getattr(self.engine, "dead_error", None))

    def _as_run_error(self, error: BaseException | None) -> RunError:
        from r1h.plugins.backends.vllm_platform import log_path, root_cause

        name = type(error).__name__ if error is not None else "EngineDeadError"
        if name == "EngineDeadError" or getattr(self.engine, "errored", False):
            cause = root_cause() or "see vLLM's log for the cause"
            where = f"; vLLM's log: {log_path()}" if log_path() else ""
            return RunError(f"vLLM's engine died: {cause} (finished samples are kept: rerun the same command to "
                            f"resume{where})")
        text = " ".join(str(error).split())[:300]
        return RunError(f"vLLM refused a request: {name}: {text}")

    def close(self) -> None:
        engine = getattr(self, "engine", None)
        if engine is not None and self._thread.is_alive():
            try:
                self._call(_shutdown(engine), timeout=60)
            except Exception:  # noqa: BLE001, S110 - best effort while closing
                pass
        self.engine = None
        self._stop_loop()

    def _stop_loop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)


async def _shutdown(engine: Any) -> None:
    engine.shutdown()


def engine_window(engine: Any, dp: int = 1, default: int = 2048) -> int:
    """Requests to keep in flight: twice the engines' ``max_num_seqs`` (a finished sequence's slot is refilled at the
    next step from the engine's own queue), or ``default`` where the config cannot be read."""
    try:
        seqs = int(engine.vllm_config.scheduler_config.max_num_seqs)
    except (AttributeError, TypeError, ValueError):
        return default
    return max(2, 2 * seqs * max(1, dp))
