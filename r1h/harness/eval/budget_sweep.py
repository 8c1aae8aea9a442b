"""``r1h eval --thinking-budget B1,B2,...``: one budget-forced run per budget, then accuracy against budget.

Each budget is a whole run of its own in ``OUT/budget-B`` (its own run.json fingerprint, so rerunning the same command
resumes every one of them), all on one backend (the model loads once). ``OUT/sweep.json`` holds, per budget and
benchmark, pass@1 with its 95% CI and the share of forced samples; ``OUT/budget_sweep.png`` plots pass@1 against the
budget with the accuracy-at-budget figure's mechanism (:func:`r1h.harness.eval.report.curve_figure`); ``OUT/sweep.md``
is the same in a table.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from r1h.harness.eval.plan import EvalOptions
from r1h.harness.eval.store import atomic_write

SWEEP_JSON, SWEEP_MD, SWEEP_PNG = "sweep.json", "sweep.md", "budget_sweep.png"


def budget_dir(out: Path, budget: int) -> Path:
    return out / f"budget-{budget}"


def summarize(runs: Mapping[int, Mapping[str, Any]]) -> dict[str, Any]:
    """sweep.json's content from each budget's results.json content."""
    first = next(iter(runs.values()), {})
    rows: dict[str, dict[str, Any]] = {}
    for budget, results in runs.items():
        for name, m in (results.get("benchmarks") or {}).items():
            tb = m.get("thinking_budget") or {}
            rows.setdefault(name, {})[str(budget)] = {
                "pass@1": m.get("pass@1"), "pass@1_ci95": m.get("pass@1_ci95"), "forced_rate": tb.get("forced_rate"),
                "answer_cap": tb.get("answer_cap"), "cue": tb.get("cue"), "complete": m.get("complete"),
                "tokens_median": ((m.get("lengths") or {}).get("tokens") or {}).get("median"),
            }
    return {"model": first.get("model"), "budgets": [int(b) for b in runs], "benchmarks": rows,
            "complete": all(r.get("complete") for r in runs.values())}


def sweep_figure(sweep: Mapping[str, Any]):
    from r1h.harness.eval.report import curve_figure

    curves = [(name, {b: v["pass@1"] for b, v in per.items() if v.get("pass@1") is not None})
              for name, per in (sweep.get("benchmarks") or {}).items()]
    return curve_figure(curves, xlabel="thinking budget B (tokens; s1 budget forcing)", ylabel="pass@1 (%)",
                        title=f"accuracy against thinking budget: {sweep.get('model', '')}")


def markdown(sweep: Mapping[str, Any]) -> str:
    def pct(v: Any) -> str:
        return "-" if v is None else f"{100.0 * float(v):.2f}"

    lines = [f"# r1h thinking-budget sweep: {sweep.get('model', '')}", "",
             "| benchmark | budget | pass@1 (%) | 95% CI | forced (%) | tokens median |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, per in (sweep.get("benchmarks") or {}).items():
        for budget, v in per.items():
            ci = v.get("pass@1_ci95")
            ci_text = "-" if not ci else f"[{pct(ci[0])}, {pct(ci[1])}]"
            median = v.get("tokens_median")
            median_text = "-" if median is None else f"{median:.0f}"
            lines.append(f"| {name} | {budget} | {pct(v.get('pass@1'))} | {ci_text} | {pct(v.get('forced_rate'))} | "
                         f"{median_text} |")
    lines += ["", "Each budget is a run of its own in budget-B/; forced: the share of samples whose thinking was closed "
              "at B tokens and answered after the cue (s1's budget forcing).", ""]
    return "\n".join(lines)


def check_budgets(opts: EvalOptions, budgets: list[int]) -> None:
    """Every budget against the flags and each benchmark's max_tokens, before anything runs (no data is loaded)."""
    import r1h
    from r1h.harness.eval.plan import generation_config, resolve_benchmark_names, thinking_budget

    for budget in budgets:
        one = dataclasses.replace(opts, thinking_budget=budget)
        one.validate()
        for name in resolve_benchmark_names(opts.bench):
            benchmark = r1h.get_benchmark(name)
            thinking_budget(benchmark, generation_config(benchmark, one), one)


def run_sweep(opts: EvalOptions, budgets: list[int], console: Any = None) -> dict[str, Any]:
    """Run ``opts`` once per budget into ``OUT/budget-B`` and write the sweep's summary and plot into ``OUT``."""
    import r1h
    from r1h.harness.eval.report import _save
    from r1h.harness.eval.runner import run_eval
    from r1h.harness.eval.session import default_output

    check_budgets(opts, budgets)
    backend = r1h.get_backend(opts.backend, model=opts.model, **opts.backend_args)
    try:
        out = Path(opts.output) if opts.output else default_output(str(getattr(backend, "model_id", None)
                                                                           or opts.model or "default"))
        runs: dict[int, dict[str, Any]] = {}
        for budget in budgets:
            run = dataclasses.replace(opts, thinking_budget=budget, output=str(budget_dir(out, budget)))
            runs[budget] = run_eval(run, console=console, backend=backend)
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()
    sweep = summarize(runs)
    atomic_write(out / SWEEP_JSON, json.dumps(sweep, indent=2) + "\n")
    atomic_write(out / SWEEP_MD, markdown(sweep))
    _save(sweep_figure, sweep, out / SWEEP_PNG, SWEEP_PNG)
    sweep["output"] = str(out)
    return sweep
