"""Continuous batching for the transformers backend: transformers 5.x's own ``ContinuousBatchingManager``.

Read against transformers 5.24 (``generation/continuous_batching/continuous_api.py``): ``model.init_continuous_batching
(generation_config, continuous_batching_config)`` builds the manager (paged KV cache, FIFO scheduler, a background
generation thread); ``warmup()``, ``start()``, ``add_request(input_ids, request_id, max_new_tokens, eos_token_id)``,
``get_result(timeout)`` (a ``GenerationOutput`` with ``generated_tokens``, ``status`` and ``error``), ``stop()`` and
``destroy()``. A finished sequence's slot is refilled at the next step, so a sample that stops early never leaves the
batch idle, unlike the static path. r1h keeps at most ``inflight`` rows in the manager and pulls requests lazily.

Per-sample seeds: the stock sampler is one ``torch.multinomial`` over the whole batch with the global generator
(``model_runner.py`` ``_sample``, seeded once by ``ContinuousBatchingConfig.seed``), so a sample's draws would depend
on which others share its steps. r1h therefore runs the manager greedy (``do_sample=False``) and installs
:func:`seeded_processors`: a per-request continuous-batching logits processor (the same interface as transformers'
per-request temperature, ``cb_logits_processors.py``) that carries each row's slot in its tensor argument and draws
that row's token with the row's own ``torch.Generator`` (:func:`.transformers_sampling.sample_rows`, the static
path's sampler); argmax then picks the draw. A sample's text thus depends on its seed, not on its neighbours, as on the static path.
This needs the arguments on the host each step, so CUDA graphs are off in this mode.

What it cannot do (so ``TransformersBackend`` falls back to static batches):
- **Sequence-reading logits processors** (repetition penalty, n-gram blocking, minimum length): they see only the last
  token there (``_forward_process_and_sample`` passes one input id per row), and unsupported ones are dropped.
- **Stop strings** and **images**: no such inputs in ``add_request``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from r1h.harness.core.errors import RunError

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
    seed: int = 0


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


SLOT_KWARG = "r1h_slot"


def seeded_processors(generators: dict[int, Any], params: dict[str, Any]):
    """A ``ContinuousBatchingLogitsProcessorList`` holding one processor that samples each row with the generator of
    its slot (``add_request(..., r1h_slot=N)``; ``generators[N]``) and returns the one-hot draw."""
    import torch
    from transformers import LogitsProcessorList
    from transformers.generation.continuous_batching.cb_logits_processors import (
        ContinuousBatchingLogitsProcessor,
        ContinuousBatchingLogitsProcessorList,
    )

    from r1h.plugins.backends.transformers_sampling import sample_rows

    spare = torch.Generator().manual_seed(0)  # warm-up's dummy rows carry no slot

    class SeededRowSampler(ContinuousBatchingLogitsProcessor):
        supported_kwargs = {SLOT_KWARG: int}
        ignored_kwargs = ()
        supports_continuous_batching = True

        def fill_defaults(self, int32_tensor):
            int32_tensor.fill_(-1)

        def prepare_tensor_args(self, requests_with_new_token):
            return torch.tensor([r.state.logit_processor_kwargs.get(SLOT_KWARG, -1) for r in requests_with_new_token],
                                dtype=torch.int32)

        def __call__(self, scores, tensor_arg):
            slots = tensor_arg[: scores.size(0)].tolist()
            rows = [generators.get(slot, spare) for slot in slots]
            return sample_rows(scores, rows, params)

    processors = ContinuousBatchingLogitsProcessorList(LogitsProcessorList([SeededRowSampler()]))
    processors.tensors_required = 1  # one int32 line of arguments: the slot
    return processors


def stream_rows(model: Any, rows: Iterator[CBRow], gen_config: Any, eos: list[int], inflight: int, seed: int,
                max_new: int, params: dict[str, Any] | None = None,
                pad: int | None = None) -> Iterator[tuple[CBRow, list[int], bool]]:
    """Feed ``rows`` to a continuous batching manager, at most ``inflight`` at a time, and yield ``(row, tokens,
    hit_eos)`` for each as it finishes. ``tokens`` exclude the end-of-sequence token. A sampled ``pad`` token ends a
    row too, uncounted, as on the static path (which cannot tell it from padding). With ``params`` (sampling), each
    row is drawn with its own generator seeded by ``row.seed`` (``gen_config`` must then be greedy)."""
    import torch
    from transformers import ContinuousBatchingConfig

    cb_kwargs: dict[str, Any] = {"seed": int(seed) & 0x7FFFFFFF, "max_queue_size": 0}
    if model.device.type == "cpu":
        cb_kwargs.update(cpu_cache_config(model, inflight, max_new))
    else:
        cb_kwargs["max_requests_per_batch"] = inflight
    generators: dict[int, Any] = {}
    if params is not None:
        cb_kwargs["use_cuda_graph"] = False  # the seeded sampler reads its slots on the host every step
    manager = model.init_continuous_batching(generation_config=gen_config,
                                             continuous_batching_config=ContinuousBatchingConfig(**cb_kwargs))
    if params is not None:
        manager.logit_processor = seeded_processors(generators, params)
    in_flight: dict[str, CBRow] = {}
    slots: dict[str, int] = {}
    next_slot = [0]
    eos_set = set(eos)
    ends = sorted(eos_set | ({pad} if pad is not None else set()))
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
                extra = {}
                if params is not None:
                    slots[row.key] = slot = next_slot[0]
                    next_slot[0] += 1
                    generators[slot] = torch.Generator(device=model.device).manual_seed(int(row.seed))
                    extra[SLOT_KWARG] = slot
                manager.add_request(row.input_ids, request_id=row.key, max_new_tokens=row.max_new,
                                    eos_token_id=ends or -1, **extra)
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
            generators.pop(slots.pop(row.key, -1), None)
            if result.error is not None:
                raise RunError(f"transformers continuous batching failed on problem {row.request.id}: {result.error}")
            tokens = list(result.generated_tokens)
            end = next((i for i, t in enumerate(tokens) if t in ends), None)
            hit_eos = end is not None and tokens[end] in eos_set
            if end is not None:
                tokens = tokens[:end]
            yield row, tokens, hit_eos
    finally:
        try:
            manager.stop(block=True, timeout=30, hard_stop=bool(in_flight))  # closed early: drop what is in flight
        finally:
            manager.destroy()
