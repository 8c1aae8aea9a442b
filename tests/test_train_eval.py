"""Evaluation during training is ``r1h eval``: same pipeline, sampling and metric names, logged through the trainer.

A tiny SFT run (2-layer Qwen2 built from a config, CPU) evaluates Countdown at step 2 with the protocol's sampling
(temperature 0.6, not greedy), n=2, 4 problems, 16 new tokens; the trainer also saves ``checkpoint-2``. ``r1h eval``
on that checkpoint with the same flags must give the same metrics and the same sample texts."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from r1h.trainers import sft
from r1h.trainers.common import TrainOptions, plan
from r1h.trainers.evaluation import log_metrics

SETS = ["activation_checkpointing=false", "logging_steps=1", "report_to=none", "seed=0", "max_steps=2",
        "max_length=96", "per_device_train_batch_size=4", "gradient_accumulation_steps=1", "learning_rate=3e-3",
        "save_steps=2"]


def _stratos_file(path: Path, n: int = 8) -> Path:
    rows = [{"system": "You are a helpful assistant.", "conversations": [
        {"from": "user", "value": f"What is {a} + 2?"},
        {"from": "assistant", "value": f"<think> {a} + 2 = {a + 2} </think> <answer> {a + 2} </answer>"}]}
        for a in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _samples(run: Path) -> list[tuple[str, int, str, bool]]:
    lines = (run / "samples" / "countdown.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines if line.strip()]
    return sorted((r["id"], r["sample_index"], r["completion"], r["correct"]) for r in records)


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory) -> Path:
    from r1h.trainers.tiny import build_text_model

    return build_text_model(tmp_path_factory.mktemp("tiny") / "qwen2")


def test_in_training_eval_equals_r1h_eval_on_the_saved_checkpoint(tiny_text: Path, tmp_path: Path):
    out = tmp_path / "sft"
    resolved = plan(TrainOptions(workflow="sft", model=str(tiny_text), data=str(_stratos_file(tmp_path / "d.jsonl")),
                                 output_dir=str(out), sets=SETS, eval_bench="countdown", eval_every=2, eval_limit=4,
                                 eval_n=2, eval_max_tokens=16))
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):  # what a report_to integration (TensorBoardCallback, WandbCallback) is handed
        seen: list[dict] = []

        def on_log(self, args, state, control, logs=None, **kwargs):
            self.seen.append(dict(logs or {}))

    trainer = sft.run(resolved, callbacks=[Recorder()])

    # logged once, through Trainer.log (what every report_to integration receives), under r1h eval's metric names
    logged = [h for h in trainer.state.log_history if "eval/countdown/pass@1" in h]
    assert len(logged) == 1 and logged[0]["step"] == 2
    handed = [h for h in Recorder.seen if "eval/countdown/pass@1" in h]
    assert len(handed) == 1 and {k: v for k, v in handed[0].items() if k.startswith("eval/")} == {
        k: v for k, v in logged[0].items() if k.startswith("eval/")}
    assert logged[0]["eval/countdown/n_samples"] == 2 and logged[0]["eval/countdown/n_problems"] == 4
    assert "eval/countdown/pass@2" in logged[0] and "eval/countdown/maj@n" in logged[0]
    in_training = out / "r1h-eval" / "step-2"
    trained = json.loads((in_training / "results.json").read_text())
    assert trained["complete"] and trained["config"]["benchmarks"]["countdown"]["generation"]["temperature"] == 0.6
    assert not (out / "r1h-eval" / "step-2-weights").exists()  # the temporary weights are removed

    # r1h eval, from the command line, on the checkpoint the trainer saved at the same step, with the same flags
    offline = tmp_path / "offline"
    done = subprocess.run([sys.executable, "-m", "r1h.harness.cli.main", "eval", "--model", str(out / "checkpoint-2"),
                           "--bench", "countdown", "--backend", "transformers", "--limit", "4", "-n", "2",
                           "--max-tokens", "16", "--seed", "0", "--output", str(offline), "--no-progress"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    evaluated = json.loads((offline / "results.json").read_text())
    assert trained["config"]["benchmarks"] == evaluated["config"]["benchmarks"]
    assert trained["benchmarks"]["countdown"] == evaluated["benchmarks"]["countdown"]
    assert {k: v for k, v in logged[0].items() if k.startswith("eval/")} == log_metrics(
        "countdown", evaluated["benchmarks"]["countdown"])
    texts = _samples(in_training)
    assert len(texts) == 8 and texts == _samples(offline)
    assert len({t for _, _, t, _ in texts}) > 1  # sampled, not one greedy answer repeated
