"""Write run directories in the documented ``r1h eval`` format (results.json, run.json, samples/NAME.jsonl), so the
compare/check/regrade tests do not depend on the runner."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write_run(
    path: Path,
    benchmarks: dict[str, dict[str, list[bool]]],
    *,
    model: str = "test-model",
    version: str = "1",
    versions: dict[str, str] | None = None,
    completions: dict[str, dict[str, list[str]]] | None = None,
    extra: dict[str, dict[str, Any]] | None = None,
) -> Path:
    """``benchmarks``: NAME -> {problem id -> [correct per sample]}. pass@1 in results.json is the mean."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "samples").mkdir(exist_ok=True)
    results: dict[str, Any] = {"model": model, "config": {"temperature": 0.6}, "versions": {"r1h": "0.1.0"},
                               "benchmarks": {}}
    for bench, problems in benchmarks.items():
        lines, per_problem = [], []
        for pid, verdicts in problems.items():
            per_problem.append(sum(verdicts) / len(verdicts))
            for i, ok in enumerate(verdicts):
                text = (completions or {}).get(bench, {}).get(pid, [None] * len(verdicts))[i]
                lines.append({
                    "id": pid, "sample_index": i, "prompt": [{"role": "user", "content": f"problem {pid}"}],
                    "completion": text if text is not None else ("right" if ok else "wrong"),
                    "extracted": None, "reward": 1.0 if ok else 0.0, "correct": bool(ok),
                    "finish_reason": "stop", "num_tokens": 5,
                })
        n = len(per_problem)
        score = sum(per_problem) / n if n else 0.0
        se = (sum((v - score) ** 2 for v in per_problem) / max(1, n - 1)) ** 0.5 / max(1, n) ** 0.5
        entry = {
            "pass@1": score, "pass@1_ci95": [max(0.0, score - 1.96 * se), min(1.0, score + 1.96 * se)],
            "pass@k": {"1": score}, "maj@n": score, "n_samples": max((len(v) for v in problems.values()), default=0),
            "n_problems": n, "timeouts": 0, "truncated": 0,
            "version": (versions or {}).get(bench, version),
        }
        entry.update((extra or {}).get(bench, {}))
        results["benchmarks"][bench] = entry
        with open(path / "samples" / f"{bench}.jsonl", "w", encoding="utf-8") as fh:
            for line in lines:
                fh.write(json.dumps(line) + "\n")
    (path / "results.json").write_text(json.dumps(results, indent=2), encoding="utf-8")
    (path / "run.json").write_text(json.dumps({"model": model, "config": results["config"]}), encoding="utf-8")
    return path
