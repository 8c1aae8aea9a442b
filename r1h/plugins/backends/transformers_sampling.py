"""The transformers backend's side of the sampling policy: HF generation configs, and the per-row seeded sampler.

The policy itself (what is sent for ``neutral`` and ``model``) is :mod:`r1h.harness.core.sampling`. transformers'
``generate`` fills every field a caller leaves ``None`` from the checkpoint's ``generation_config.json``
(``GenerationMixin._prepare_generation_config`` in transformers 5.24, ``generation/utils.py`` lines 2107-2115), so:

- ``neutral``: :func:`neutral_generation_config` is a fresh ``GenerationConfig`` that holds only the token ids of the
  checkpoint's, so nothing else is inherited (no n-gram blocking, typical-p, epsilon/eta cutoffs, minimum lengths,
  suppressed tokens...).
- ``model``: top-k, min-p and repetition penalty come from the checkpoint's generation config (the core policy reads
  them from it); temperature, top-p and max tokens stay as given; the checkpoint's other logits processors apply.

The static path draws each row's token with :func:`row_sampler` (one ``torch.Generator`` per sample, so a sample does
not depend on its batch); it applies temperature, top-k, top-p and min-p itself. Repetition penalty is applied by
transformers' own ``RepetitionPenaltyLogitsProcessor``, which ``generate`` runs before custom processors
(``_merge_criteria_processor_list``), so the sampler sees penalised scores.
"""

from __future__ import annotations

import copy
from typing import Any

from r1h.harness.core.sampling import sampling_params

TOKEN_ID_FIELDS = ("bos_token_id", "eos_token_id", "pad_token_id", "decoder_start_token_id")
effective_sampling = sampling_params  # the transformers backend's test hook: it sends the policy's values as they are


def neutral_generation_config(checkpoint: Any):
    """A fresh HF ``GenerationConfig`` with only the checkpoint's token ids and explicit neutral values, to stand in
    for ``model.generation_config`` so that ``generate`` inherits nothing else from the checkpoint."""
    from transformers import GenerationConfig

    ids = {name: getattr(checkpoint, name, None) for name in TOKEN_ID_FIELDS} if checkpoint is not None else {}
    return GenerationConfig(
        **{k: v for k, v in ids.items() if v is not None},
        do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None, min_p=None, typical_p=None,
        repetition_penalty=1.0, encoder_repetition_penalty=1.0, no_repeat_ngram_size=0,
        encoder_no_repeat_ngram_size=0, epsilon_cutoff=None, eta_cutoff=None, min_length=0,
    )


def static_generation_config(checkpoint: Any, params: dict[str, Any], policy: str, **fixed: Any):
    """The HF ``GenerationConfig`` for the static path: greedy over :func:`row_sampler`'s one-hot draw (the sampler
    owns temperature/top-k/top-p/min-p); repetition penalty from ``params``; with ``policy == "model"`` the checkpoint's
    other processors kept. ``fixed`` sets max_new_tokens, pad/eos ids."""
    base = copy.deepcopy(checkpoint) if policy == "model" and checkpoint is not None else neutral_generation_config(
        checkpoint)
    base.update(do_sample=False, num_beams=1, temperature=None, top_p=None, top_k=None, min_p=None,
                typical_p=None, epsilon_cutoff=None, eta_cutoff=None, num_return_sequences=1,
                repetition_penalty=params["repetition_penalty"], **fixed)
    return base


def continuous_generation_config(checkpoint: Any, params: dict[str, Any], policy: str, **fixed: Any):
    """The HF ``GenerationConfig`` for transformers' continuous batching: its own sampler (``do_sample``) with
    temperature/top-k/top-p/min-p warpers; greedy when temperature is 0."""
    base = copy.deepcopy(checkpoint) if policy == "model" and checkpoint is not None else neutral_generation_config(
        checkpoint)
    greedy = params["temperature"] <= 0.0
    base.update(
        do_sample=not greedy, num_beams=1, num_return_sequences=1,
        temperature=None if greedy else params["temperature"], top_p=None if greedy else params["top_p"],
        top_k=None if greedy else (params["top_k"] or 0),
        min_p=None if greedy or not params["min_p"] else params["min_p"],
        repetition_penalty=params["repetition_penalty"], **fixed,
    )
    return base


# Logits processors that transformers' continuous batching applies correctly: per-row warpers over the scores
# (continuous_batching/cb_logits_processors.py has per-request versions of the first three; min-p only reads scores).
# Anything that reads the sequence (repetition penalty, n-gram blocking, minimum length) sees only the last token
# there, so such settings fall back to static batches.
CB_SAFE_PROCESSORS = ("TemperatureLogitsWarper", "TopKLogitsWarper", "TopPLogitsWarper", "MinPLogitsWarper")


def continuous_unsupported(processors: Any) -> list[str]:
    """Names of the logits processors in ``processors`` that continuous batching would drop or misapply."""
    return [type(p).__name__ for p in processors if type(p).__name__ not in CB_SAFE_PROCESSORS]


def sample_rows(scores: Any, generators: list[Any], params: dict[str, Any], window: int = 512):
    """Draw one token per row of ``scores`` with that row's generator; return a one-hot mask (0 at the draw, -inf
    elsewhere), so that a greedy (argmax) step picks exactly the drawn token.

    Order as transformers' warpers (``_get_logits_processor``): temperature, top-k, top-p, min-p. Top-p is exact: the
    nucleus is searched among the ``window`` most likely tokens (or top-k's), and over the whole vocabulary for a row
    whose window holds less than ``top_p`` of the mass.
    """
    import torch

    temperature = max(float(params["temperature"]), 1e-6)
    top_p = float(params["top_p"])
    top_k = params.get("top_k")
    min_p = float(params.get("min_p") or 0.0)
    probs = torch.softmax(scores.float() / temperature, dim=-1)
    vocab = probs.shape[-1]
    picks = []
    if top_p < 1.0 or top_k or min_p > 0.0:
        size = min(top_k, vocab) if top_k else min(window, vocab)
        window_probs, window_ids = torch.topk(probs, size, dim=-1)
        for i, generator in enumerate(generators):
            values, ids = window_probs[i], window_ids[i]
            wider = (top_p < 1.0 and float(values.sum()) < top_p) or (
                min_p > 0.0 and top_p >= 1.0 and float(values[-1]) >= min_p * float(values[0]))
            if not top_k and wider:  # the nucleus (or the min-p set) is wider than the window
                values, ids = torch.sort(probs[i], descending=True)
            if top_k:  # renormalise within the top-k, as transformers' TopK-then-TopP does
                values = values / values.sum()
            keep = torch.ones_like(values, dtype=torch.bool)
            if top_p < 1.0:
                keep &= (torch.cumsum(values, dim=-1) - values) <= top_p  # keeps at least the top token
            if min_p > 0.0:
                keep &= values >= min_p * values[0]
            pick = torch.multinomial(values.masked_fill(~keep, 0.0), 1, generator=generator)
            picks.append(ids[pick])
    else:
        picks = [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generators)]
    choice = torch.stack(picks).to(scores.device)
    out = torch.full_like(scores, float("-inf"))
    return out.scatter_(1, choice, 0.0)


def row_sampler(generators: list[Any], params: dict[str, Any], window: int = 512):
    """A ``generate`` logits processor: :func:`sample_rows` with one generator per batch row."""
    from transformers import LogitsProcessor

    class RowSampler(LogitsProcessor):
        def __call__(self, input_ids, scores):
            return sample_rows(scores, generators, params, window)

    return RowSampler()
