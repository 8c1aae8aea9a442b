"""`tox -e regression` in the normal suite: the gold run and the seeded tiny-model run match their baselines."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

JOB = Path(__file__).resolve().parent / "regression" / "run.py"


@pytest.mark.slow
def test_regression_job_passes_against_committed_baselines():
    proc = subprocess.run([sys.executable, str(JOB)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "OK: 4 benchmarks within tolerance" in proc.stdout
    assert "tiny-model completions unchanged" in proc.stdout


@pytest.mark.slow
def test_regression_job_fails_readably_when_a_score_moves(tmp_path):
    import json

    baseline = json.loads((JOB.parent / "baseline.json").read_text())
    baseline["benchmarks"] = {"math500": {**baseline["benchmarks"]["math500"], "pass@1": 0.5}}  # grading "changed"
    moved = tmp_path / "baseline.json"
    moved.write_text(json.dumps(baseline))
    run = tmp_path / "run"
    data = [a for b in ("math500",) for a in ("--data", f"{b}={JOB.parent / (b + '.jsonl')}")]
    cli = [sys.executable, "-m", "r1h.harness.cli.main"]
    subprocess.run([*cli, "eval", "--backend", "gold", "--bench", "math500", *data, "--output", str(run),
                    "--no-progress"], check=True, capture_output=True, timeout=300)
    proc = subprocess.run([*cli, "check", str(run), "--baseline", str(moved), "--z", "0", "--two-sided"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    row = next(line for line in proc.stdout.splitlines() if line.startswith("math500"))
    assert "+50.00" in row and "ok" not in row.split()[-1]
