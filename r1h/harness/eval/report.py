"""What a run leaves behind: ``report.md``, ``passk.png`` and the results table (live progress: ``progress.py``)."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

COLUMNS = ("benchmark", "pass@1", "95% CI", "maj@n", "pass@k", "n", "problems", "timeouts", "truncated", "unparseable")
# When the table is wider than the terminal, columns go in this order (first the widest, least read); the benchmark
# name and pass@1 always stay, whole (they wrap, never cut). Every column is in report.md.
DROP_ORDER = ("pass@k", "unparseable", "timeouts", "maj@n", "problems", "truncated", "n", "95% CI")
INCOMPLETE_MARK = "*"


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100.0 * float(value):.2f}"


def incomplete(results: Mapping[str, Any]) -> list[str]:
    """Why ``results`` are not those of a finished run, one phrase per benchmark ([] when finished): a benchmark with
    fewer samples than its n on some problem, a benchmark not run yet, or a run that stopped (``complete`` false)."""
    benchmarks = results.get("benchmarks") or {}
    out = [f"{name}: {m.get('total_samples')} of {m.get('expected_samples', '?')} samples stored, "
           f"{m.get('short_problems', '?')} problem(s) with fewer than n"
           for name, m in benchmarks.items() if m.get("complete") is False]
    out += [f"{name}: not finished" for name in results.get("pending") or () if name not in benchmarks]
    if results.get("complete") is False and not out:
        out.append("the run did not finish")
    return out


def table_rows(results: Mapping[str, Any]) -> list[list[str]]:
    """One row of strings per benchmark, in COLUMNS order; an incomplete benchmark's name ends with ``*``."""
    rows = []
    for name, m in (results.get("benchmarks") or {}).items():
        ci = m.get("pass@1_ci95")
        ci_text = "-" if not ci else f"[{_pct(ci[0])}, {_pct(ci[1])}]"
        passk = m.get("pass@k") or {}
        passk_text = " ".join(f"@{k}:{_pct(v)}" for k, v in passk.items() if k != "1") or "-"
        rows.append([
            name + (INCOMPLETE_MARK if m.get("complete") is False else ""), _pct(m.get("pass@1")), ci_text,
            _pct(m.get("maj@n")), passk_text, str(m.get("n_samples", "")),
            str(m.get("n_problems", "")), str(m.get("timeouts", 0)), str(m.get("truncated", 0)),
            str(m.get("unparseable", 0)),
        ])
    return rows


def fit_columns(rows: list[list[str]], width: int | None) -> list[int]:
    """Indices of the COLUMNS that fit ``width`` characters in a boxed table, dropping in DROP_ORDER."""
    widths = [max([len(header), *(len(row[i]) for row in rows)]) for i, header in enumerate(COLUMNS)]
    kept = list(range(len(COLUMNS)))
    for name in DROP_ORDER:
        if width is None or sum(widths[i] + 3 for i in kept) + 1 <= width:
            break
        kept.remove(COLUMNS.index(name))
    return kept


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
    unfinished = incomplete(results)
    if unfinished:
        lines += ["> **Incomplete run** (`*`): these figures are not those of the full protocol.", ">"]
        lines += [f"> - {reason}" for reason in unfinished] + [""]
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
        thinking = bench.get("thinking_budget")
        if thinking:  # --thinking-budget (r1h.harness.eval.budget)
            got = ((results.get("benchmarks") or {}).get(name) or {}).get("thinking_budget") or {}
            forced = (f"; forced in {_pct(got.get('forced_rate'))}% of samples (pass@1 {_pct(got.get('pass@1_forced'))}"
                      f"% forced, {_pct(got.get('pass@1_unforced'))}% not)") if got else ""
            lines.append(f"  - thinking budget {thinking.get('budget')} tokens (s1 budget forcing), answer cap "
                         f"{thinking.get('answer_cap')} tokens, cue {thinking.get('cue')!r}{forced}")
    lines += _stack_lines(results.get("stack"))
    lines += ["", "## Details", ""]
    lines += _md_table(COLUMNS, rows)
    lines += ["", "pass@k is the unbiased estimator of Chen et al. (2021); maj@n is the majority vote over n samples."]
    lines += _truncation_lines(results)
    return "\n".join(lines) + "\n"


def _spread_text(spread: Any) -> str:
    if not isinstance(spread, Mapping) or spread.get("median") is None:
        return "-"
    return f"{spread['median']:.0f} / {spread['p90']:.0f}"


TRUNCATION_HEADER = ("benchmark", "truncated (%)", "pass@1 finished (%)", "pass@1 truncated (%)", "tokens median / p90",
                     "think closed (%)", "think median / p90", "answer median / p90")


def _truncation_lines(results: Mapping[str, Any]) -> list[str]:
    """report.md's truncation section: the per-benchmark table and the accuracy-at-budget curve in numbers."""
    benchmarks = results.get("benchmarks") or {}
    rows = []
    for name, m in benchmarks.items():
        lengths = m.get("lengths") or {}
        rows.append([name, _pct(m.get("truncated_rate")), _pct(m.get("pass@1_finished")),
                     _pct(m.get("pass@1_truncated")), _spread_text(lengths.get("tokens")),
                     _pct(m.get("think_closed_rate")), _spread_text(lengths.get("think_tokens")),
                     _spread_text(lengths.get("answer_tokens"))])
    if not rows:
        return []
    lines = ["", "## Truncation and length", ""] + _md_table(TRUNCATION_HEADER, rows)
    lines += ["", "A sample is truncated when it hit max_tokens (finish_reason `length`). pass@1 finished / truncated "
              "are means over those samples. Lengths are generated tokens; the think / answer split is estimated "
              "(r1h.harness.eval.thinking).", "", "### Accuracy at budget (budget.png)", ""]
    for name, m in benchmarks.items():
        curve = m.get("budget_curve") or {}
        if curve:
            lines.append(f"- {name}: " + ", ".join(f"{b}: {_pct(v)}" for b, v in curve.items()))
    lines += ["", "pass@1 (%) counting a sample as correct at budget B only when it is correct and finished within B "
              "tokens: what a smaller max_tokens would have scored."]
    return lines


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


def curve_figure(curves: list[tuple[str, Mapping[str, float]]], *, xlabel: str, ylabel: str, title: str):
    """A figure (matplotlib, Agg) of one line per benchmark over a log2 x-axis, values in [0, 1] shown in percent.

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
    all_xs: list[int] = []
    for i, (name, points) in enumerate([(name, points) for name, points in curves if points]):
        xs = sorted(int(x) for x in points)
        all_xs += xs
        ax.plot(xs, [100.0 * points[str(x)] for x in xs], marker=MARKERS[i % len(MARKERS)],
                linestyle=LINESTYLES[i % len(LINESTYLES)], markersize=max(4.0, 11.0 - 1.5 * i),
                markerfacecolor="none", markeredgewidth=1.5, linewidth=1.5, clip_on=False, label=name)
    ax.set_xscale("log", base=2)
    if all_xs:
        ticks = sorted(set(all_xs))
        ax.set_xlim(ticks[0] / 1.4, ticks[-1] * 1.4)  # a margin left and right, also when there is one x
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(x) for x in ticks], fontsize=7 if len(ticks) > 8 else None)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(*Y_LIMITS)
    ax.set_yticks(range(0, 101, 20))
    ax.set_title(title, fontsize=9)
    ax.grid(True, alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0)
    fig.tight_layout()
    return fig


def _curves(results: Mapping[str, Any], key: str) -> list[tuple[str, Mapping[str, float]]]:
    return [(name, m.get(key) or {}) for name, m in (results.get("benchmarks") or {}).items()]


def passk_figure(results: Mapping[str, Any]):
    """The pass@k figure, one line per benchmark (:func:`curve_figure`); :func:`plot_passk` saves it."""
    return curve_figure(_curves(results, "pass@k"), xlabel="k", ylabel="pass@k (%)",
                        title=f"pass@k: {results.get('model', '')}")


def budget_figure(results: Mapping[str, Any]):
    """Accuracy at budget: pass@1 counting only samples correct and finished within B tokens, against B."""
    return curve_figure(_curves(results, "budget_curve"), xlabel="token budget B (max_tokens)",
                        ylabel="pass@1 within B tokens (%)", title=f"accuracy at budget: {results.get('model', '')}")


def _save(make: Any, results: Mapping[str, Any], path: Any, name: str) -> bool:
    try:
        fig = make(results)
    except ImportError:
        print(f"r1h: warning: matplotlib is not installed; skipping {name} (pip install 'r1h[plots]')",
              file=sys.stderr)
        return False
    import matplotlib.pyplot as plt

    fig.savefig(path)
    plt.close(fig)
    return True


def plot_passk(results: Mapping[str, Any], path: Any) -> bool:
    """Write passk.png. Returns False (and warns) when matplotlib is missing."""
    return _save(passk_figure, results, path, "passk.png")


def plot_budget(results: Mapping[str, Any], path: Any) -> bool:
    """Write budget.png (accuracy at budget). Returns False (and warns) when matplotlib is missing."""
    return _save(budget_figure, results, path, "budget.png")


def write_report(store: Any, results: Mapping[str, Any], console: Any = None) -> None:
    """report.md, passk.png and budget.png next to results.json."""
    store.report_md.write_text(markdown(results), encoding="utf-8")
    if plot_passk(results, store.passk_png):
        plot_budget(results, store.budget_png)


def results_table(results: Mapping[str, Any], width: int | None = None):
    """The results table for a terminal ``width`` characters wide (None: every column). Columns that do not fit go
    in DROP_ORDER and a caption names them; the benchmark name and pass@1 are never cut."""
    from rich.table import Table

    rows = table_rows(results)
    kept = fit_columns(rows, width)
    notes = []
    dropped = [c for c in DROP_ORDER if COLUMNS.index(c) not in kept]
    if dropped:
        notes.append(f"not shown at {width} columns: {', '.join(dropped)} (see report.md)")
    if incomplete(results):
        notes.append(f"{INCOMPLETE_MARK} incomplete: fewer samples than n (see report.md)")
    table = Table(title=f"r1h eval: {results.get('model', '')}", caption="; ".join(notes) or None)
    for i in kept:
        if i in (0, 1):  # the benchmark name folds onto a second line rather than being cut; pass@1 stays whole
            longest = max([len(COLUMNS[i]), *(len(row[i]) for row in rows)])
            table.add_column(COLUMNS[i], justify="left" if i == 0 else "right", no_wrap=i == 1, overflow="fold",
                             min_width=min(longest, 24) if i == 0 else longest)
        else:
            table.add_column(COLUMNS[i], justify="left" if i == 4 else "right")
    for row in rows:
        table.add_row(*(row[i] for i in kept))
    return table
