"""``r1h check RUN --anchor NAME``: is a published result inside the run's 95% CI, and which settings differ?

Per benchmark that both the run and the anchor have, the verdict is "inside" when the published score lies in the run's
bootstrap 95% CI of pass@1 (``results.json``), else "outside". Either way it lists the settings that differ and could
explain a gap: n, temperature, top-p, max tokens (the run's generation config against the anchor's), the prompt
template and the grader (a run always uses r1h's benchmark prompt and reward, so an anchor that names another is a
difference), and the run's truncated rate when samples hit max_tokens. Settings the source does not state are listed
as not recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from r1h.harness.core.anchor import SAME_AS_R1H, Anchor

GENERATION_KEYS = ("n", "temperature", "top_p", "max_tokens")
TRUNCATION_NOTE = 0.01  # a truncated rate at or above 1% is named as a possible cause


@dataclass
class AnchorRow:
    bench: str
    published: float
    score: float | None = None
    ci95: list[float] | None = None
    inside: bool | None = None  # None: the benchmark is not in the run
    differences: list[str] = field(default_factory=list)
    not_recorded: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return self.inside is False


def _fmt(value: Any) -> str:
    return "none" if value is None else str(value)


def run_settings(run: Any, bench: str) -> dict[str, Any]:
    """The settings of one benchmark of a run, keyed like an anchor's."""
    config = ((run.results.get("config") or {}).get("benchmarks") or {}).get(bench) or {}
    gen = config.get("generation") or {}
    metrics = run.benchmarks.get(bench) or {}
    return {**{k: gen.get(k) for k in GENERATION_KEYS},
            "prompt": f"r1h's {bench} v{metrics.get('version', config.get('version', '?'))} prompt",
            "grader": f"r1h's {metrics.get('reward') or config.get('reward') or '?'}"}


def _differences(anchor: Anchor, bench: str, run: Any) -> tuple[list[str], list[str]]:
    ours, theirs = run_settings(run, bench), anchor.settings_for(bench)
    diffs, unknown = [], []
    for key in GENERATION_KEYS:
        if theirs.get(key) is None:
            unknown.append(key)
        elif ours.get(key) is None or float(ours[key]) != float(theirs[key]):
            diffs.append(f"{key}: run {_fmt(ours.get(key))}, anchor {_fmt(theirs[key])}")
    for key in ("prompt", "grader"):
        if theirs.get(key) is None:
            unknown.append(key)
        elif theirs[key] != SAME_AS_R1H:
            diffs.append(f"{key}: run {ours[key]}, anchor {theirs[key]}")
    rate = (run.benchmarks.get(bench) or {}).get("truncated_rate")
    if rate is not None and rate >= TRUNCATION_NOTE:
        diffs.append(f"truncated rate: {100 * rate:.1f}% of the run's samples hit max_tokens "
                     f"({_fmt(ours.get('max_tokens'))})")
    return diffs, unknown


def check_anchor(run: Any, anchor: Anchor) -> list[AnchorRow]:
    """One row per benchmark of the anchor (``inside`` None for a benchmark the run does not have)."""
    rows = []
    for bench, published in anchor.results.items():
        row = AnchorRow(bench=bench, published=published.value)
        metrics = run.benchmarks.get(bench)
        if metrics is not None:
            row.score, row.ci95 = metrics.get("pass@1"), metrics.get("pass@1_ci95")
            if row.ci95:
                row.inside = row.ci95[0] - 1e-9 <= published.value <= row.ci95[1] + 1e-9
            row.differences, row.not_recorded = _differences(anchor, bench, run)
        rows.append(row)
    return rows


def render(rows: list[AnchorRow], run: Any, anchor: Anchor) -> str:
    lines = [f"{run.path}: {run.model or '?'} against anchor {anchor.name} ({anchor.model})",
             f"  source: {anchor.source}"]
    for row in rows:
        if row.inside is None:
            lines.append(f"- {row.bench}: published {100 * row.published:.2f}; not in this run")
            continue
        ci = "[-]" if not row.ci95 else f"[{100 * row.ci95[0]:.2f}, {100 * row.ci95[1]:.2f}]"
        verdict = "inside" if row.inside else "OUTSIDE"
        lines.append(f"- {row.bench}: published {100 * row.published:.2f} is {verdict} the run's 95% CI {ci} "
                     f"(pass@1 {100 * (row.score or 0.0):.2f})")
        if row.differences:
            lines.append("  settings that differ and could explain a gap:")
            lines += [f"    {d}" for d in row.differences]
        if row.not_recorded:
            lines.append(f"  not recorded by the anchor: {', '.join(row.not_recorded)}")
    return "\n".join(lines) + "\n"


def to_dict(rows: list[AnchorRow], anchor: Anchor) -> dict[str, Any]:
    return {"anchor": anchor.name, "model": anchor.model, "source": anchor.source,
            "ok": not any(r.failed for r in rows),
            "rows": [{**r.__dict__, "failed": r.failed} for r in rows]}
