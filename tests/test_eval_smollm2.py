"""The real thing: `r1h eval` with the embedded SmolLM2-135M-Instruct on a few offline Countdown problems, in a
subprocess, then every output file checked against the others."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import r1h
from r1h.harness.eval.metrics import pass_at_k


@pytest.mark.slow
def test_smollm2_countdown_end_to_end(smollm2, tmp_path: Path):
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "r1h.harness.cli.main", "eval", "--bench", "countdown", "--limit", "3", "-n", "2",
           "--max-tokens", "24", "--output", str(out), "--no-progress", "--backend-arg", "batch_size=8"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    results = json.loads((out / "results.json").read_text())
    bench = results["benchmarks"]["countdown"]
    lines = [json.loads(x) for x in (out / "samples" / "countdown.jsonl").read_text().splitlines()]

    # the sample file: every (problem, sample index) exactly once, with the documented keys
    keys = {"id", "sample_index", "prompt", "completion", "extracted", "reward", "correct", "finish_reason",
            "num_tokens"}
    assert all(keys <= set(line) for line in lines)
    pairs = [(line["id"], line["sample_index"]) for line in lines]
    assert len(pairs) == len(set(pairs)) == 6
    ids = sorted({p[0] for p in pairs})
    assert len(ids) == 3 and all(sorted(i for pid, i in pairs if pid == x) == [0, 1] for x in ids)

    # what was generated is what the benchmark asked, and what the model wrote
    benchmark = r1h.get_benchmark("countdown")
    samples = {s.id: s for s in benchmark.load(None, limit=3)}
    assert set(samples) == set(ids)
    for line in lines:
        prompt = line["prompt"]
        expected = benchmark.prompt(samples[line["id"]])
        assert prompt == expected or prompt == json.loads(json.dumps(expected))
        assert 0 < line["num_tokens"] <= 24
        assert line["finish_reason"] in ("stop", "length")
        assert isinstance(line["completion"], str) and line["completion"].strip()

    # grading in the file agrees with a fresh grading by the same reward
    reward = r1h.get_reward(benchmark.reward)
    rows = [samples[line["id"]].columns for line in lines]
    fresh = reward([line["completion"] for line in lines], prompts=[line["prompt"] for line in lines],
                   **{k: [r[k] for r in rows] for k in rows[0]})
    assert fresh == [line["reward"] for line in lines]
    assert [bool(line["correct"]) for line in lines] == [r == 1.0 for r in fresh]

    # results.json agrees with the sample file
    per_problem = {x: sum(1 for line in lines if line["id"] == x and line["correct"]) for x in ids}
    assert bench["n_problems"] == 3 and bench["n_samples"] == 2
    assert bench["pass@1"] == pytest.approx(sum(per_problem.values()) / 6)  # fractions in [0, 1]
    lo, hi = bench["pass@1_ci95"]
    assert lo <= bench["pass@1"] <= hi
    expect_p2 = sum(pass_at_k(2, c, 2) for c in per_problem.values()) / 3
    assert bench["pass@k"]["2"] == pytest.approx(expect_p2)
    assert bench["truncated"] == sum(1 for line in lines if line["finish_reason"] == "length")
    assert bench["version"] == benchmark.version
    assert results["model"]

    # the report and the plot exist and name the benchmark
    assert "countdown" in (out / "report.md").read_text()
    assert (out / "passk.png").stat().st_size > 0

    # rerunning the same command resumes: nothing is generated again, the files are unchanged
    before = (out / "samples" / "countdown.jsonl").read_text()
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "samples" / "countdown.jsonl").read_text() == before
