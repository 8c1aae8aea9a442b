"""Distillation SFT (open-r1 style) with TRL's SFTTrainer on Bespoke-Stratos-format data.

Loss on assistant turns only needs ``{% generation %}`` markers in the chat template. TRL swaps in a training template
for the templates it knows (Qwen2.5 among them); for other ChatML templates (Qwen2.5-Math's, whose default system
prompt differs) r1h uses :func:`chatml_training_template` for tokenizing the training data only. The checkpoint keeps
the model's original chat template, so ``r1h eval`` renders prompts exactly as before training.

End of sequence: the shipped recipe sets open-r1's ``eos_token: <|im_end|>`` (open-r1 README.md, "Align EOS token
with chat template for Qwen base models"). TRL puts it on the tokenizer and adds it to the model's
``generation_config.eos_token_id``; :func:`align_eos` makes sure of it before the checkpoint is written (open-r1
``src/open_r1/sft.py:131-133``), so ``r1h eval`` of the checkpoint stops at the end of the assistant turn.
"""

from __future__ import annotations

from typing import Any

from r1h.trainers.common import Plan, announce, build_config, preparing, train_and_save
from r1h.trainers.data import sft_dataset
from r1h.trainers.progress import quiet_training, step_lines


def chatml_training_template(default_system_block: str) -> str:
    """A ChatML template with ``{% generation %}`` around assistant turns (end-of-turn token included).

    ``default_system_block`` is rendered when the chat has no system message (the original template's default)."""
    default = default_system_block.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
    return (
        "{%- if messages and messages[0]['role'] == 'system' %}"
        "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
        "{%- set loop_messages = messages[1:] %}"
        "{%- else %}"
        "{{- '" + default + "' }}"
        "{%- set loop_messages = messages %}"
        "{%- endif %}"
        "{%- for message in loop_messages %}"
        "{%- if message['role'] == 'assistant' %}"
        "{{- '<|im_start|>assistant' }}"
        "{%- generation %}{{- '\\n' + message['content'] + '<|im_end|>\\n' }}{%- endgeneration %}"
        "{%- else %}"
        "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}"
        "{%- endif %}"
        "{%- endfor %}"
        "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
    )


def training_template(tokenizer) -> str | None:
    """None when TRL can handle the tokenizer's template itself; else r1h's ChatML training template.

    Raises ConfigError for a template that is neither (assistant-only loss is then impossible: pass
    ``--set assistant_only_loss=false`` or give a template with generation markers via ``chat_template_path``)."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    from r1h.harness.core.errors import ConfigError

    template = tokenizer.chat_template
    if isinstance(template, dict):
        template = template.get("default")
    if not template:
        raise ConfigError("the tokenizer has no chat template; SFT on messages needs one (set chat_template_path)")
    if has_generation_markers(template):
        return None
    try:
        get_training_chat_template(tokenizer)
        return None
    except ValueError:
        pass
    if "<|im_start|>" not in template:
        raise ConfigError(
            "assistant_only_loss needs {% generation %} markers and r1h/TRL cannot patch this chat template; "
            "pass --set assistant_only_loss=false or a template with markers via --set chat_template_path=FILE"
        )
    probe = tokenizer.apply_chat_template([{"role": "user", "content": "\x00"}], tokenize=False)
    default_block = probe.split("<|im_start|>user")[0] if "<|im_start|>user" in probe else ""
    return chatml_training_template(default_block)


def align_eos(model, tokenizer) -> None:
    """Make the model's generation config stop on the tokenizer's eos token (kept with any it already had)."""
    eos = tokenizer.eos_token_id
    config = getattr(model, "generation_config", None)
    if eos is None or config is None:
        return
    current = config.eos_token_id
    ids = [] if current is None else [current] if isinstance(current, int) else list(current)
    if eos not in ids:
        config.eos_token_id = [eos, *ids] if ids else eos


def run(plan: Plan, callbacks: list[Any] | None = None):
    """Train; return the trainer (its ``state.log_history`` holds the logged losses)."""
    config = build_config(plan)
    with quiet_training():  # r1h's lines in the log, not the libraries' bars and FutureWarnings
        return _train(plan, config, callbacks)


def _train(plan: Plan, config, callbacks: list[Any] | None):
    from transformers import AutoTokenizer
    from trl import SFTTrainer

    from r1h.trainers.evaluation import EvalLogMixin

    recipe, options = plan.recipe, plan.options
    announce(plan)
    with preparing(plan):
        dataset = sft_dataset(recipe.data["source"], recipe.data.get("format"),
                              limit=options.limit or recipe.data.get("limit"))
        tokenizer = AutoTokenizer.from_pretrained(recipe.model, **(recipe.processor or {}))
        original_template = tokenizer.chat_template
        if config.assistant_only_loss and not config.chat_template_path:
            swapped = training_template(tokenizer)
            if swapped is not None:
                tokenizer.chat_template = swapped

        class Trainer(EvalLogMixin, SFTTrainer):
            pass

        # TRL tokenizes (and packs) the data here, through Dataset.map: part of the live progress
        trainer = Trainer(model=recipe.model, args=config, train_dataset=dataset, processing_class=tokenizer,
                          callbacks=[*step_lines(recipe, config), *(callbacks or [])])
    tokenizer.chat_template = original_template  # the data is tokenized; checkpoints keep the model's own template
    if config.eos_token:
        align_eos(trainer.accelerator.unwrap_model(trainer.model), tokenizer)
    return train_and_save(trainer, options, config.output_dir)
