"""GRPO with TRL's GRPOTrainer: text (Countdown, mini-deepseek-r1) and vision (CLEVR counting, R1-V).

The reward functions are r1h's registered reward objects, passed to TRL unchanged: TRL logs each under its registered
name (``rewards/<name>/mean``) and the eval path grades with the very same objects.

Countdown prompts end in an assistant prefill (``Let me solve this step by step.\\n<think>``). TRL 1.x renders
conversational prompts with ``add_generation_prompt=True``, which cannot continue a final assistant message, so the
prompt is rendered to a string here (``continue_final_message=True``) and handed to TRL as plain text.
"""

from __future__ import annotations

import sys
from typing import Any

from r1h.trainers.common import Plan, announce, build_config, is_main_process, preparing, train_and_save
from r1h.trainers.data import check_reward_columns, clevr_dataset, countdown_dataset, prompt_dataset
from r1h.trainers.progress import quiet_training, step_lines


def load_processing_class(recipe, vision: bool):
    from transformers import AutoTokenizer

    kwargs = dict(recipe.processor or {})
    kwargs.setdefault("padding_side", "left")
    if vision:
        from r1h.plugins.backends.models import load_processor

        return load_processor(recipe.model, **kwargs)
    kwargs.setdefault("truncation_side", "left")
    return AutoTokenizer.from_pretrained(recipe.model, **kwargs)


def build_dataset(plan: Plan, processing_class, vision: bool):
    recipe, options = plan.recipe, plan.options
    data = recipe.data
    source, fmt = data["source"], data.get("format") or ("clevr" if vision else "prompt")
    limit = options.limit or data.get("limit")
    tokenizer = getattr(processing_class, "tokenizer", processing_class)
    if fmt == "countdown":
        heldout = tuple(data["heldout"]) if data.get("heldout") else None
        return countdown_dataset(source, tokenizer, data.get("max_prompt_tokens"), limit=limit,
                                 train_rows=data.get("train_rows"), heldout=heldout)
    if fmt == "clevr":
        return clevr_dataset(source, limit=limit)
    if fmt == "prompt":
        return prompt_dataset(source, tokenizer, data.get("max_prompt_tokens"), limit=limit)
    from r1h.harness.core.errors import ConfigError

    raise ConfigError(f"recipe {recipe.name}: unknown data.format {fmt!r} for GRPO (countdown, clevr, prompt)")


def check_data(plan: Plan, vision: bool) -> None:
    """Load the data source and check its columns (no tokenizer, no model): the early part of the one-line errors."""
    from r1h.trainers.data import FORMAT_COLUMNS, load_source, require_columns

    data = plan.recipe.data
    fmt = data.get("format") or ("clevr" if vision else "prompt")
    if fmt in FORMAT_COLUMNS:
        dataset = load_source(data["source"], limit=1)
        require_columns(dataset, FORMAT_COLUMNS[fmt], data["source"])


def run(plan: Plan, callbacks: list[Any] | None = None, vision: bool = False):
    """Train; return the trainer (``state.log_history`` holds ``rewards/<name>/mean`` per logging step)."""
    recipe = plan.recipe
    from r1h.trainers.common import has_gpu
    from r1h.trainers.vllm_sync import server_mode_refusal

    refusal = server_mode_refusal(plan.config_kwargs, has_gpu())
    if refusal:  # before any data or model loads
        from r1h.harness.core.errors import ConfigError

        raise ConfigError(f"recipe {recipe.name}: {refusal}")
    config = build_config(plan)
    with quiet_training():  # r1h's lines in the log, not the libraries' bars and FutureWarnings
        return _train(plan, config, callbacks, vision)


def _train(plan: Plan, config, callbacks: list[Any] | None, vision: bool):
    from trl import GRPOTrainer

    from r1h.trainers.evaluation import EvalLogMixin

    recipe, options = plan.recipe, plan.options
    with preparing(plan):
        check_data(plan, vision)
        announce(plan)
        processing_class = load_processing_class(recipe, vision)
        dataset = build_dataset(plan, processing_class, vision)
    check_reward_columns(plan.rewards, dataset, recipe.data["source"])

    class Trainer(EvalLogMixin, GRPOTrainer):
        pass

    trainer = Trainer(model=recipe.model, reward_funcs=list(plan.rewards), args=config, train_dataset=dataset,
                      processing_class=processing_class,
                      callbacks=[*step_lines(recipe, config), *(callbacks or [])])
    if config.use_vllm:
        from r1h.trainers.vllm_sync import install

        if install(trainer) and is_main_process():
            print("r1h train: CPU vLLM: weights sync through vLLM's in-place reload (TRL's load_weights fails "
                  "there; see r1h/trainers/vllm_sync.py)", file=sys.stderr)
    return train_and_save(trainer, options, config.output_dir)
