"""A user error is one line, before anything slow and without leftovers (issue 18, items 11-13)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from r1h.harness.cli.main import main


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith("warning:")]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


def _eval_error(tmp_path, *args: str) -> str:
    """``r1h eval`` that must fail in one line (exit 1) and leave no run folder; returns the line."""
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["eval", "--bench", "countdown", "--limit", "1", *args, "--output", str(out),
                                    "--no-progress"])
    assert res.exit_code == 1, res.output
    assert not out.exists()
    return _one_error_line(res.output)


# -- 11: device=cuda on a CPU-only torch ------------------------------------------------------------------------------
def test_cuda_device_on_a_cpu_torch_is_one_line_before_loading(tmp_path, monkeypatch):
    import torch
    import transformers

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_load)
    line = _eval_error(tmp_path, "--backend-arg", "device=cuda")
    assert "device=cuda" in line and "CUDA" in line and "device=cpu" in line


def test_unknown_device_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(main, ["eval", "--bench", "countdown", "--limit", "1", "--backend-arg", "device=gpu",
                                    "--output", str(tmp_path / "run")])
    assert res.exit_code == 2, res.output
    assert "device=gpu" in res.output.splitlines()[-1]


# -- 12: a hub model id while the hub is unreachable ------------------------------------------------------------------
def test_offline_hub_model_fails_fast_with_a_hint_and_no_run_folder(tmp_path, unreachable_hub):
    line = _eval_error(tmp_path, "--model", "someorg/some-model")
    assert "someorg/some-model" in line and "HF_HUB_OFFLINE=1" in line and "local folder" in line


# -- 13: distill generate --backend gold, distill filter /nonexistent, score -o ----------------------------------------
def test_distill_generate_with_the_gold_backend_says_why_and_leaves_nothing(tmp_path):
    questions = tmp_path / "q.jsonl"
    questions.write_text(json.dumps({"problem": "1+1?", "answer": "2"}) + "\n")
    out = tmp_path / "gen"
    res = CliRunner().invoke(main, ["distill", "generate", "--questions", str(questions), "--backend", "gold", "-o",
                                    str(out), "--no-progress"])
    assert res.exit_code == 1, res.output
    line = _one_error_line(res.output)
    assert "--backend gold" in line and "teacher" in line and "needs_reference" not in line
    assert not (out / "run.json").exists()


def test_distill_filter_on_a_missing_path_says_so(tmp_path):
    res = CliRunner().invoke(main, ["distill", "filter", str(tmp_path / "nonexistent"), "--reward", "math_accuracy",
                                    "-o", str(tmp_path / "sft")])
    assert res.exit_code == 1, res.output
    line = _one_error_line(res.output)
    assert "no such file or folder" in line and "expected" not in line


def test_score_into_a_missing_folder_fails_before_grading(tmp_path):
    src = tmp_path / "data.jsonl"
    src.write_text(json.dumps({"completion": "\\boxed{1}", "answer": "1"}) + "\n")
    res = CliRunner().invoke(main, ["score", str(src), "--reward", "math_accuracy", "-o",
                                    str(tmp_path / "nowhere" / "dir" / "out.jsonl"), "--no-progress"])
    assert res.exit_code == 1, res.output
    line = _one_error_line(res.output)
    assert "nowhere" in line and "does not exist" in line


def test_score_to_stdout(tmp_path):
    src = tmp_path / "data.jsonl"
    src.write_text("".join(json.dumps({"completion": f"\\boxed{{{i}}}", "answer": "1"}) + "\n" for i in range(3)))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    res = subprocess.run([sys.executable, "-m", "r1h.harness.cli.main", "score", str(src), "--reward", "math_accuracy",
                          "-o", "-", "--no-progress"], capture_output=True, text=True, cwd=tmp_path, env=env,
                         timeout=300)
    assert res.returncode == 0, res.stderr
    rows = [json.loads(line) for line in res.stdout.splitlines()]
    assert [r["score"] for r in rows] == [0.0, 1.0, 0.0]
    assert not (tmp_path / "-").exists()
    assert "mean 0.3333" in res.stderr and "wrote stdout" in res.stderr
