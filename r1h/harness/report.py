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


HEADLINE = ("benchmark", "pass@1 (%)", "95% CI", "n", "problems")
# Distinct styles per line, so benchmarks at the same score (two at 100%) stay apart: the markers nest (hollow, each
# smaller than the one before) and the dash patterns differ.
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":", (0, (5, 1)), (0, (3, 1, 1, 1, 1, 1)))
Y_LIMITS = (-5.0, 105.0)  # margins beyond 0 and 100, so a 0% or 100% line never sits on the frame


def _md_table(header: tuple[str, ...], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]
    return lines


def markdown(results: Mapping[str, Any]) -> str:
    """report.md: the pass@1 table with 95% CIs first, then the settings (backend, engine, sampling, stack), then
    the detailed table (maj@n, pass@k, timeouts, truncated, unparseable)."""
    rows = table_rows(results)
    lines = [f"# r1h eval: {results.get('model', '')}", ""]
    lines += _md_table(HEADLINE, [[r[0], r[1], r[2], r[5], r[6]] for r in rows])
    lines += ["", "pass@1 is the mean over n samples and the problems, in percent; the 95% CI is a bootstrap over "
              "problems.", "", "## Settings", ""]
    config = results.get("config") or {}
    lines.append(f"- backend: `{config.get('backend')}` {config.get('backend_args') or ''}".rstrip())
    engine = results.get("engine")
    if isinstance(engine, Mapping) and engine:
        lines.append("- engine: " + ", ".join(f"{k}={v}" for k, v in engine.items()))
    if config.get("limit"):
        lines.append(f"- limit: first {config['limit']} problems")
    for name, bench in (config.get("benchmarks") or {}).items():
        gen = bench.get("generation", {})
        extra = "".join(f" {key}={gen[key]}" for key in ("policy", "top_k", "min_p", "repetition_penalty")
                        if key in gen)
        lines.append(
            f"- {name} v{bench.get('version')}: reward `{bench.get('reward')}`, source `{bench.get('source')}`, "
            f"n={gen.get('n')} T={gen.get('temperature')} top_p={gen.get('top_p')} "
            f"max_tokens={gen.get('max_tokens')} seed={gen.get('seed')}{extra}"
        )
    lines += _stack_lines(results.get("stack"))
    lines += ["", "## Details", ""]
    lines += _md_table(COLUMNS, rows)
    lines += ["", "pass@k is the unbiased estimator of Chen et al. (2021); maj@n is the majority vote over n samples."]
    return "\n".join(lines) + "\n"


def _stack_lines(stack: Any) -> list[str]:
    if not isinstance(stack, Mapping):
        return []
    system = stack.get("system") or {}
    libs = stack.get("libraries") or {}
    out = [f"- python {system.get('python', '?')} on {system.get('os', '?')}"] if system else []
    if libs:
        out.append("- stack: " + ", ".join(f"{name} {lib.get('version')}" for name, lib in libs.items()))
    torch = stack.get("torch") or {}
    devices = torch.get("accelerators") or stack.get("accelerators_smi") or []
    names = sorted({str(d.get("name")) for d in devices if d.get("name")})
    if torch.get("backend") or names:
        out.append(f"- torch backend {torch.get('backend', '?')}; accelerators: "
                   + (f"{len(devices)} x {', '.join(names)}" if names else "none seen"))
    return out


def passk_figure(results: Mapping[str, Any]):
    """The pass@k figure (matplotlib, Agg), one line per benchmark; :func:`plot_passk` saves it.

    The y-axis runs from -5 to 105 with reference lines at 0 and 100, so a benchmark at 0% or 100% stays visible;
    each benchmark has its own marker and dash pattern, markers are hollow and shrink line by line, so lines that
    coincide stay distinguishable; the legend sits outside the axes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for ref in (0, 100):
        ax.axhline(ref, color="0.6", linewidth=0.8, linestyle=":", zorder=0)
    all_ks: list[int] = []
    curves = [(name, m.get("pass@k") or {}) for name, m in (results.get("benchmarks") or {}).items()]
    curves = [(name, passk) for name, passk in curves if passk]
    for i, (name, passk) in enumerate(curves):
        ks = sorted(int(k) for k in passk)
        all_ks += ks
        ax.plot(ks, [100.0 * passk[str(k)] for k in ks], marker=MARKERS[i % len(MARKERS)],
                linestyle=LINESTYLES[i % len(LINESTYLES)], markersize=max(4.0, 11.0 - 1.5 * i),
                markerfacecolor="none", markeredgewidth=1.5, linewidth=1.5, clip_on=False, label=name)
    ax.set_xscale("log", base=2)
    if all_ks:
        ticks = sorted(set(all_ks))
        ax.set_xlim(ticks[0] / 1.4, ticks[-1] * 1.4)  # a margin left and right, also when every k is 1
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(k) for k in ticks])
    ax.set_xlabel("k")
    ax.set_ylabel("pass@k (%)")
    ax.set_ylim(*Y_LIMITS)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(f"pass@k: {results.get('model', '')}", fontsize=9)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return fig


def plot_passk(results: Mapping[str, Any], path: Any) -> bool:
    """Write passk.png. Returns False (and warns) when matplotlib is missing."""
    try:
        fig = passk_figure(results)
    except ImportError:
        print("r1h: warning: matplotlib is not installed; skipping passk.png (pip install 'r1h[plots]')",
              file=sys.stderr)
        return False
    import matplotlib.pyplot as plt

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

