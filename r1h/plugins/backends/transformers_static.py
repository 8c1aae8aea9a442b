"""The static path of the transformers backend: a chunk of rows, left padded, generated together.

Every row of a chunk runs until the longest ends (a finished row cannot be replaced: that is what
:mod:`.transformers_cb` does). Sampling: ``generate`` runs greedy over the one-hot draw of
:func:`.transformers_sampling.row_sampler`, one seeded ``torch.Generator`` per row, so a sample does not depend on its
batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from r1h.harness.core.types import Completion
from r1h.plugins.backends.transformers_sampling import row_sampler, static_generation_config


@dataclass
class Row:
    """One generation row: which request and which of its wanted samples it fills."""

    request: int
    slots: list[int]  # positions in the request's wanted samples (several when greedy rows are deduplicated)
    prompt: str
    seed: int
    length: int
    images: list[Any]


def truncate_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string (excluded, as OpenAI and vLLM do)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def chunk_inputs(backend: Any, chunk: list[Row]):
    """Left-padded model inputs for a chunk of rows (through the processor for a vision-language model)."""
    import torch

    if backend._processor is not None:
        texts = [row.prompt for row in chunk]
        images = [row.images for row in chunk] if any(row.images for row in chunk) else None
        return backend._processor(text=texts, images=images, padding=True, return_tensors="pt")
    tok = backend._tokenizer
    ids = tok([row.prompt for row in chunk], add_special_tokens=False)["input_ids"]
    width = max(len(x) for x in ids)
    pad = tok.pad_token_id
    input_ids = torch.tensor([[pad] * (width - len(x)) + list(x) for x in ids], dtype=torch.long)
    mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], dtype=torch.long)
    return {"input_ids": input_ids, "attention_mask": mask}


def generate_chunk(backend: Any, chunk: list[Row], config: Any, params: dict[str, Any]) -> list[Completion]:
    """One static batch: ``generate`` greedy over the per-row seeded sampler's one-hot draws."""
    import torch
    from transformers import LogitsProcessorList

    inputs = {k: v.to(backend.device) for k, v in chunk_inputs(backend, chunk).items()}
    width = inputs["input_ids"].shape[1]
    max_new = max(1, int(config.max_tokens))
    limit = backend._context_limit()
    if limit:
        max_new = max(1, min(max_new, limit - width))
    eos = backend._eos_ids()
    pad_id = backend._tokenizer.pad_token_id
    gen_config = static_generation_config(backend._checkpoint_gen, params, config.policy, max_new_tokens=max_new,
                                          pad_token_id=pad_id, eos_token_id=sorted(eos) or None)
    processors = LogitsProcessorList()
    if not config.greedy:
        generators = [torch.Generator(device=backend.device).manual_seed(row.seed) for row in chunk]
        processors.append(row_sampler(generators, params))
    extra: dict[str, Any] = {}
    if config.stop:
        gen_config.stop_strings = list(config.stop)
        extra["tokenizer"] = backend._tokenizer
    with torch.inference_mode():
        output = backend._model.generate(**inputs, generation_config=gen_config, logits_processor=processors, **extra)
    new_tokens = output[:, width:].tolist()
    done = eos | ({pad_id} if pad_id is not None else set())
    completions = []
    for tokens in new_tokens:
        end = next((i for i, t in enumerate(tokens) if t in done), None)
        kept = tokens if end is None else tokens[:end]
        num = len(kept) + (1 if end is not None and tokens[end] in eos else 0)
        text = backend._tokenizer.decode(kept, skip_special_tokens=True)
        text, stopped = truncate_at_stop(text, config.stop)
        if end is None and not stopped and len(tokens) >= max_new:
            reason = "length"
        else:
            reason = "stop"
        completions.append(Completion(text=text, finish_reason=reason, num_tokens=num))
    return completions


def vision_messages(messages: list[dict[str, Any]], n_images: int) -> list[dict[str, Any]]:
    """Messages as typed parts, with one image placeholder per request image (in the first user turn if absent)."""
    out = []
    for m in messages:
        content = m.get("content", "")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        out.append({**m, "content": parts})
    has_image = any(p.get("type") in ("image", "image_url") for m in out for p in m["content"] if isinstance(p, dict))
    if n_images and not has_image:
        for m in out:
            if m.get("role") == "user":
                m["content"] = [{"type": "image"} for _ in range(n_images)] + m["content"]
                break
    return out


def load_image(image: Any):
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        from PIL import Image

        with Image.open(image) as im:
            return im.convert("RGB")
    return image
