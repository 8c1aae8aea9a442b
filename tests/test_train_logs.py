"""What a SLURM log of ``r1h train`` holds: r1h's own lines (the plan, the data preparation, one line per step), and
no tqdm bars ("Loading weights", the trainer's step bar, "Writing model shards") or transformers FutureWarnings.

Runs the README's CPU smoke command ("Train on a CPU") in a subprocess, its output captured as a log would be."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    from r1h.trainers.tiny import build_text_model

    return build_text_model(tmp_path_factory.mktemp("tiny") / "qwen2")


def countdown_file(path: Path) -> Path:
    rng = random.Random(0)
    rows = ([rng.randint(1, 20) for _ in range(3)] for _ in range(24))
    path.write_text("".join(json.dumps({"target": sum(n), "nums": n}) + "\n" for n in rows))
    return path


def stratos_file(path: Path) -> Path:
    lines = []
    for a in range(1, 25):
        lines.append(json.dumps({"system": "You are a helpful assistant.", "conversations": [
            {"from": "user", "value": f"What is {a} + 1?"},
            {"from": "assistant", "value": f"<think> {a} + 1 = {a + 1} </think> <answer> {a + 1} </answer>"}]}))
    path.write_text("\n".join(lines) + "\n")
    return path


def train(args: list[str]) -> subprocess.CompletedProcess:
    env = {**os.environ, "R1H_LOAD_PLUGINS": "", "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for name in ("TQDM_DISABLE", "TRANSFORMERS_NO_ADVISORY_WARNINGS", "PYTHONWARNINGS", "TRANSFORMERS_VERBOSITY"):
        env.pop(name, None)  # the log a user gets, not one quietened by the test environment
    proc = subprocess.run([sys.executable, "-m", "r1h.harness.cli.main", "train", *args], env=env, capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def assert_clean_log(log: str) -> None:
    for noise in ("FutureWarning", "it/s]", "s/it]", "Writing model shards", "Loading weights", "warnings.warn("):
        assert noise not in log, f"{noise!r} in the training log:\n{log[-3000:]}"


def test_grpo_smoke_log_holds_r1h_progress_and_no_library_noise(tiny: Path, tmp_path: Path):
    """The README's command, as given (activation checkpointing on, as the recipe has it)."""
    data = countdown_file(tmp_path / "countdown.jsonl")
    proc = train(["grpo", "--model", str(tiny), "--data", str(data), "-o", str(tmp_path / "smoke"),
                  "--max_steps", "2", "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
                  "--num_generations", "4", "--max_completion_length", "16"])
    log = proc.stdout + proc.stderr
    assert_clean_log(log)
    assert "r1h train grpo: recipe countdown-qwen2.5" in proc.stderr
    assert "countdown prompts" in proc.stderr  # the data preparation's progress
    assert "r1h train: step 1/2" in proc.stderr and "r1h train: step 2/2" in proc.stderr
    assert "'rewards/countdown_equation/mean'" in proc.stdout  # the trainer's logged metrics stay
    assert f"checkpoint: {tmp_path / 'smoke'}" in proc.stdout
    assert (tmp_path / "smoke" / "model.safetensors").is_file()


def test_sft_smoke_log_holds_r1h_progress_and_no_library_noise(tiny: Path, tmp_path: Path):
    data = stratos_file(tmp_path / "stratos.jsonl")
    proc = train(["sft", "--model", str(tiny), "--data", str(data), "-o", str(tmp_path / "sft"), "--max_steps", "2",
                  "--per_device_train_batch_size", "4", "--gradient_accumulation_steps", "1",
                  "--set", "max_length=128"])
    assert_clean_log(proc.stdout + proc.stderr)
    assert "r1h train sft: recipe" in proc.stderr
    assert "r1h train: step 1/2" in proc.stderr and "r1h train: step 2/2" in proc.stderr
    assert (tmp_path / "sft" / "model.safetensors").is_file()


def test_a_real_error_still_reaches_the_log(tiny: Path, tmp_path: Path):
    """Quietening the libraries keeps errors: a bad setting is one line naming it, exit 1 or 2."""
    data = countdown_file(tmp_path / "countdown.jsonl")
    env = {**os.environ, "R1H_LOAD_PLUGINS": "", "HF_HUB_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "-m", "r1h.harness.cli.main", "train", "grpo", "--model", str(tmp_path / "none"),
                           "--data", str(data), "-o", str(tmp_path / "o"), "--max_steps", "1"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode != 0
    assert str(tmp_path / "none") in proc.stderr


def test_a_long_step_gets_heartbeat_lines(monkeypatch, capsys):
    """While a step runs longer than the interval, a line says which step is running (a SLURM log never looks hung)."""
    import time
    from types import SimpleNamespace

    from r1h.trainers.progress import step_lines

    monkeypatch.setenv("R1H_PROGRESS_INTERVAL_S", "0.05")
    config = SimpleNamespace(disable_tqdm=False)
    (callback,) = step_lines(SimpleNamespace(explicit=set()), config)
    assert config.disable_tqdm  # the trainer's tqdm bar gives way to these lines
    state = SimpleNamespace(is_world_process_zero=True, global_step=0, max_steps=4, logging_steps=1)
    callback.on_train_begin(None, state, None)
    try:
        deadline = time.monotonic() + 30
        while "step 1 running" not in capsys.readouterr().err:
            assert time.monotonic() < deadline, "no heartbeat line"
            time.sleep(0.05)
    finally:
        callback.on_train_end(None, state, None)
    state.global_step = 1
    callback.on_step_end(None, state, None)
    assert "r1h train: step 1/4, elapsed" in capsys.readouterr().err


def test_disable_tqdm_false_on_the_command_line_keeps_the_trainers_bar():
    from types import SimpleNamespace

    from r1h.trainers.progress import step_lines

    config = SimpleNamespace(disable_tqdm=False)
    assert step_lines(SimpleNamespace(explicit={"disable_tqdm"}), config) == [] and config.disable_tqdm is False
