"""Never overwrite or drop data without ``--force`` and a visible line (issue 18, items 1-6): a foreign --output
folder, a gold column under another name, a file without completions, Ctrl-C on ``r1h score``, the mode of the
JSON files, and ``r1h check`` on a partial run."""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

from click.testing import CliRunner
from helpers.rundirs import write_run

from r1h.harness.cli.main import main

GOLD_EVAL = ["eval", "--backend", "gold", "--bench", "countdown", "--limit", "2", "-n", "1", "--no-progress"]


def _one_error_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), output
    return lines[0]


# -- 1: eval --output on a folder that is not an r1h run ----------------------------------------------------------------
def test_eval_refuses_a_folder_that_is_not_a_run(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "report.md").write_text("my notes\n")
    (out / "results.json").write_text('{"mine": 1}\n')
    res = CliRunner().invoke(main, [*GOLD_EVAL, "--output", str(out)])
    assert res.exit_code == 1, res.output
    line = _one_error_line(res.output)
    assert str(out) in line and "--force" in line and "not an r1h run" in line
    assert (out / "report.md").read_text() == "my notes\n"
    assert (out / "results.json").read_text() == '{"mine": 1}\n'
    assert sorted(p.name for p in out.iterdir()) == ["report.md", "results.json"]  # nothing added either


def test_eval_force_writes_into_a_foreign_folder_and_says_so(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me\n")
    res = CliRunner().invoke(main, [*GOLD_EVAL, "--output", str(out), "--force"])
    assert res.exit_code == 0, res.output
    assert "--force" in res.output and "not an r1h run" in res.output
    assert (out / "notes.txt").read_text() == "keep me\n"
    assert json.loads((out / "results.json").read_text())["benchmarks"]["countdown"]["pass@1"] == 1.0


def test_eval_resumes_its_own_run_and_fills_an_empty_folder_without_force(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    assert CliRunner().invoke(main, [*GOLD_EVAL, "--output", str(empty)]).exit_code == 0
    res = CliRunner().invoke(main, [*GOLD_EVAL, "--output", str(empty)])  # a finished run: resumed, no --force
    assert res.exit_code == 0, res.output


# -- 2: distill filter with the gold column under another name -----------------------------------------------------------
def _traces(tmp_path: Path, gold_key: str) -> Path:
    folder = tmp_path / "gen" / "samples"
    folder.mkdir(parents=True)
    row = {"id": "q0", "sample_index": 0, "question": "1+1?", "system": None, "completion": "\\boxed{2}",
           "finish_reason": "stop", "num_tokens": 3, "row": {gold_key: "2"}}
    (folder / "traces.jsonl").write_text(json.dumps(row) + "\n")
    return tmp_path / "gen"


def test_distill_filter_refuses_traces_without_the_rewards_gold_column(tmp_path):
    gen = _traces(tmp_path, "gold")
    res = CliRunner().invoke(main, ["distill", "filter", str(gen), "--reward", "math_accuracy", "-o",
                                    str(tmp_path / "sft")])
    assert res.exit_code == 1, res.output
    line = _one_error_line(res.output)
    assert "'answer'" in line and "gold" in line and "--map" in line
    assert not (tmp_path / "sft").exists()


def test_distill_filter_map_feeds_the_gold_column(tmp_path):
    gen = _traces(tmp_path, "gold")
    res = CliRunner().invoke(main, ["distill", "filter", str(gen), "--reward", "math_accuracy", "--map",
                                    "answer=gold", "-o", str(tmp_path / "sft")])
    assert res.exit_code == 0, res.output
    assert "kept 1 of 1" in res.output


# -- 3: score with no completion column ----------------------------------------------------------------------------------
def test_score_without_a_completion_column_is_an_error_not_an_empty_file(tmp_path):
    src = tmp_path / "data.jsonl"
    src.write_text("".join(json.dumps({"response": "\\boxed{1}", "answer": "1"}) + "\n" for _ in range(3)))
    res = CliRunner().invoke(main, ["score", str(src), "--reward", "math_accuracy", "--no-progress"])
    assert res.exit_code == 1, res.output
    line = _one_error_line(res.output)
    assert "'completion'" in line and "response" in line
    assert not (tmp_path / "data.scored.jsonl").exists()


# -- 4: Ctrl-C on score ----------------------------------------------------------------------------------------------
def test_score_interrupted_exits_130_and_keeps_the_graded_rows(tmp_path):
    src = tmp_path / "big.jsonl"
    rows = 60000
    with open(src, "w") as fh:
        for i in range(rows):
            fh.write(json.dumps({"completion": f"so \\boxed{{\\frac{{{i}}}{{7}}}}", "answer": f"{i}/7"}) + "\n")
    out = tmp_path / "big.scored.jsonl"
    env = {**os.environ, "R1H_PROGRESS_INTERVAL_S": "0.2", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "r1h.harness.cli.main", "score", str(src), "--reward", "math_accuracy",
                             "--workers", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, text=True)
    try:
        deadline = time.monotonic() + 120
        seen = ""
        while time.monotonic() < deadline:  # wait for a progress line with some rows graded
            line = proc.stderr.readline()
            seen += line
            if not line:
                break
            if "grading:" in line and not line.split("grading: ")[1].startswith("0/"):
                break
        assert proc.poll() is None, seen
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, seen + err
    assert "Aborted!" not in err and "Traceback" not in err
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert 0 < len(kept) < rows
    assert all(r["score"] == 1.0 for r in kept)
    assert f"{len(kept)} of {rows}" in err and str(out) in err


# -- 5: file modes ------------------------------------------------------------------------------------------------------
def test_results_and_run_json_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        res = CliRunner().invoke(main, [*GOLD_EVAL, "--output", str(tmp_path / "run")])
    finally:
        os.umask(old)
    assert res.exit_code == 0, res.output
    for name in ("results.json", "run.json", "report.md", "samples/countdown.jsonl"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == 0o644, name


# -- 6: check on a partial run ------------------------------------------------------------------------------------------
def test_check_fails_a_partial_run_against_a_fuller_baseline(tmp_path):
    full = write_run(tmp_path / "full", {"math500": {f"p{i}": [True, False, True, True] for i in range(40)}})
    baseline = tmp_path / "baseline.json"
    assert CliRunner().invoke(main, ["baseline", "update", str(full), "--baseline", str(baseline)]).exit_code == 0
    partial = write_run(tmp_path / "partial", {"math500": {f"p{i}": [True] for i in range(20)}})
    res = CliRunner().invoke(main, ["check", str(partial), "--baseline", str(baseline)])
    assert res.exit_code == 1, res.output
    assert "PARTIAL" in res.output and "20 problems x 1" in res.output and "40 problems x 4" in res.output
    assert "OK" not in res.output.splitlines()[-1]
    same = CliRunner().invoke(main, ["check", str(full), "--baseline", str(baseline)])
    assert same.exit_code == 0, same.output
