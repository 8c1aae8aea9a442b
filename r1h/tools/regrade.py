"""Regrade a finished run's saved completions with several graders and show where they disagree.

- ``r1h``: the benchmark's registered reward, through the batch grader (``grading.grade``).
- ``lighteval`` / ``lm-eval`` (and the variants ``lm-eval:math_verify``, ``lm-eval:hendrycks``): those packages' own
  extraction and comparison functions, each in its own virtualenv with a per-item budget (:mod:`r1h.tools.foreign`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import ConfigError, RunError
from r1h.tools.compare import Run
from r1h.tools.foreign import DEFAULT_ITEM_TIMEOUT_S, FOREIGN, GRADER_NAMES, Item, Verdict, ensure_env, run_foreign

__all__ = ["FOREIGN", "GRADER_NAMES", "Item", "Verdict", "ensure_env", "regrade", "run_foreign", "to_markdown",
           "write_outputs"]


# -- r1h grader -------------------------------------------------------------------------------------------------------
def grade_r1h(items: list[Item], reward_name: str) -> dict:
    from r1h import get_reward

    reward = get_reward(reward_name)
    completions = [it.completion for it in items]
    prompts = [it.prompt for it in items]
    rows = [{k: it.columns[k] for k in reward.columns if k in it.columns} for it in items]
    from r1h.harness.grading.pool import grade

    results = grade(reward, completions, prompts=prompts, rows=rows)
    for it, res in zip(items, results, strict=True):
        correct = None if res.score is None else res.score >= 1.0 - 1e-9
        error = getattr(res, "error", None) or ("timeout" if getattr(res, "timed_out", False) else None)
        it.verdicts["r1h"] = Verdict(correct, res.extracted, error)
    from r1h import __version__

    return {"package": "r1h", "version": __version__, "reward": reward_name}


# -- the whole regrade ------------------------------------------------------------------------------------------------
def load_items(run: Run, bench: str, source: str | None) -> tuple[list[Item], str]:
    """The run's samples of ``bench`` joined with their gold columns and raw rows (loaded from the benchmark data)."""
    from r1h import get_benchmark

    benchmark = get_benchmark(bench)
    samples = list(run.samples(bench))  # every sample is regraded: the completions are needed together
    if not samples:
        raise RunError(f"{run.samples_path(bench)}: no saved samples to regrade")
    if source is None:  # where r1h eval loaded it from (config.benchmarks.NAME.source, or config.data.NAME)
        config = run.results.get("config") or {}
        entry = (config.get("benchmarks") or {}).get(bench) or {}
        source = (entry.get("source") if isinstance(entry, dict) else None) or (config.get("data") or {}).get(bench)
    problems = {str(s.id): s for s in benchmark.load(source)}
    items: list[Item] = []
    missing = 0
    for line in samples:
        problem = problems.get(str(line.get("id")))
        if problem is None:
            missing += 1
            continue
        recorded = line.get("correct")
        items.append(Item(
            benchmark=bench, id=str(line["id"]), sample_index=int(line.get("sample_index", 0)),
            completion=str(line.get("completion") or ""), prompt=line.get("prompt"),
            recorded=None if recorded is None else bool(recorded),
            columns=dict(problem.columns), row=dict(problem.raw or problem.columns),
        ))
    if not items:
        raise RunError(f"{run.samples_path(bench)}: none of the sample ids are in the {bench} data "
                       f"({source or benchmark.default_source}); pass --data {bench}=SOURCE")
    if missing:
        print(f"r1h: warning: {missing} samples of {bench} have ids not in its data; skipped", file=sys.stderr)
    return items, benchmark.reward


def pass_at_1(items: list[Item], grader: str) -> float:
    """Mean over problems of the mean correctness over samples (None/errors count as wrong)."""
    per: dict[str, list[float]] = {}
    for it in items:
        verdict = it.verdicts.get(grader) if grader != "recorded" else Verdict(it.recorded)
        per.setdefault(it.id, []).append(1.0 if verdict and verdict.correct else 0.0)
    return sum(sum(v) / len(v) for v in per.values()) / len(per) if per else float("nan")


def disagreements(items: list[Item], graders: list[str]) -> list[dict[str, Any]]:
    rows = []
    for it in items:
        verdicts = {g: it.verdicts[g] for g in graders if g in it.verdicts}
        if len(graders) == 1:  # one grader: compare it with the verdict recorded at eval time
            verdicts["recorded"] = Verdict(it.recorded)
        if len({bool(v.correct) for v in verdicts.values()}) > 1:
            rows.append({
                "benchmark": it.benchmark, "id": it.id, "sample_index": it.sample_index,
                "gold": it.columns, "recorded_correct": it.recorded,
                "graders": {g: {"correct": v.correct, "extracted": v.extracted, "error": v.error}
                            for g, v in verdicts.items() if g != "recorded"},
                "completion_tail": it.completion[-300:],
            })
    return rows


def regrade(run: Run, graders: list[str], *, benches: list[str] | None = None, data: dict[str, str] | None = None,
            pythons: dict[str, str] | None = None, log=print, progress: bool = False,
            console: Any = None, item_timeout: float = DEFAULT_ITEM_TIMEOUT_S) -> dict[str, Any]:
    """Grade every saved sample of the run with each grader; the summary plus the per-item verdicts."""
    unknown = [g for g in graders if g not in GRADER_NAMES]
    if unknown:
        raise ConfigError(f"unknown grader {unknown[0]!r}; known: {', '.join(GRADER_NAMES)}")
    benches = benches or list(run.benchmarks)
    for bench in benches:
        if bench not in run.benchmarks:
            raise RunError(f"{run.path}: the run has no benchmark {bench!r} (it has {', '.join(run.benchmarks)})")
    pythons = dict(pythons or {})
    summary: dict[str, Any] = {"run": str(run.path), "model": run.model, "graders": {}, "benchmarks": {}}
    all_items: list[Item] = []
    from r1h.harness.eval.progress import live_count

    for bench in benches:
        items, reward_name = load_items(run, bench, (data or {}).get(bench))
        with live_count(f"regrade {bench}", len(items) * len(graders), unit="verdicts", console=console,
                        enabled=progress) as count:
            for name in graders:
                count.describe(f"regrade {bench} with {name}")
                if name == "r1h":
                    summary["graders"]["r1h"] = grade_r1h(items, reward_name)
                    count.count(len(items))
                    continue
                grader = FOREIGN[name]
                python = pythons.get(name) or pythons.get(name.split(":")[0])
                python = ensure_env(grader, python, log=log)
                pythons[name] = python
                log(f"grading {len(items)} {bench} samples with {name} ...")
                seen = [0]

                def one(seen=seen, count=count):
                    seen[0] += 1
                    count.count(1)

                summary["graders"][name] = run_foreign(grader, items, python, item_timeout=item_timeout, log=log,
                                                       on_item=one)
                count.count(max(0, len(items) - seen[0]))  # the items r1h timed out itself send no line
        summary["benchmarks"][bench] = {
            "n_samples": len(items), "n_problems": len({it.id for it in items}),
            "pass@1": {"recorded": pass_at_1(items, "recorded"), **{g: pass_at_1(items, g) for g in graders}},
            "errors": {g: sum(1 for it in items if it.verdicts[g].error) for g in graders},
            "timeouts": {g: sum(1 for it in items if (it.verdicts[g].error or "").startswith("timeout"))
                         for g in graders},
        }
        all_items.extend(items)
    rows = disagreements(all_items, graders)
    for bench in benches:
        summary["benchmarks"][bench]["disagreements"] = sum(1 for r in rows if r["benchmark"] == bench)
    return {"summary": summary, "items": all_items, "disagreements": rows}


def to_markdown(summary: dict[str, Any]) -> str:
    graders = list(summary["graders"])
    lines = [f"Regrade of {summary['run']} ({summary['model']}), pass@1 in percent.", "",
             "| benchmark | samples | recorded | " + " | ".join(graders) + " | disagreements |",
             "| --- | ---: | ---: | " + " | ".join("---:" for _ in graders) + " | ---: |"]
    for bench, entry in summary["benchmarks"].items():
        scores = " | ".join(f"{100 * entry['pass@1'][g]:.2f}" for g in graders)
        lines.append(f"| {bench} | {entry['n_samples']} | {100 * entry['pass@1']['recorded']:.2f} | {scores} | "
                     f"{entry['disagreements']} |")
    versions = [f"{g}: {meta.get('version', '')} {meta.get('reward', '')}".strip() for g, meta in
                summary["graders"].items()]
    lines += ["", "Graders: " + "; ".join(versions)]
    timeouts = [f"{bench} {g}: {n}" for bench, entry in summary["benchmarks"].items()
                for g, n in entry.get("timeouts", {}).items() if n]
    if timeouts:
        lines.append("Samples past the per-item budget (counted wrong): " + "; ".join(timeouts))
    return "\n".join(lines) + "\n"


def write_outputs(result: dict[str, Any], out_dir: Path, force: bool = False) -> None:
    names = ["regrade.json", "disagreements.jsonl", "verdicts.jsonl", "report.md"]
    if not force and any((out_dir / n).exists() for n in names):
        raise ConfigError(f"{out_dir} already holds a regrade; use --force to overwrite it")
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "regrade.json").write_text(json.dumps(result["summary"], indent=2, default=str) + "\n")
    with open(out_dir / "disagreements.jsonl", "w", encoding="utf-8") as fh:
        for row in result["disagreements"]:
            fh.write(json.dumps(row, default=str) + "\n")
    with open(out_dir / "verdicts.jsonl", "w", encoding="utf-8") as fh:
        for it in result["items"]:
            fh.write(json.dumps({"benchmark": it.benchmark, "id": it.id, "sample_index": it.sample_index,
                                 "recorded": it.recorded,
                                 **{g: {"correct": v.correct, "extracted": v.extracted, "error": v.error}
                                    for g, v in it.verdicts.items()}}, default=str) + "\n")
    (out_dir / "report.md").write_text(to_markdown(result["summary"]))
