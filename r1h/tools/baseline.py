"""Regression baselines: record a run's scores on purpose, then check later runs against them within tolerance.

A benchmark regresses when ``run - baseline < -allowed`` with
``allowed = max(abs_tol, z * sqrt(se_run**2 + se_base**2))``; the standard errors come from the 95% CIs in
results.json (or from the per-problem samples). ``two_sided`` also fails on a significant improvement (for
deterministic jobs, where any move means the grading or data changed).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import ConfigError, RunError
from r1h.tools.compare import Run, score_and_ci

FORMAT = "r1h-baseline/1"


def standard_error(run: Run, bench: str) -> float:
    """SE of pass@1: half-width of the 95% CI / 1.96, else the per-problem SE from the samples, else 0."""
    _, ci = score_and_ci(run, bench)
    if ci is not None and not any(math.isnan(x) for x in ci):
        return max(0.0, (ci[1] - ci[0]) / (2 * 1.959964))
    values = list(run.problems(bench).values())
    if len(values) < 2:
        return 0.0
    mean = sum(values) / len(values)
    return math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1) / len(values))


def make_baseline(run: Run) -> dict[str, Any]:
    benchmarks = {}
    for bench, entry in run.benchmarks.items():
        score, _ = score_and_ci(run, bench)
        if score is None:
            raise RunError(f"{run.path}: benchmark {bench!r} has no pass@1 to record")
        benchmarks[bench] = {
            "pass@1": score,
            "stderr": standard_error(run, bench),
            "version": run.version(bench),
            "n_problems": entry.get("n_problems"),
            "n_samples": entry.get("n_samples"),
        }
    # no paths or run config: a committed baseline must not churn with the machine that recorded it
    return {"format": FORMAT, "model": run.model, "benchmarks": benchmarks}


def write_baseline(run: Run, path: Path, force: bool = False) -> dict[str, Any]:
    if path.exists() and not force:
        raise ConfigError(f"{path} exists; use --force to replace the baseline on purpose")
    baseline = make_baseline(run)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(baseline, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    return baseline


def read_baseline(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"{path}: baseline file not found (record one with: r1h baseline update RUN_DIR --baseline "
                          f"{path})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from exc
    if not isinstance(data, dict) or not isinstance(data.get("benchmarks"), dict):
        raise ConfigError(f"{path}: not an r1h baseline (no 'benchmarks' object)")
    for bench, entry in data["benchmarks"].items():
        if not isinstance(entry, dict) or not isinstance(entry.get("pass@1"), (int, float)):
            raise ConfigError(f"{path}: benchmark {bench!r} has no numeric 'pass@1'")
    return data


@dataclass
class CheckRow:
    benchmark: str
    status: str  # ok | REGRESSION | IMPROVED | MISSING | VERSION | PARTIAL
    baseline: float | None = None
    baseline_se: float = 0.0
    run: float | None = None
    run_se: float = 0.0
    delta: float | None = None
    allowed: float | None = None
    note: str = ""

    @property
    def failed(self) -> bool:
        return self.status not in ("ok", "improved")


def check_run(run: Run, baseline: dict[str, Any], *, abs_tol: float = 0.0, z: float = 1.96,
              two_sided: bool = False, only: list[str] | None = None) -> list[CheckRow]:
    """One row per baseline benchmark (or per ``only``)."""
    if abs_tol < 0 or z < 0:
        raise ConfigError("--tolerance and --z must be >= 0")
    rows = []
    for bench, base in baseline["benchmarks"].items():
        if only and bench not in only:
            continue
        row = CheckRow(bench, "ok", baseline=float(base["pass@1"]), baseline_se=float(base.get("stderr") or 0.0))
        if bench not in run.benchmarks:
            row.status, row.note = "MISSING", "the run has no results for this benchmark"
            rows.append(row)
            continue
        base_version, run_version = base.get("version"), run.version(bench)
        if base_version is not None and run_version is not None and str(base_version) != str(run_version):
            row.status = "VERSION"
            row.note = (f"baseline is v{base_version}, run is v{run_version}: not comparable; "
                        "re-record with r1h baseline update --force")
            rows.append(row)
            continue
        score, _ = score_and_ci(run, bench)
        if score is None:
            row.status, row.note = "MISSING", "no pass@1 in results.json and no samples"
            rows.append(row)
            continue
        partial = _partial(base, run.benchmarks[bench])
        if partial:
            row.run = score
            row.status, row.note = "PARTIAL", partial
            rows.append(row)
            continue
        row.run, row.run_se = score, standard_error(run, bench)
        row.delta = score - row.baseline
        row.allowed = max(abs_tol, z * math.sqrt(row.run_se**2 + row.baseline_se**2))
        if row.delta < -row.allowed - 1e-12:
            row.status = "REGRESSION"
        elif row.delta > row.allowed + 1e-12:
            row.status = "IMPROVED" if two_sided else "improved"
            row.note = "update the baseline on purpose: r1h baseline update" if not two_sided else \
                "score moved up (two-sided check)"
        n_base, n_run = base.get("n_problems"), run.benchmarks[bench].get("n_problems")
        if n_base is not None and n_run is not None and n_base != n_run:
            row.note = (row.note + "; " if row.note else "") + f"problems: baseline {n_base}, run {n_run}"
        rows.append(row)
    if only:
        unknown = [b for b in only if b not in baseline["benchmarks"]]
        if unknown:
            raise ConfigError(f"--bench {unknown[0]!r} is not in the baseline ({', '.join(baseline['benchmarks'])})")
    return rows


def _partial(base: dict[str, Any], entry: dict[str, Any]) -> str:
    """Why a run measured less than its baseline (fewer problems or fewer samples per problem), or ''."""
    sizes = [(base.get(k), entry.get(k)) for k in ("n_problems", "n_samples")]
    if any(not isinstance(b, int) or not isinstance(r, int) for b, r in sizes):
        return ""
    (base_p, run_p), (base_n, run_n) = sizes
    if run_p >= base_p and run_n >= base_n:
        return ""
    return (f"the run has {run_p} problems x {run_n} samples, the baseline {base_p} problems x {base_n}: not "
            "comparable; rerun without --limit/-n or record a baseline of this size (r1h baseline update)")


def _fmt(value: float | None, se: float = 0.0) -> str:
    if value is None:
        return "—"
    return f"{100 * value:6.2f} ±{100 * 1.96 * se:5.2f}"


def render(rows: list[CheckRow], run: Run, baseline_path: Path, abs_tol: float, z: float) -> str:
    head = (f"r1h check {run.path} against {baseline_path} (pass@1 in %, ±95% CI; allowed = max({100 * abs_tol:.2f}, "
            f"{z:g} x combined SE))")
    table = [("benchmark", "baseline", "run", "delta", "allowed", "status")]
    for r in rows:
        table.append((
            r.benchmark, _fmt(r.baseline, r.baseline_se), _fmt(r.run, r.run_se),
            "—" if r.delta is None else f"{100 * r.delta:+.2f}",
            "—" if r.allowed is None else f"±{100 * r.allowed:.2f}", r.status,
        ))
    widths = [max(len(line[i]) for line in table) for i in range(6)]
    lines = [head, ""]
    for line in table:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip())
    notes = [f"  {r.benchmark}: {r.note}" for r in rows if r.note]
    if notes:
        lines += ["", *notes]
    failed = [r for r in rows if r.failed]
    lines += ["", f"FAILED: {len(failed)} of {len(rows)} benchmarks ({', '.join(r.benchmark for r in failed)})"
              if failed else f"OK: {len(rows)} benchmarks within tolerance"]
    return "\n".join(lines) + "\n"
