"""End-to-end training on CPU with tiny models built from configs (2-layer Qwen2, tiny Qwen2-VL, local tokenizer)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import r1h
from r1h.harness.core import plugins
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.reward import Reward
from r1h.trainers import grpo, sft
from r1h.trainers.common import TrainOptions, plan

# Small, fast settings shared by the runs (float32 on CPU; no checkpointing of activations for 2 layers).
FAST = ["activation_checkpointing=false", "logging_steps=1", "report_to=none", "seed=0"]


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory) -> Path:
    from r1h.trainers.tiny import build_text_model

    return build_text_model(tmp_path_factory.mktemp("tiny") / "qwen2")


@pytest.fixture(scope="module")
def tiny_vl(tmp_path_factory) -> Path:
    from r1h.trainers.tiny import build_vision_model

    return build_vision_model(tmp_path_factory.mktemp("tinyvl") / "qwen2vl")


def _countdown_file(path: Path, n: int = 24) -> Path:
    rng = random.Random(0)
    rows = []
    for _ in range(n):
        nums = [rng.randint(1, 20) for _ in range(3)]
        rows.append({"target": nums[0] + nums[1] + nums[2], "nums": nums})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _history(trainer, key: str) -> list[float]:
    return [h[key] for h in trainer.state.log_history if key in h]


def _stratos_file(path: Path, n: int = 24) -> Path:
    rng = random.Random(0)
    with path.open("w") as f:
        for _ in range(n):
            a, b = rng.randint(1, 9), rng.randint(1, 9)
            f.write(json.dumps({"system": "You are a helpful assistant.", "conversations": [
                {"from": "user", "value": f"What is {a} + {b}?"},
                {"from": "assistant", "value": f"<think> {a} + {b} = {a + b} </think> <answer> {a + b} </answer>"},
            ]}) + "\n")
    return path


SFT_FAST = [*FAST, "max_steps=6", "max_length=128", "per_device_train_batch_size=4", "gradient_accumulation_steps=1",
            "learning_rate=3e-3", "save_steps=6"]


def test_sft_stratos_loss_decreases_and_checkpoint_keeps_the_template(tiny_text: Path, tmp_path: Path):
    """The assistant-only variant (--set assistant_only_loss=true): r1h's training template, the model's own kept."""
    data = _stratos_file(tmp_path / "stratos.jsonl")
    out = tmp_path / "sft"
    resolved = plan(TrainOptions(workflow="sft", model=str(tiny_text), data=str(data), output_dir=str(out),
                                 sets=[*SFT_FAST, "assistant_only_loss=true", "packing_strategy=bfd"]))
    assert resolved.config_kwargs["packing"] and resolved.config_kwargs["assistant_only_loss"]
    trainer = sft.run(resolved)
    losses = _history(trainer, "loss")
    assert len(losses) == 6 and losses[-1] < losses[0] - 0.3, losses
    assert (out / "model.safetensors").is_file() and (out / "checkpoint-6").is_dir()
    # the checkpoint renders prompts with the model's own template (the training template was only for masking)
    assert (out / "chat_template.jinja").read_text() == (tiny_text / "chat_template.jinja").read_text()


def test_sft_default_is_open_r1s_full_sequence_loss_and_the_checkpoint_stops_at_im_end(tiny_text: Path,
                                                                                       tmp_path: Path):
    """A Qwen-base-like tokenizer (eos <|endoftext|>): the recipe's eos_token <|im_end|> reaches the saved
    generation_config, so generation from the checkpoint stops at the end of the assistant turn."""
    import shutil

    from transformers import AutoTokenizer, GenerationConfig

    base = tmp_path / "base"
    shutil.copytree(tiny_text, base)
    tok = AutoTokenizer.from_pretrained(base)
    tok.eos_token = "<|endoftext|>"
    tok.save_pretrained(base)
    endoftext, im_end = tok.convert_tokens_to_ids("<|endoftext|>"), tok.convert_tokens_to_ids("<|im_end|>")
    GenerationConfig(eos_token_id=endoftext, pad_token_id=endoftext).save_pretrained(base)

    data = _stratos_file(tmp_path / "stratos.jsonl")
    out = tmp_path / "sft"
    resolved = plan(TrainOptions(workflow="sft", model=str(base), data=str(data), output_dir=str(out), sets=SFT_FAST))
    kw = resolved.config_kwargs
    assert kw["assistant_only_loss"] is False and kw["eos_token"] == "<|im_end|>" and kw["packing_strategy"] == "wrapped"
    trainer = sft.run(resolved)
    losses = _history(trainer, "loss")
    assert len(losses) == 6 and losses[-1] < losses[0], losses
    saved = json.loads((out / "generation_config.json").read_text())["eos_token_id"]
    assert im_end in (saved if isinstance(saved, list) else [saved])
    assert AutoTokenizer.from_pretrained(out).eos_token == "<|im_end|>"
    # full-sequence loss: every token of the packed block is a label (nothing masked to -100 but padding)
    batch = next(iter(trainer.get_train_dataloader()))
    assert (batch["labels"] != -100).float().mean() > 0.95


def test_grpo_countdown_logs_plugin_rewards_evaluates_and_loads_in_r1h(tiny_text: Path, tmp_path: Path):
    data = _countdown_file(tmp_path / "countdown.jsonl")
    out = tmp_path / "grpo"
    resolved = plan(TrainOptions(workflow="grpo", model=str(tiny_text), data=str(data), output_dir=str(out),
                                 sets=[*FAST, "max_steps=2", "per_device_train_batch_size=4",
                                       "gradient_accumulation_steps=1", "num_generations=4",
                                       "max_completion_length=12"],
                                 eval_bench="countdown", eval_every=2, eval_limit=2, eval_max_tokens=4))
    trainer = grpo.run(resolved)
    # TRL got r1h's reward objects unchanged and logged them under their registered names
    assert [f.__name__ for f in trainer.reward_funcs] == ["think_format", "countdown_equation"]
    assert all(isinstance(f, Reward) for f in trainer.reward_funcs)
    assert trainer.reward_funcs[0] is resolved.rewards[0]
    assert len(_history(trainer, "rewards/think_format/mean")) == 2
    assert len(_history(trainer, "rewards/countdown_equation/mean")) == 2
    evals = _history(trainer, "eval/countdown/pass@1")
    assert len(evals) == 1 and 0.0 <= evals[0] <= 1.0
    # the prompts TRL saw are the eval benchmark's messages + prefill, rendered
    from r1h.benchmarks.countdown import ASSISTANT_PREFILL

    assert trainer.train_dataset[0]["prompt"].endswith(ASSISTANT_PREFILL)
    # the saved checkpoint loads in r1h's transformers backend, and the benchmark's reward grades it
    bench = r1h.get_benchmark("countdown")
    sample = bench.load(None, limit=1)[0]
    backend = r1h.get_backend("transformers", model=str(out))
    try:
        outputs = backend.generate([bench.request(sample, [0], [0])], r1h.GenerationConfig(max_tokens=4, temperature=0))
    finally:
        backend.close()
    assert len(outputs) == 1 and len(outputs[0]) == 1
    assert r1h.get_reward(bench.reward)([outputs[0][0].text], **{k: [v] for k, v in sample.columns.items()}) == [0.0]


def test_grpo_vl_counts_shapes(tiny_vl: Path, tmp_path: Path):
    from PIL import Image, ImageDraw

    rng = random.Random(0)
    rows = []
    for i in range(4):
        count = rng.randint(1, 4)
        image = Image.new("RGB", (112, 112), "white")
        draw = ImageDraw.Draw(image)
        for k in range(count):
            x = 8 + 26 * k
            draw.ellipse([x, 40, x + 20, 60], fill=rng.choice(["red", "green", "blue"]))
        path = tmp_path / f"img{i}.png"
        image.save(path)
        rows.append({"image": str(path), "problem": "How many circles are there?",
                     "solution": f"<answer> {count} </answer>"})
    data = tmp_path / "clevr.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "vl"
    resolved = plan(TrainOptions(workflow="grpo-vl", model=str(tiny_vl), data=str(data), output_dir=str(out),
                                 sets=[*FAST, "max_steps=1", "per_device_train_batch_size=4",
                                       "gradient_accumulation_steps=1", "generation_batch_size=4",
                                       "num_generations=4", "max_completion_length=8"]))
    trainer = grpo.run(resolved, vision=True)
    assert _history(trainer, "rewards/count_accuracy/mean") and _history(trainer, "rewards/think_format/mean")
    row = trainer.train_dataset[0]
    assert row["answer"] == str(rows[0]["solution"].split()[1])
    assert row["prompt"][0]["content"].endswith("final answer (number) in <answer> </answer> tags.")
    assert (out / "model.safetensors").is_file() and (out / "preprocessor_config.json").is_file()


class DigitShare(Reward):
    """A trivially learnable reward: the share of digits in the completion."""

    name = "digit_share"

    def score(self, completion, prompt=None, **row):
        return sum(c.isdigit() for c in completion) / max(1, len(completion))


class _DigitPlugin:
    @hookimpl
    def r1h_register_rewards(self, register):
        register("digit_share", DigitShare, description="share of digits")


@pytest.mark.slow
def test_grpo_learns_a_custom_plugin_reward(tiny_text: Path, tmp_path: Path):
    plugins._CURRENT = plugins.build(extra_plugins=(_DigitPlugin(),))
    data = tmp_path / "prompts.jsonl"
    data.write_text("".join(json.dumps({"prompt": f"Say numbers {i}:"}) + "\n" for i in range(16)))
    resolved = plan(TrainOptions(workflow="grpo", model=str(tiny_text), data=str(data), output_dir=str(tmp_path / "o"),
                                 rewards=["digit_share"],
                                 sets=[*FAST, "data.format=prompt", "max_steps=30", "per_device_train_batch_size=8",
                                       "gradient_accumulation_steps=1", "num_generations=8",
                                       "max_completion_length=6", "learning_rate=1e-2", "logging_steps=5",
                                       "beta=0.0", "lr_scheduler_type=constant", "warmup_steps=0",
                                       "save_strategy=no"]))
    trainer = grpo.run(resolved)
    means = _history(trainer, "rewards/digit_share/mean")
    assert len(means) == 6
    assert means[-1] > means[0] + 0.3 and means[-1] > 0.5, means


@pytest.mark.slow
def test_accelerate_two_cpu_processes_run_grpo(tiny_text: Path, tmp_path: Path):
    data = _countdown_file(tmp_path / "countdown.jsonl")
    out = tmp_path / "ddp"
    env = {**os.environ, "R1H_LOAD_PLUGINS": "", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "r1h.harness.cli.main", "train", "grpo", "--model", str(tiny_text), "--data", str(data),
           "-o", str(out), "--launcher", "accelerate", "--cpu", "--num-processes", "2",
           "--main-process-port", str(29500 + os.getpid() % 1000),
           "--max_steps", "2", "--per_device_train_batch_size", "2", "--gradient_accumulation_steps", "1",
           "--num_generations", "4", "--max_completion_length", "8", "--set", "activation_checkpointing=false",
           "--logging_steps", "1"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "accelerate.commands.launch" in proc.stderr and "--num_processes 2" in proc.stderr
    assert "processes 2" in proc.stderr  # WORLD_SIZE seen by the training processes
    state = json.loads((out / "checkpoint-2" / "trainer_state.json").read_text())
    logged = [h for h in state["log_history"] if "rewards/think_format/mean" in h]
    assert len(logged) == 2
    assert (out / "model.safetensors").is_file()
