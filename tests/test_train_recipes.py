"""Recipes validate against the installed TRL config classes; bad input fails in one line before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1h.harness.cli.main import main
from r1h.harness.core.errors import ConfigError
from r1h.trainers import recipes
from r1h.trainers.common import TrainOptions, build_config, plan
from r1h.trainers.launch import launch_command, strip_launch_options

NO_MODEL = "/nonexistent/model-that-must-never-load"


def _invoke(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_list_shows_every_shipped_recipe():
    result = _invoke("train", "--list", "--json")
    assert result.exit_code == 0, result.output
    listed = json.loads(result.output)
    names = {r["name"] for r in listed["recipes"]}
    assert names == {"stratos-qwen2.5-math-1.5b", "countdown-qwen2.5", "r1v-clevr-qwen2-vl-2b"}
    assert {"single_gpu", "multi_gpu", "zero3", "cpu"} <= set(listed["accelerate_configs"])


@pytest.mark.parametrize("name", [r["name"] for r in recipes.list_recipes()])
def test_every_shipped_recipe_validates_against_trl(name):
    recipe = recipes.load_recipe(name)
    kwargs = recipes.validate(recipe)  # field names and types of the installed trl.SFTConfig / trl.GRPOConfig
    cls = recipes.config_class(recipe.workflow)
    assert set(kwargs) <= {f for f in cls.__dataclass_fields__}
    resolved = plan(TrainOptions(workflow=recipe.workflow, recipe=name, output_dir="unused"))
    config = build_config(resolved)  # TRL's own __post_init__ checks pass (1 process)
    assert isinstance(config, cls)
    assert config.report_to == [] or config.report_to in ("none", ["none"])


def test_recipe_values_match_the_guide():
    sft = recipes.load_recipe("stratos-qwen2.5-math-1.5b")
    assert sft.model == "Qwen/Qwen2.5-Math-1.5B" and sft.data["source"] == "HuggingFaceH4/Bespoke-Stratos-17k"
    c = sft.config
    assert (c["learning_rate"], c["num_train_epochs"], c["max_length"]) == (2e-5, 1, 4096)
    assert c["packing"] is True and c["bf16"] is True and c["packing_strategy"] == "wrapped"
    # open-r1 trains on full sequences and ends them with <|im_end|>
    assert c["assistant_only_loss"] is False and c["eos_token"] == "<|im_end|>"
    assert (sft.original["processes"], sft.original["per_device_prompts"],
            sft.original["gradient_accumulation_steps"]) == (8, 4, 4)

    cd = recipes.load_recipe("countdown-qwen2.5")
    assert cd.model == "Qwen/Qwen2.5-1.5B-Instruct" and cd.data["source"] == "Jiayi-Pan/Countdown-Tasks-3to4"
    assert cd.rewards == ["think_format", "countdown_equation"]
    c = cd.config
    assert (c["learning_rate"], c["lr_scheduler_type"], c["warmup_steps"], c["beta"]) == (5e-7, "cosine", 0.03, 0.001)
    assert (c["num_generations"], c["max_steps"], c["max_completion_length"], c["bf16"]) == (8, 450, 1024, True)
    assert (c["loss_type"], c["temperature"]) == ("grpo", 0.9)
    assert cd.speed == {"attn_implementation": "flash_attention_2", "use_vllm": True}

    vl = recipes.load_recipe("r1v-clevr-qwen2-vl-2b")
    assert vl.model == "Qwen/Qwen2-VL-2B-Instruct" and vl.data["source"] == "leonardPKU/clevr_cogen_a_train"
    assert vl.rewards == ["count_accuracy", "think_format"] and vl.processor["max_pixels"] == 401408
    c = vl.config
    assert (c["num_generations"], c["max_completion_length"], c["num_train_epochs"]) == (8, 512, 2)
    assert (c["loss_type"], c["temperature"], c["beta"], c["learning_rate"]) == ("grpo", 1.0, 0.04, 1e-6)
    for recipe in (sft, cd, vl):  # the batch layout comes from the process count, not from the recipe
        assert not {"per_device_train_batch_size", "gradient_accumulation_steps", "generation_batch_size"} & set(
            recipe.config)


def test_overrides_flags_and_rewards_are_applied(tmp_path: Path):
    data = tmp_path / "d.jsonl"
    data.write_text("{}\n")
    resolved = plan(TrainOptions(workflow="grpo", model="m", data=str(data), output_dir=str(tmp_path),
                                 sets=["max_steps=3", "config.beta=0.01", "data.max_prompt_tokens=99", "bf16=false"],
                                 rewards=["think_format:0.5", "countdown_equation"]))
    kw = resolved.config_kwargs
    assert (kw["max_steps"], kw["beta"], kw["bf16"], kw["report_to"]) == (3, 0.01, False, "none")
    assert kw["reward_weights"] == [0.5, 1.0]
    assert resolved.recipe.model == "m" and resolved.recipe.data["max_prompt_tokens"] == 99
    assert [r.__name__ for r in resolved.rewards] == ["think_format", "countdown_equation"]


def test_trl_style_flags_reach_the_config():
    result = _invoke("train", "grpo", "--model", NO_MODEL, "--dry-run",
                     "--learning_rate", "1e-6", "--max_steps=7", "--use-vllm", "--vllm-mode", "server")
    assert result.exit_code == 0, result.output
    config = json.loads(result.stdout)["config"]
    assert (config["learning_rate"], config["max_steps"], config["use_vllm"], config["vllm_mode"]) == (
        1e-6, 7, True, "server")


def test_wrong_typed_and_unknown_fields_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"learning_rate: expected float, got str 'fast'"):
        plan(TrainOptions(workflow="sft", sets=["learning_rate=fast"]))
    with pytest.raises(ConfigError, match=r"has no field 'max_prompt_length'"):
        plan(TrainOptions(workflow="grpo", sets=["max_prompt_length=256"]))


def _bad(tmp_path: Path, *args: str) -> str:
    result = CliRunner().invoke(main, ["train", *args])
    assert result.exit_code != 0
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output and "Loading weights" not in result.output
    return lines[0]


def test_bad_input_fails_in_one_line_before_any_model_loads(tmp_path: Path):
    good = tmp_path / "cd.jsonl"
    good.write_text(json.dumps({"target": 6, "nums": [1, 2, 3]}) + "\n")
    nocol = tmp_path / "nocol.jsonl"
    nocol.write_text(json.dumps({"target": 6, "numbers": [1, 2, 3]}) + "\n")
    base = ("grpo", "--model", NO_MODEL, "-o", str(tmp_path / "out"))

    assert "does not exist" in _bad(tmp_path, *base, "--data", str(tmp_path / "missing.jsonl"))
    assert "missing column(s) nums" in _bad(tmp_path, *base, "--data", str(nocol))
    assert "Unknown reward 'think_fromat'" in _bad(tmp_path, *base, "--data", str(good), "--reward", "think_fromat")
    assert "Unknown recipe 'countdown'" in _bad(tmp_path, *base, "--recipe", "countdown", "--data", str(good))
    assert "expected int" in _bad(tmp_path, *base, "--data", str(good), "--set", "max_steps=many")
    assert "grpo" in _bad(tmp_path, "sft", "--recipe", "countdown-qwen2.5", "--data", str(good))
    # TRL's own consistency check (generation batch vs num_generations) also fails before the model loads
    assert "num_generations" in _bad(tmp_path, *base, "--data", str(good), "--num_generations", "3",
                                     "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1")
    stratos = tmp_path / "s.jsonl"
    stratos.write_text(json.dumps({"system": "s", "turns": []}) + "\n")
    assert "missing column(s) conversations" in _bad(tmp_path, "sft", "--model", NO_MODEL, "--data", str(stratos))


def test_accelerate_relaunch_is_an_argument_list():
    cmd = launch_command("grpo", ["--model", "m", "--launcher", "accelerate", "--cpu", "--num-processes", "2",
                                  "--max_steps", "2"], "cpu", num_processes=2, cpu=True)
    assert cmd[1:3] == ["-m", "accelerate.commands.launch"]
    assert cmd[cmd.index("--num_processes") + 1] == "2" and "--cpu" not in cmd
    assert Path(cmd[cmd.index("--config_file") + 1]).is_file()
    tail = cmd[cmd.index("r1h.harness.cli.main"):]
    assert tail == ["r1h.harness.cli.main", "train", "grpo", "--model", "m", "--max_steps", "2", "--set", "use_cpu=true"]
    assert strip_launch_options(["--launcher=accelerate", "--x", "1"]) == ["--x", "1"]
    with pytest.raises(ConfigError, match="unknown accelerate config"):
        launch_command("grpo", [], "zero9")
