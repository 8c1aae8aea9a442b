"""Read finished run directories and compare them: pass@1 with CI, deltas, paired tests over shared problems.

A run directory (written by ``r1h eval``) holds ``results.json`` and ``samples/NAME.jsonl``. Scores are fractions in
[0, 1]. The paired tests work on per-problem mean correctness over the problems both runs answered:

- every problem has exactly one sample in both runs: McNemar's exact test on the discordant pairs;
- otherwise: a paired bootstrap over problems of the mean difference (two-sided p from the centred bootstrap).

Standard library only (no numpy), so ``r1h compare`` works in the slimmest install.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import RunError
from r1h.harness.data import jsonl
from r1h.harness.eval.metrics import bootstrap_ci, mcnemar, paired_bootstrap
from r1h.tools import compare_truncation

ALPHA = 0.05
N_BOOT = 5000
MIN_SHARED = 30  # below this many shared problems no p-value is reported ("insufficient overlap")
# Libraries whose version can move a score (generation numerics, answer parsing); the rest of the stack is context.
SCORE_LIBS = ("torch", "vllm", "transformers", "flash_attn", "flashinfer", "math-verify", "latex2sympy2_extended")
# Sampling fields of a benchmark's generation config that change what is sampled.
SAMPLING_KEYS = ("policy", "temperature", "top_p", "top_k", "min_p", "repetition_penalty", "max_tokens")


# -- reading runs -----------------------------------------------------------------------------------------------------
@dataclass
class Run:
    """A finished (or partial) run directory. Samples are streamed from disk, never held: what is kept per benchmark
    is its per-problem summary (:meth:`problems`), one number per problem."""

    path: Path
    results: dict[str, Any]
    label: str = ""
    _problems: dict[str, tuple[dict[str, float], int]] = field(default_factory=dict, repr=False)

    @property
    def model(self) -> str:
        return str(self.results.get("model") or "")

    @property
    def benchmarks(self) -> dict[str, dict[str, Any]]:
        return self.results.get("benchmarks") or {}

    def samples_path(self, bench: str) -> Path:
        return self.path / "samples" / f"{bench}.jsonl"

    def samples(self, bench: str) -> Iterator[dict[str, Any]]:
        """The sample lines of one benchmark, read from disk as they are consumed (none when the file is absent).
        A torn last line is ignored."""
        return iter_jsonl(self.samples_path(bench), missing_ok=True)

    def problems(self, bench: str) -> dict[str, float]:
        """Problem id -> mean correctness over its samples (``correct``, else ``reward`` > 0), from one pass over the
        samples file, kept."""
        return self._summary(bench)[0]

    def samples_per_problem(self, bench: str) -> int:
        """The largest number of samples any problem has (1 means a greedy / n=1 run), from the same pass."""
        return self._summary(bench)[1]

    def _summary(self, bench: str) -> tuple[dict[str, float], int]:
        if bench not in self._problems:
            sums: dict[str, list[float]] = {}
            counts: dict[str, int] = {}  # rows without an id count too (as "None")
            for row in self.samples(bench):
                counts[str(row.get("id"))] = counts.get(str(row.get("id")), 0) + 1
                if "id" not in row:
                    continue
                if "correct" in row and row["correct"] is not None:
                    value = 1.0 if row["correct"] else 0.0
                else:
                    reward = row.get("reward")
                    value = 1.0 if isinstance(reward, (int, float)) and reward > 0 else 0.0
                acc = sums.setdefault(str(row["id"]), [0.0, 0.0])
                acc[0] += value
                acc[1] += 1
            self._problems[bench] = ({pid: s / n for pid, (s, n) in sums.items()}, max(counts.values(), default=0))
        return self._problems[bench]

    def version(self, bench: str) -> str | None:
        value = self.benchmarks.get(bench, {}).get("version")
        return None if value is None else str(value)


def iter_jsonl(path: Path, *, missing_ok: bool = False) -> Iterator[dict[str, Any]]:
    """The rows of a JSONL file, lazily (:func:`r1h.harness.data.jsonl.objects`); a torn (unparseable) LAST line is
    dropped, a bad line elsewhere is a one-line :class:`RunError`."""
    if not path.is_file():
        if missing_ok:
            return iter(())
        raise RunError(f"{path}: file not found")
    return (row for _, row in jsonl.objects(path, error=RunError, drop_torn=True))


def load_run(path: str | Path, label: str | None = None) -> Run:
    """Open a run directory; a path that is not a run is a one-line :class:`RunError`."""
    path = Path(path)
    results_file = path / "results.json"
    if not path.is_dir():
        raise RunError(f"{path}: not a run directory (no such directory)")
    if not results_file.is_file():
        raise RunError(f"{path}: not a run directory (no results.json; r1h eval writes one)")
    try:
        results = json.loads(results_file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise RunError(f"{results_file}: unreadable results.json ({exc})") from exc
    if not isinstance(results, dict) or not isinstance(results.get("benchmarks"), dict):
        raise RunError(f"{results_file}: not an r1h results file (no 'benchmarks' object)")
    return Run(path=path, results=results, label=label or path.name)


# -- comparing --------------------------------------------------------------------------------------------------------
def score_and_ci(run: Run, bench: str) -> tuple[float | None, tuple[float, float] | None]:
    """pass@1 and its 95% CI: from results.json, else computed from the samples."""
    entry = run.benchmarks.get(bench, {})
    score = entry.get("pass@1")
    ci = entry.get("pass@1_ci95")
    if score is None or not (isinstance(ci, (list, tuple)) and len(ci) == 2):
        problems = run.problems(bench)
        if problems:
            values = list(problems.values())
            score = sum(values) / len(values) if score is None else score
            ci = ci if isinstance(ci, (list, tuple)) and len(ci) == 2 else bootstrap_ci(values)
    if score is None:
        return None, None
    return float(score), (float(ci[0]), float(ci[1])) if ci else None


def check_versions(runs: list[Run], force: bool = False) -> list[str]:
    """Refuse runs whose benchmark versions differ (a changed prompt or data set); warn instead with ``force``."""
    warnings: list[str] = []
    for bench in _bench_names(runs):
        versions = {run.label: run.version(bench) for run in runs if bench in run.benchmarks}
        distinct = {v for v in versions.values() if v is not None}
        if len(distinct) > 1:
            listed = ", ".join(f"{label}=v{v}" for label, v in versions.items())
            message = f"benchmark {bench!r} has different versions across runs ({listed})"
            if not force:
                raise RunError(f"{message}; scores are not comparable (use --force to compare anyway)")
            warnings.append(message)
    return warnings


def compare_runs(runs: list[Run], *, force: bool = False, n_boot: int = N_BOOT, seed: int = 0) -> dict[str, Any]:
    """The comparison of ``runs[1:]`` against ``runs[0]`` per benchmark, as a JSON-ready dict."""
    if len(runs) < 2:
        raise RunError("compare needs at least two run directories")
    _unique_labels(runs)
    warnings = check_versions(runs, force=force)
    warnings += [f"{run.label} vs {runs[0].label}: {d}" for run in runs[1:] for d in setting_differences(runs[0], run)]
    out: dict[str, Any] = {
        "reference": runs[0].label,
        "alpha": ALPHA,
        "runs": [{"label": r.label, "path": str(r.path), "model": r.model} for r in runs],
        "warnings": warnings,
        "benchmarks": {},
    }
    base = runs[0]
    for bench in _bench_names(runs):
        rows = []
        base_problems = base.problems(bench) if bench in base.benchmarks else {}
        for run in runs:
            if bench not in run.benchmarks:
                continue
            score, ci = score_and_ci(run, bench)
            row: dict[str, Any] = {
                "run": run.label,
                "model": run.model,
                "version": run.version(bench),
                "pass@1": score,
                "ci95": list(ci) if ci else None,
                "n_problems": run.benchmarks[bench].get("n_problems"),
                "truncation": compare_truncation.truncation(run, bench),
            }
            if run is not base:
                row.update(_paired(base, run, bench, base_problems, n_boot=n_boot, seed=seed))
                out["warnings"] += _overlap_warnings(base, run, bench, row)
                if rows and rows[0]["run"] == base.label:
                    out["warnings"] += compare_truncation.warnings(base, run, bench, rows[0]["truncation"],
                                                                   row["truncation"])
            rows.append(row)
        out["benchmarks"][bench] = rows
    return out


def _paired(base: Run, run: Run, bench: str, base_problems: dict[str, float], *, n_boot: int, seed: int) -> dict:
    base_score, _ = score_and_ci(base, bench) if bench in base.benchmarks else (None, None)
    score, _ = score_and_ci(run, bench)
    delta = None if base_score is None or score is None else score - base_score
    result: dict[str, Any] = {"delta": delta, "test": None, "p_value": None, "significant": None, "shared": 0}
    problems = run.problems(bench)
    shared = sorted(set(base_problems) & set(problems))
    result["shared"] = len(shared)
    if not shared:
        result["test"] = "n/a (no shared problems with samples)"
        return result
    a = [base_problems[p] for p in shared]
    b = [problems[p] for p in shared]
    result["n_ref"], result["n_run"] = base.samples_per_problem(bench), run.samples_per_problem(bench)
    binary = result["n_ref"] == 1 and result["n_run"] == 1
    if binary:
        stats = mcnemar([x >= 0.5 for x in a], [y >= 0.5 for y in b])
        result.update(test=f"mcnemar ({stats['method']})", p_value=stats["p_value"], only_ref=stats["only_a"],
                      only_run=stats["only_b"])
    else:
        stats = paired_bootstrap(a, b, resamples=n_boot, seed=seed)
        result.update(test="paired-bootstrap", p_value=stats["p_value"], delta_ci95=stats["ci95"])
    result["paired_delta"] = sum(b) / len(b) - sum(a) / len(a)
    result["significant"] = result["p_value"] < ALPHA
    if len(shared) < MIN_SHARED:  # a p-value from a handful of problems means nothing: report none
        result.update(p_value=None, significant=False, insufficient_overlap=True)
        result.pop("delta_ci95", None)
    return result


def _overlap_warnings(base: Run, run: Run, bench: str, row: dict[str, Any]) -> list[str]:
    out = []
    if row.get("insufficient_overlap") or row["shared"] == 0:
        out.append(f"{bench}: {run.label} shares only {row['shared']} problems with {base.label} (< {MIN_SHARED}): "
                   "not significant (insufficient overlap), no p-value")
    if row.get("n_ref") and row.get("n_run") and row["n_ref"] != row["n_run"]:
        out.append(f"{bench}: n differs ({base.label} {row['n_ref']} samples per problem, {run.label} "
                   f"{row['n_run']}); pass@1 of different n has different variance, and maj@n/pass@k differ")
    return out


def setting_differences(a: Run, b: Run) -> list[str]:
    """What differs between two runs in a way that can change scores: the engine (``results["engine"]``, the
    backend's ``describe()``), the stack (``results["stack"]``: torch backend, accelerator, SCORE_LIBS versions)
    and each shared benchmark's sampling settings. Keys a run does not record are skipped (older runs)."""
    from r1h.harness.system.stack import summary

    out = []
    engine_a, engine_b = a.results.get("engine"), b.results.get("engine")
    if isinstance(engine_a, dict) and isinstance(engine_b, dict):
        out += _diff("engine", engine_a, engine_b)
    stack_a, stack_b = a.results.get("stack"), b.results.get("stack")
    if isinstance(stack_a, dict) and isinstance(stack_b, dict):
        flat_a, flat_b = summary(stack_a), summary(stack_b)
        keys = [*SCORE_LIBS, "torch backend", "accelerator"]
        out += _diff("stack", {k: flat_a.get(k) for k in keys}, {k: flat_b.get(k) for k in keys})
    gen_a = (a.results.get("config") or {}).get("benchmarks") or {}
    gen_b = (b.results.get("config") or {}).get("benchmarks") or {}
    for bench in [name for name in gen_a if name in gen_b]:
        ga, gb = (gen_a[bench] or {}).get("generation") or {}, (gen_b[bench] or {}).get("generation") or {}
        out += _diff(f"{bench} sampling", {k: ga.get(k) for k in SAMPLING_KEYS if k in ga and k in gb},
                     {k: gb.get(k) for k in SAMPLING_KEYS if k in ga and k in gb})
    return out


def _diff(what: str, a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    changed = [f"{k} {a.get(k)!r} vs {b.get(k)!r}" for k in dict.fromkeys([*a, *b]) if a.get(k) != b.get(k)]
    return [f"{what} differs ({'; '.join(changed)}): scores may not be comparable"] if changed else []


def _bench_names(runs: list[Run]) -> list[str]:
    names: list[str] = []
    for run in runs:
        for name in run.benchmarks:
            if name not in names:
                names.append(name)
    return names


def _unique_labels(runs: list[Run]) -> None:
    seen: dict[str, int] = {}
    for run in runs:
        seen[run.label] = seen.get(run.label, 0) + 1
    if any(count > 1 for count in seen.values()):
        for i, run in enumerate(runs):
            run.label = f"{chr(65 + i) if i < 26 else i}:{run.label}"


# -- rendering --------------------------------------------------------------------------------------------------------
def _pct(value: float | None) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f}"


def _signed_pct(value: float | None) -> str:
    return "—" if value is None or math.isnan(value) else f"{100 * value:+.2f}"


def _p(value: float | None) -> str:
    if value is None:
        return "—"
    return "<0.001" if value < 0.001 else f"{value:.3f}"


def to_markdown(comparison: dict[str, Any]) -> str:
    """Tables a user pastes into a report (scores in percent)."""
    lines = [f"Reference run: **{comparison['reference']}**. Paired tests at alpha = {comparison['alpha']}."]
    for warning in comparison.get("warnings", []):
        lines.append(f"\n> warning: {warning}")
    for bench, rows in comparison["benchmarks"].items():
        lines += ["", f"### {bench}", ""]
        lines.append("| run | model | pass@1 (%) | 95% CI | Δ vs ref | test | shared | p | significant |")
        lines.append("| --- | --- | ---: | --- | ---: | --- | ---: | ---: | --- |")
        for row in rows:
            ci = row.get("ci95")
            ci_text = f"[{_pct(ci[0])}, {_pct(ci[1])}]" if ci else "—"
            if "delta" not in row:
                tail = "(reference) | — | — | —"
                delta = "—"
            else:
                delta = _signed_pct(row["delta"])
                sig = "—" if row["significant"] is None else ("yes" if row["significant"] else "no")
                if row.get("insufficient_overlap"):
                    sig = "not significant (insufficient overlap)"
                tail = f"{row['test']} | {row['shared']} | {_p(row['p_value'])} | {sig}"
            lines.append(
                f"| {row['run']} | {row['model'] or '—'} | {_pct(row['pass@1'])} | {ci_text} | {delta} | {tail} |"
            )
        lines += compare_truncation.markdown_lines(rows)
    return "\n".join(lines) + "\n"


def to_json(comparison: dict[str, Any]) -> str:
    return json.dumps(comparison, indent=2, default=_json_default) + "\n"


def _json_default(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else str(value)


def plot(comparison: dict[str, Any], path: Path) -> None:
    """A grouped bar chart of pass@1 per benchmark with 95% CI error bars (matplotlib imported here only)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise RunError("--plot needs matplotlib: pip install 'r1h[plots]'") from exc
    benches = list(comparison["benchmarks"])
    labels = [r["label"] for r in comparison["runs"]]
    width = 0.8 / max(1, len(labels))
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(benches) * max(1, len(labels)) / 2), 4))
    for i, label in enumerate(labels):
        xs, heights, lower, upper = [], [], [], []
        for j, bench in enumerate(benches):
            row = next((r for r in comparison["benchmarks"][bench] if r["run"] == label), None)
            if row is None or row["pass@1"] is None:
                continue
            xs.append(j + (i - (len(labels) - 1) / 2) * width)
            heights.append(100 * row["pass@1"])
            ci = row.get("ci95") or [row["pass@1"], row["pass@1"]]
            lower.append(max(0.0, 100 * (row["pass@1"] - ci[0])))
            upper.append(max(0.0, 100 * (ci[1] - row["pass@1"])))
        ax.bar(xs, heights, width, yerr=[lower, upper], capsize=3, label=label)
    ax.set_xticks(range(len(benches)))
    ax.set_xticklabels(benches)
    ax.set_ylabel("pass@1 (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize="small")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def warn(message: str) -> None:
    print(f"r1h: warning: {message}", file=sys.stderr)
