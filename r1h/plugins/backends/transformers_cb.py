"""Continuous batching for the transformers backend: transformers 5.x's own ``ContinuousBatchingManager``.

Read against transformers 5.24 (``generation/continuous_batching/continuous_api.py``): ``model.init_continuous_batching
(generation_config, continuous_batching_config)`` builds the manager (paged KV cache, FIFO scheduler, a background
generation thread); ``warmup()``, ``start()``, ``add_request(input_ids, request_id, max_new_tokens, eos_token_id)``,
``get_result(timeout)`` (a ``GenerationOutput`` with ``generated_tokens``, ``status`` and ``error``), ``stop()`` and
``destroy()``. A finished sequence's slot is refilled at the next step, so a sample that stops early never leaves the
batch idle, unlike the static path. r1h keeps at most ``inflight`` rows in the manager and pulls requests lazily.

What it cannot do (so ``TransformersBackend`` falls back to static batches, or records it):
- **Per-sample seeds.** Its sampler is one ``torch.multinomial`` over the whole batch with the global generator
  (``model_runner.py`` ``_sample``; seeded once by ``ContinuousBatchingConfig.seed``), so a sample's draws depend on
  which others share its steps: a resumed run does not regenerate the same text. ``describe()`` says
  ``per_sample_seeds: false``; ``--backend-arg batching=static`` keeps them.
- **Sequence-reading logits processors** (repetition penalty, n-gram blocking, minimum length): they see only the last
  token there (``_forward_process_and_sample`` passes one input id per row), and unsupported ones are dropped.
- **Stop strings** and **images**: no such inputs in ``add_request``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from r1h.harness.errors import RunError

RESULT_POLL_S = 1.0  # how long one get_result waits before checking the generation thread is alive
CPU_CACHE_BYTES = 2 << 30  # KV cache on CPU, where transformers' GPU-memory sizing does not apply


@dataclass
class CBRow:
    """One row for the manager: a request's prompt ids and which of its wanted samples it fills."""

    key: str
    request: Any
    slots: list[int]
    input_ids: list[int]
    max_new: int


def cpu_cache_config(model: Any, inflight: int, max_new: int, page_size: int = 256) -> dict[str, int]:
    """``num_blocks`` and ``max_batch_tokens`` for a CPU run: room for ``inflight`` rows of up to 1024 prompt tokens
    plus ``max_new``, within :data:`CPU_CACHE_BYTES`."""
    text = model.config.get_text_config()
    layers = int(getattr(text, "num_hidden_layers", 1))
    heads = int(getattr(text, "num_key_value_heads", None) or getattr(text, "num_attention_heads", 1))
    head_dim = int(getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads)
    per_token = 2 * layers * heads * head_dim * model.dtype.itemsize
    wanted = inflight * math.ceil((1024 + max_new) / page_size)
    affordable = max(4, CPU_CACHE_BYTES // max(1, per_token * page_size))
    return {"num_blocks": max(4, min(wanted, affordable)), "max_batch_tokens": 1024}


def stream_rows(model: Any, rows: Iterator[CBRow], gen_config: Any, eos: list[int], inflight: int, seed: int,
                max_new: int, on_finish) -> Iterator[tuple[CBRow, list[int], bool]]:
    """Feed ``rows`` to a continuous batching manager, at most ``inflight`` at a time, and yield ``(row, tokens,
    hit_eos)`` for each as it finishes. ``tokens`` exclude the end-of-sequence token."""
    from transformers import ContinuousBatchingConfig

    cb_kwargs: dict[str, Any] = {"seed": int(seed) & 0x7FFFFFFF, "max_queue_size": 0}
    if model.device.type == "cpu":
        cb_kwargs.update(cpu_cache_config(model, inflight, max_new))
    else:
        cb_kwargs["max_requests_per_batch"] = inflight
    manager = model.init_continuous_batching(generation_config=gen_config,
                                             continuous_batching_config=ContinuousBatchingConfig(**cb_kwargs))
    in_flight: dict[str, CBRow] = {}
    eos_set = set(eos)
    try:
        manager.warmup()
        manager.start()
        pending = iter(rows)
        exhausted = False
        while True:
            while not exhausted and len(in_flight) < inflight:
                row = next(pending, None)
                if row is None:
                    exhausted = True
                    break
                in_flight[row.key] = row
                manager.add_request(row.input_ids, request_id=row.key, max_new_tokens=row.max_new,
                                    eos_token_id=list(eos) or -1)
            if not in_flight:
                return
            result = manager.get_result(timeout=RESULT_POLL_S)
            if result is None:
                if not manager.is_running():
                    error = manager.background_thread_status.fatal_error
                    raise RunError(f"transformers continuous batching stopped with {len(in_flight)} samples in "
                                   f"flight: {error or 'the generation thread exited'}")
                continue
            if not result.is_finished() or result.request_id not in in_flight:
                continue
            row = in_flight.pop(result.request_id)
            if result.error is not None:
                raise RunError(f"transformers continuous batching failed on problem {row.request.id}: {result.error}")
            tokens = list(result.generated_tokens)
            hit_eos = bool(tokens) and tokens[-1] in eos_set
            end = next((i for i, t in enumerate(tokens) if t in eos_set), None)
            if end is not None:
                tokens, hit_eos = tokens[:end], True
            on_finish(len(tokens) + (1 if hit_eos else 0))
            yield row, tokens, hit_eos
    finally:
        try:
            manager.stop(block=True, timeout=30, hard_stop=bool(in_flight))  # closed early: drop what is in flight
        finally:
            manager.destroy()
