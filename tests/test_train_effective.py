"""Each recipe trains on the original's numbers: same prompts and completions per optimizer step on any process count,
one generation per step, and the same loss, temperature, schedule and lengths. `--dry-run` shows them in a table."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from r1h.harness.cli.main import main
from r1h.trainers import common
from r1h.trainers.common import TrainOptions, build_config, effective_rows, plan
from r1h.trainers.effective import derive_layout

# The originals' numbers, read from their files (docs/training.md cites them): processes, prompts (GRPO) or packed
# sequences (SFT) per optimizer step, completions per step, total prompts.
ORIGINALS = {
    "countdown-qwen2.5": {"processes": 3, "per_step": 24, "completions": 192, "total": 10800},
    "r1v-clevr-qwen2-vl-2b": {"processes": 8, "per_step": 16, "completions": 128, "total": "2 epochs"},
    "stratos-qwen2.5-math-1.5b": {"processes": 8, "per_step": 128, "completions": None, "total": "1 epoch"},
}
WORKFLOW = {"countdown-qwen2.5": "grpo", "r1v-clevr-qwen2-vl-2b": "grpo-vl", "stratos-qwen2.5-math-1.5b": "sft"}


def _plan(name: str, processes: int, *sets: str):
    return plan(TrainOptions(workflow=WORKFLOW[name], recipe=name, output_dir="unused", sets=list(sets),
                             num_processes=processes))


def _rows(resolved):
    config = build_config(resolved)
    return config, {what: (a, b, d) for what, a, b, d in effective_rows(resolved, config)}


@pytest.mark.parametrize("name", sorted(ORIGINALS))
def test_the_original_numbers_are_stated(name):
    resolved = _plan(name, 8)
    _, rows = _rows(resolved)
    want = ORIGINALS[name]
    key = "sequences per step" if WORKFLOW[name] == "sft" else "prompts per step"
    assert rows["processes"][0] == want["processes"]
    assert rows[key][0] == want["per_step"]
    assert rows["total sequences" if WORKFLOW[name] == "sft" else "total prompts"][0] == want["total"]
    if want["completions"]:
        assert rows["completions per step"][0] == want["completions"]
        assert rows["loss_type"][0] == "grpo"


@pytest.mark.parametrize("name", sorted(ORIGINALS))
@pytest.mark.parametrize("processes", ["original", 8])
def test_every_number_equals_the_original_on_its_machine_and_on_8_gpus(name, processes):
    processes = ORIGINALS[name]["processes"] if processes == "original" else processes
    resolved = _plan(name, processes)
    config, rows = _rows(resolved)
    assert not resolved.warnings
    differing = {what: (a, b) for what, (a, b, d) in rows.items() if d}
    assert differing == {}, differing
    assert config.gradient_accumulation_steps * config.per_device_train_batch_size * processes == (
        ORIGINALS[name]["completions"] or ORIGINALS[name]["per_step"])
    if WORKFLOW[name] != "sft":
        assert config.loss_type == "grpo"
        assert config.steps_per_generation == config.gradient_accumulation_steps  # on-policy


def test_r1v_on_8_gpus_is_r1vs_layout():
    config = build_config(_plan("r1v-clevr-qwen2-vl-2b", 8))
    # 1 prompt x 8 generations per device forward, grad-accum 2, as R1-V ran
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps) == (8, 2)
    config = build_config(_plan("countdown-qwen2.5", 3))
    assert (config.per_device_train_batch_size, config.gradient_accumulation_steps) == (8, 8)


@pytest.mark.parametrize("name", sorted(ORIGINALS))
@pytest.mark.parametrize("processes", [1, 2])
def test_smaller_machines_keep_the_prompts_per_step_and_stay_on_policy(name, processes):
    resolved = _plan(name, processes)
    config, rows = _rows(resolved)
    assert not resolved.warnings
    assert config.per_device_train_batch_size * processes * config.gradient_accumulation_steps == (
        ORIGINALS[name]["completions"] or ORIGINALS[name]["per_step"])
    assert config.per_device_train_batch_size <= 8  # the original's per-device forward batch, not more memory
    for what, (a, b, differs) in rows.items():
        if what not in ("processes", "per-device batch x grad-accum"):
            assert not differs, (what, a, b)


def test_a_process_count_that_cannot_split_the_step_warns_and_shows_it():
    resolved = _plan("countdown-qwen2.5", 7)
    assert len(resolved.warnings) == 1 and "do not split over 7 processes" in resolved.warnings[0]
    _, rows = _rows(resolved)
    assert rows["prompts per step"][:2] == (24, 21) and rows["prompts per step"][2]
    assert not rows["on-policy (no completion reuse)"][2]  # still one generation per step


def test_explicit_generation_reuse_is_flagged_off_policy():
    resolved = _plan("countdown-qwen2.5", 2, "steps_per_generation=24")
    _, rows = _rows(resolved)
    a, b, differs = rows["on-policy (no completion reuse)"]
    assert differs and b.startswith("no: each generation feeds 2 optimizer steps")
    assert any("steps_per_generation" in w for w in resolved.warnings)


def test_derive_layout():
    assert derive_layout(192, 3, 8, 8).__dict__ == {"per_device": 8, "grad_accum": 8, "per_step": 192, "warning": None}
    assert (derive_layout(192, 8, 8, 8).per_device, derive_layout(192, 8, 8, 8).grad_accum) == (8, 3)
    assert (derive_layout(128, 1, 8, 8).per_device, derive_layout(128, 1, 8, 8).grad_accum) == (8, 16)
    layout = derive_layout(128, 3, 1, 4)  # SFT: 128 sequences on 3 processes
    assert layout.per_step == 126 and (layout.per_device, layout.grad_accum) == (3, 14) and layout.warning
    assert derive_layout(16, 32, 8, 8).per_step == 32  # more processes than the step has prompts: one each


def test_dry_run_prints_the_table_and_flags_differences():
    runner = CliRunner()
    result = runner.invoke(main, ["train", "grpo", "--dry-run", "--num-processes", "2", "--model", "/nonexistent/m"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "prompts per step" in result.stderr and "completions per step" in result.stderr
    assert "matches the original" in result.stderr or "every listed setting matches" in result.stderr
    assert "grpo-qwen-2.5-3b-deepseek-r1-countdown.yaml" in result.stderr  # the citation
    effective = json.loads(result.stdout)["effective"]
    assert effective["prompts per step"] == {"original": 24, "effective": 24, "differs": False}
    assert json.loads(result.stdout)["config"]["gradient_accumulation_steps"] == 12

    result = runner.invoke(main, ["train", "grpo", "--dry-run", "--temperature", "1.0", "--loss_type", "dapo"],
                           catch_exceptions=False)
    assert result.exit_code == 0, result.output
    table = [line for line in result.stderr.splitlines() if "≠" in line]
    assert any("temperature" in line for line in table) and any("loss_type" in line for line in table)
    assert "2 setting(s) differ" in result.stderr


def test_speed_settings_only_on_a_gpu_with_the_library(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: object() if name in ("flash_attn", "vllm") else real(name, *a))
    monkeypatch.setattr(common, "has_gpu", lambda: True)
    kw = _plan("countdown-qwen2.5", 1).config_kwargs
    assert kw["use_vllm"] is True and kw["model_init_kwargs"]["attn_implementation"] == "flash_attention_2"
    kw = _plan("countdown-qwen2.5", 1, "use_vllm=false").config_kwargs
    assert kw["use_vllm"] is False  # the command line wins
    kw = _plan("stratos-qwen2.5-math-1.5b", 1).config_kwargs
    assert "use_vllm" not in kw and kw["model_init_kwargs"]["attn_implementation"] == "flash_attention_2"

    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("flash_attn", "vllm") else real(name, *a))
    resolved = _plan("countdown-qwen2.5", 1)
    assert "use_vllm" not in resolved.config_kwargs
    assert "attn_implementation" not in resolved.config_kwargs["model_init_kwargs"]
    assert any("flash_attn is not installed" in n for n in resolved.notes)

    monkeypatch.setattr(common, "has_gpu", lambda: False)  # never on CPU, even when importable
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: object() if name in ("flash_attn", "vllm")
                        else real(name, *a))
    kw = _plan("countdown-qwen2.5", 1).config_kwargs
    assert "use_vllm" not in kw and "attn_implementation" not in kw["model_init_kwargs"]


def test_a_training_process_derives_the_layout_from_world_size(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "3")  # what accelerate launch / torchrun set in each training process
    resolved = plan(TrainOptions(workflow="grpo", recipe="countdown-qwen2.5", output_dir="unused"))
    assert resolved.processes == 3
    kw = resolved.config_kwargs
    assert (kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"]) == (8, 8)


def test_one_given_layout_value_derives_the_other():
    kw = _plan("countdown-qwen2.5", 2, "per_device_train_batch_size=4").config_kwargs
    assert (kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"]) == (4, 24)  # 4 x 2 x 24 = 192
    kw = _plan("r1v-clevr-qwen2-vl-2b", 1, "gradient_accumulation_steps=4").config_kwargs
    assert (kw["per_device_train_batch_size"], kw["gradient_accumulation_steps"]) == (32, 4)  # 32 x 1 x 4 = 128
    resolved = _plan("countdown-qwen2.5", 1, "per_device_train_batch_size=5")
    assert any("cannot give the original's 192 completions" in w for w in resolved.warnings)
