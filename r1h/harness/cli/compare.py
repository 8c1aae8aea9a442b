"""``r1h compare RUN_A RUN_B [RUN_C ...]``: pass@1 side by side with paired significance tests."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("compare")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["md", "json"]), default="md", show_default=True)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write the table here instead of stdout.")
@click.option("--plot", "plot_file", type=click.Path(path_type=Path), help="Write a bar chart with 95% CI (PNG).")
@click.option("--bootstrap", "n_boot", type=click.IntRange(100), default=5000, show_default=True,
              help="Bootstrap resamples for the paired test.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the bootstrap.")
@click.option("--force", is_flag=True, help="Compare runs of different benchmark versions (warn), overwrite outputs.")
def compare_cmd(runs, fmt, output, plot_file, n_boot, seed, force):
    """Compare runs against the FIRST one: pass@1 with 95% CI, delta and a paired test over shared problems
    (McNemar for one sample per problem: exact below 25 discordant pairs, else chi-square; otherwise a paired
    bootstrap). Scores are shown in percent."""
    from r1h.harness.core.errors import ConfigError
    from r1h.tools.compare import compare_runs, load_run, plot, to_json, to_markdown, warn

    for target in (output, plot_file):
        if target is not None and target.exists() and not force:
            raise ConfigError(f"{target} exists; use --force to overwrite it")
    loaded = [load_run(path) for path in runs]
    comparison = compare_runs(loaded, force=force, n_boot=n_boot, seed=seed)
    for message in comparison["warnings"]:
        warn(message)
    text = to_json(comparison) if fmt == "json" else to_markdown(comparison)
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(text, encoding="utf-8")
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(text, nl=False)
    if plot_file is not None:
        plot(comparison, plot_file)
        click.echo(f"wrote {plot_file}", err=True)
