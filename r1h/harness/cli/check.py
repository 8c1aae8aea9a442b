"""``r1h check RUN_DIR --baseline FILE`` / ``--anchor NAME`` (exit 1 on a regression, an unfinished run or a published
score outside the run's CI) and ``r1h baseline update RUN_DIR --baseline FILE``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("check")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_file", type=click.Path(path_type=Path),
              help="Baseline JSON written by `r1h baseline update`.")
@click.option("--anchor", "anchors", multiple=True, metavar="NAME",
              help="A published result to compare with (repeatable), e.g. open-r1-distill-qwen-1.5b; see docs/trust.md.")
@click.option("--tolerance", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Absolute tolerance on pass@1 as a fraction (0.02 = 2 points); the statistical one applies if larger.")
@click.option("--z", type=click.FloatRange(0), default=1.96, show_default=True, help="z multiplier of the combined standard error.")
@click.option("--two-sided", is_flag=True, help="Also fail when a score moves UP beyond tolerance (deterministic jobs).")
@click.option("--bench", "benches", multiple=True, help="Check only these benchmarks (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check_cmd(run_dir, baseline_file, anchors, tolerance, z, two_sided, benches, fmt):
    """Check RUN_DIR/results.json against a baseline within statistical tolerance (--baseline) or against published
    results (--anchor). Exit code 1 on an unfinished run, a regression, a missing benchmark, a changed benchmark version,
    or a published score outside the run's 95% CI; 0 otherwise."""
    import r1h
    from r1h.harness.core.errors import ConfigError, FlagError
    from r1h.harness.eval.report import incomplete
    from r1h.tools.anchors import check_anchor, to_dict
    from r1h.tools.anchors import render as render_anchor
    from r1h.tools.baseline import check_run, read_baseline, render
    from r1h.tools.compare import load_run

    if baseline_file is None and not anchors:
        raise FlagError("check needs --baseline FILE or --anchor NAME (or both)")
    run = load_run(run_dir)
    unfinished = incomplete(run.results)
    failed = bool(unfinished)
    report: dict = {"complete": not unfinished, "incomplete": unfinished}
    if unfinished:
        click.echo(f"{run_dir}: incomplete run: " + "; ".join(unfinished), err=True)
    if baseline_file is not None:
        baseline = read_baseline(baseline_file)
        rows = check_run(run, baseline, abs_tol=tolerance, z=z, two_sided=two_sided, only=list(benches) or None)
        failed |= any(r.failed for r in rows)
        report["rows"] = [{**r.__dict__, "failed": r.failed} for r in rows]
        if fmt == "text":
            click.echo(render(rows, run, baseline_file, tolerance, z), nl=False)
    for name in anchors:
        anchor = r1h.get_anchor(name)
        rows = [r for r in check_anchor(run, anchor) if not benches or r.bench in benches]
        if not any(r.inside is not None for r in rows):
            raise ConfigError(f"anchor {name!r} has none of the run's benchmarks "
                              f"({', '.join(run.benchmarks) or 'none'}); it has {', '.join(anchor.results)}")
        failed |= any(r.failed for r in rows)
        report.setdefault("anchors", []).append(to_dict(rows, anchor))
        if fmt == "text":
            click.echo(render_anchor(rows, run, anchor), nl=False)
    if fmt == "json":
        click.echo(json.dumps({"ok": not failed, **report}, indent=2, default=str))
    if failed:
        raise SystemExit(1)


@click.group("baseline")
def baseline_cmd():
    """Record regression baselines (on purpose) for `r1h check`."""


@baseline_cmd.command("update")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_file", required=True, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Replace an existing baseline file.")
def update_cmd(run_dir, baseline_file, force):
    """Write RUN_DIR's pass@1 (with standard errors and benchmark versions) as the baseline."""
    from r1h.tools.baseline import write_baseline
    from r1h.tools.compare import load_run

    baseline = write_baseline(load_run(run_dir), baseline_file, force=force)
    for bench, entry in baseline["benchmarks"].items():
        click.echo(f"{bench}: pass@1 {100 * entry['pass@1']:.2f} (SE {100 * entry['stderr']:.2f}) v{entry['version']}")
    click.echo(f"wrote {baseline_file}", err=True)
