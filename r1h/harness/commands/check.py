"""``r1h check RUN_DIR --baseline FILE`` (exit 1 on a regression) and ``r1h baseline update RUN_DIR --baseline FILE``."""

from __future__ import annotations

import json
from pathlib import Path

import click


@click.command("check")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--baseline", "baseline_file", required=True, type=click.Path(path_type=Path),
              help="Baseline JSON written by `r1h baseline update`.")
@click.option("--tolerance", type=click.FloatRange(0), default=0.0, show_default=True,
              help="Absolute tolerance on pass@1 as a fraction (0.02 = 2 points); the statistical one applies if larger.")
@click.option("--z", type=click.FloatRange(0), default=1.96, show_default=True, help="z multiplier of the combined standard error.")
@click.option("--two-sided", is_flag=True, help="Also fail when a score moves UP beyond tolerance (deterministic jobs).")
@click.option("--bench", "benches", multiple=True, help="Check only these benchmarks (repeatable).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def check_cmd(run_dir, baseline_file, tolerance, z, two_sided, benches, fmt):
    """Compare RUN_DIR/results.json with a baseline within statistical tolerance. Exit code 1 on a regression, a
    missing benchmark or a changed benchmark version; 0 otherwise."""
    from ...tools.baseline import check_run, read_baseline, render
    from ...tools.compare import load_run

    run = load_run(run_dir)
    baseline = read_baseline(baseline_file)
    rows = check_run(run, baseline, abs_tol=tolerance, z=z, two_sided=two_sided, only=list(benches) or None)
    if fmt == "json":
        click.echo(json.dumps({"ok": not any(r.failed for r in rows),
                               "rows": [{**r.__dict__, "failed": r.failed} for r in rows]}, indent=2))
    else:
        click.echo(render(rows, run, baseline_file, tolerance, z), nl=False)
    if any(r.failed for r in rows):
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
    from ...tools.baseline import write_baseline
    from ...tools.compare import load_run

    baseline = write_baseline(load_run(run_dir), baseline_file, force=force)
    for bench, entry in baseline["benchmarks"].items():
        click.echo(f"{bench}: pass@1 {100 * entry['pass@1']:.2f} (SE {100 * entry['stderr']:.2f}) v{entry['version']}")
    click.echo(f"wrote {baseline_file}", err=True)
