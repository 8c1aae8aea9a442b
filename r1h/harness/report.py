"""What a run leaves behind: ``report.md``, ``passk.png`` and the results table (live progress: ``progress.py``)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

COLUMNS = ("benchmark", "pass@1", "95% CI", "maj@n", "pass@k", "n", "problems", "timeouts", "truncated", "unparseable")


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100.0 * float(value):.2f}"


def table_rows(results: Mapping[str, Any]) -> list[list[str]]:
    """One row of strings per benchmark, in COLUMNS order."""
    rows = []
    for name, m in (results.get("benchmarks") or {}).items():
        ci = m.get("pass@1_ci95")
        ci_text = "-" if not ci else f"[{_pct(ci[0])}, {_pct(ci[1])}]"
        passk = m.get("pass@k") or {}
        passk_text = " ".join(f"@{k}:{_pct(v)}" for k, v in passk.items() if k != "1") or "-"
        rows.append([
            name, _pct(m.get("pass@1")), ci_text, _pct(m.get("maj@n")), passk_text, str(m.get("n_samples", "")),
            str(m.get("n_problems", "")), str(m.get("timeouts", 0)), str(m.get("truncated", 0)),
            str(m.get("unparseable", 0)),
        ])
    return rows


def markdown(results: Mapping[str, Any]) -> str:
    """report.md: the model, the settings per benchmark and the results table (percentages)."""
    lines = [f"# r1h eval: {results.get('model', '')}", ""]
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join(" --- " for _ in COLUMNS) + "|")
    for row in table_rows(results):
        lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
    lines += ["", "Scores are percentages. pass@1 is the mean over samples and problems; pass@k is the unbiased",
              "estimator of Chen et al. (2021); the CI is a bootstrap over problems.", "", "## Settings", ""]
    config = results.get("config") or {}
    lines.append(f"- backend: `{config.get('backend')}` {config.get('backend_args') or ''}".rstrip())
    if config.get("limit"):
        lines.append(f"- limit: first {config['limit']} problems")
    for name, bench in (config.get("benchmarks") or {}).items():
        gen = bench.get("generation", {})
        lines.append(
            f"- {name} v{bench.get('version')}: reward `{bench.get('reward')}`, source `{bench.get('source')}`, "
            f"n={gen.get('n')} T={gen.get('temperature')} top_p={gen.get('top_p')} "
            f"max_tokens={gen.get('max_tokens')} seed={gen.get('seed')}"
        )
    return "\n".join(lines) + "\n"


def plot_passk(results: Mapping[str, Any], path: Any) -> bool:
    """pass@k curves, one line per benchmark. Returns False (and warns) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("r1h: warning: matplotlib is not installed; skipping passk.png (pip install 'r1h[plots]')",
              file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for name, m in (results.get("benchmarks") or {}).items():
        passk = m.get("pass@k") or {}
        if not passk:
            continue
        ks = [int(k) for k in passk]
        ax.plot(ks, [100.0 * passk[str(k)] for k in ks], marker="o", label=name)
    ax.set_xscale("log", base=2)
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (%)")
    ax.set_ylim(0, 100)
    ax.set_title(f"pass@k: {results.get('model', '')}", fontsize=9)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return True


def write_report(store: Any, results: Mapping[str, Any], console: Any = None) -> None:
    """report.md and passk.png next to results.json."""
    store.report_md.write_text(markdown(results), encoding="utf-8")
    plot_passk(results, store.passk_png)


def results_table(results: Mapping[str, Any]):
    from rich.table import Table

    table = Table(title=f"r1h eval: {results.get('model', '')}")
    for i, column in enumerate(COLUMNS):
        table.add_column(column, justify="left" if i in (0, 4) else "right")
    for row in table_rows(results):
        table.add_row(*row)
    return table

