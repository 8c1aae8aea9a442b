"""``r1h regrade RUN_DIR --grader r1h --grader lighteval --grader lm-eval``: regrade saved completions."""

from __future__ import annotations

from pathlib import Path

import click

from r1h.harness.cli.flags import parse_pairs


@click.command("regrade")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--grader", "graders", multiple=True, default=("r1h",), show_default=True,
              help="r1h, lighteval, lm-eval, lm-eval:math_verify or lm-eval:hendrycks (repeatable).")
@click.option("--bench", "benches", multiple=True, help="Only these benchmarks of the run (repeatable).")
@click.option("--data", "data", multiple=True, metavar="NAME=SOURCE",
              help="Where a benchmark's gold data is (hub id, dataset clone or file); default: the run's config.")
@click.option("--python", "pythons", multiple=True, metavar="GRADER=PYTHON",
              help="Use this interpreter for a foreign grader (e.g. a tox env) instead of building a virtualenv.")
@click.option("--item-timeout", type=click.FloatRange(0, min_open=True), default=10.0, show_default=True,
              help="Seconds a foreign grader may spend on one sample; past it the sample is reported as a timeout.")
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Output folder (default RUN_DIR/regrade).")
@click.option("--force", is_flag=True, help="Overwrite an earlier regrade in the output folder.")
@click.option("--no-progress", is_flag=True, help="No live progress (a plain line when not on a terminal).")
def regrade_cmd(run_dir, graders, benches, data, pythons, item_timeout, output, force, no_progress):
    """Regrade RUN_DIR's saved completions with each grader: pass@1 per grader, and disagreements.jsonl listing
    every sample where the graders' verdicts differ, with each grader's extracted answer."""
    from r1h.harness.core.errors import ConfigError
    from r1h.tools.compare import load_run
    from r1h.tools.regrade import regrade, to_markdown, write_outputs

    run = load_run(run_dir)
    out_dir = output or run.path / "regrade"
    if not force and (out_dir / "regrade.json").exists():
        raise ConfigError(f"{out_dir} already holds a regrade; use --force to overwrite it")
    result = regrade(run, list(dict.fromkeys(graders)), benches=list(benches) or None, data=parse_pairs("--data", data, empty_ok=False),
                     pythons=parse_pairs("--python", pythons, empty_ok=False), log=lambda msg: click.echo(msg, err=True),
                     progress=not no_progress, item_timeout=item_timeout)
    write_outputs(result, out_dir, force=force)
    click.echo(to_markdown(result["summary"]), nl=False)
    click.echo(f"wrote {out_dir}/regrade.json, disagreements.jsonl ({len(result['disagreements'])} rows), "
               "verdicts.jsonl, report.md", err=True)
