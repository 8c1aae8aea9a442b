"""Where two runs differ in truncation (``r1h compare``): truncated rate, pass@1 on finished and on truncated samples,
median length, and a warning when the truncated rates differ enough to explain part of a pass@1 gap.

Figures come from ``results.json`` (``r1h.harness.eval.thinking.truncation_summary``); a run written before those fields
existed gets them recomputed from its samples file.
"""

from __future__ import annotations

import math
from typing import Any

from r1h.harness.eval.metrics import group_by_problem
from r1h.harness.eval.thinking import sample_lengths, truncation_summary

FIELDS = ("truncated_rate", "pass@1_finished", "pass@1_truncated")
_KEPT = ("id", "sample_index", "correct", "finish_reason")
WARN_POINTS = 0.05  # truncated rates this far apart (5 points) get a warning


def truncation(run: Any, bench: str) -> dict[str, Any]:
    """The truncation figures of one benchmark of a run: FIELDS and ``median_tokens``."""
    m = run.benchmarks.get(bench) or {}
    if "truncated_rate" not in m:
        # the fields truncation_summary reads, not the completions: one small record per sample
        records = [{**{k: r[k] for k in _KEPT if k in r}, **sample_lengths(r)} for r in run.samples(bench) if "id" in r]
        max_tokens = (((run.results.get("config") or {}).get("benchmarks") or {}).get(bench) or {}).get(
            "generation", {}).get("max_tokens")
        m = truncation_summary(group_by_problem(records), max_tokens) if records else {}
    tokens = (m.get("lengths") or {}).get("tokens") or {}
    return {**{k: m.get(k) for k in FIELDS}, "median_tokens": tokens.get("median")}


def warnings(base: Any, run: Any, bench: str, base_row: dict[str, Any], row: dict[str, Any]) -> list[str]:
    a, b = base_row.get("truncated_rate"), row.get("truncated_rate")
    if a is None or b is None or abs(b - a) < WARN_POINTS:
        return []
    return [f"{bench}: truncated {100 * b:.1f}% in {run.label} vs {100 * a:.1f}% in {base.label}: part of the pass@1 "
            "difference is samples cut off at max_tokens (compare pass@1 on finished samples)"]


def _pct(value: Any) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def markdown_lines(rows: list[dict[str, Any]]) -> list[str]:
    """The truncation table of one benchmark, one line per run (rows carry ``run`` and ``truncation``)."""
    shown = [r for r in rows if r.get("truncation")]
    if not shown:
        return []
    base = shown[0]["truncation"].get("truncated_rate")
    lines = ["", "| run | truncated (%) | Δ truncated | pass@1 finished (%) | pass@1 truncated (%) | median tokens |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for i, row in enumerate(shown):
        t = row["truncation"]
        rate = t.get("truncated_rate")
        delta = "—" if i == 0 or rate is None or base is None else f"{100 * (rate - base):+.2f}"
        median = "—" if t.get("median_tokens") is None else f"{t['median_tokens']:.0f}"
        lines.append(f"| {row['run']} | {_pct(rate)} | {delta} | {_pct(t.get('pass@1_finished'))} | "
                     f"{_pct(t.get('pass@1_truncated'))} | {median} |")
    return lines
