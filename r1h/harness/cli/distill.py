"""``r1h distill generate|filter``: teacher traces, then reward-filtered SFT data."""

from __future__ import annotations

from pathlib import Path

import click

from r1h.harness.cli import flags
from r1h.harness.cli.flags import backend_options


@click.group("distill")
def distill_cmd():
    """Generate reasoning traces with a teacher, then keep those the rewards accept."""


@distill_cmd.command("generate")
@click.option("--teacher", default=None, help="Teacher model (checkpoint, hub id, .gguf; default: the backend's).")
@click.option("--backend", default="transformers", show_default=True, help="transformers, vllm, openai ...")
@backend_options
@click.option("--questions", required=True, help="Questions: a .jsonl/.json/.parquet/.csv file, dataset clone or hub id.")
@click.option("--question-column", default=None, help="Column with the question (default: problem/question/...).")
@click.option("--split", default="train", show_default=True, help="Split of a hub dataset or clone.")
@click.option("-n", "--n", "n", type=click.IntRange(1), default=1, show_default=True, help="Traces per question.")
@click.option("--system-prompt", default=None, help="System prompt text for the teacher.")
@click.option("--prompt", "prompt_name", type=click.Choice(["sky-t1"]), default=None,
              help="A named teacher prompt (sky-t1: the guide's <|begin_of_thought|> prompt).")
@click.option("--limit", type=click.IntRange(1), default=None, help="Only the first N questions.")
@click.option("--temperature", type=click.FloatRange(0), default=0.6, show_default=True)
@click.option("--top-p", "top_p", type=click.FloatRange(0, 1, min_open=True), default=0.95, show_default=True)
@click.option("--max-tokens", "max_tokens", type=click.IntRange(1), default=32768, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--batch-size", "batch_size", type=click.IntRange(1), default=8, show_default=True,
              help="Requests per generate() call of a batch backend (traces are saved one by one as they finish).")
@click.option("--no-progress", is_flag=True, help="No live progress (a plain line every 10 s when not on a terminal).")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="Folder for the traces; rerun the same command to resume.")
def generate_cmd(teacher, backend, base_url, backend_args, questions, question_column, split, n, system_prompt, prompt_name,
                 limit, temperature, top_p, max_tokens, seed, batch_size, no_progress, output):
    """Write n raw traces per question to OUTPUT/samples/traces.jsonl (resumable; a different config is refused).

    Ctrl-C or SIGTERM stops cleanly (exit 130 / 143); the finished traces are saved. A second run on the same OUTPUT
    is refused while this one runs."""
    from r1h.tools.distill import GenerateOptions, generate

    opts = GenerateOptions(questions=questions, output=output, teacher=teacher, backend=backend,
                           backend_args=flags.backend_args(backend_args, base_url), n=n, system_prompt=system_prompt,
                           prompt_name=prompt_name, question_column=question_column, split=split, limit=limit,
                           temperature=temperature, top_p=top_p, max_tokens=max_tokens, seed=seed,
                           batch_size=batch_size)
    try:
        summary = generate(opts, log=lambda msg: click.echo(msg, err=True), progress=not no_progress)
    except KeyboardInterrupt as exc:
        flags.exit_stopped(exc, kept="the finished traces")
    click.echo(f"{summary['traces']} traces for {summary['questions']} questions in {summary['path']}")


@distill_cmd.command("filter")
@click.argument("traces", type=click.Path(path_type=Path))
@click.option("--reward", "rewards", multiple=True, required=True, help="Reward a trace must pass (repeatable).")
@click.option("--threshold", type=float, default=1.0, show_default=True, help="Minimum score for every reward.")
@click.option("--max-per-question", type=click.IntRange(1), default=None,
              help="Keep at most this many traces per question.")
@click.option("--keep-truncated", is_flag=True, help="Keep traces cut by max tokens (finish_reason length).")
@click.option("--map", "column_map", multiple=True, metavar="REWARD_COLUMN=TRACE_COLUMN",
              help="Feed a question column to a reward under another name (e.g. answer=solution).")
@click.option("--output", "-o", required=True, type=click.Path(path_type=Path),
              help="Folder for stratos.jsonl, messages.jsonl and filter_report.json.")
@click.option("--force", is_flag=True, help="Overwrite earlier output files.")
def filter_cmd(traces, rewards, threshold, max_per_question, keep_truncated, column_map, output, force):
    """Keep the traces of TRACES (a generate folder or traces.jsonl) that every reward scores >= threshold; write
    Bespoke-Stratos (system, conversations) and messages files that `r1h train sft --data` reads."""
    from r1h.tools.distill import filter_traces, read_traces, write_training_files

    kept, report = filter_traces(read_traces(traces), list(rewards), threshold=threshold,
                                 max_per_question=max_per_question, keep_truncated=keep_truncated,
                                 column_map=flags.parse_pairs("--map", column_map), source=traces,
                                 warn=lambda line: click.echo(line, err=True))
    paths = write_training_files(kept, report, output, force=force)
    click.echo(f"kept {report['kept']} of {report['traces']} traces ({report['questions_kept']} of "
               f"{report['questions']} questions); dropped {report['dropped']} (a trace may fail several checks):")
    for name, count in report["failed_by_reward"].items():
        click.echo(f"  failed {name} (< {threshold:g}): {count}")
    click.echo(f"  truncated: {report['dropped_truncated']}")
    click.echo(f"  over --max-per-question: {report['dropped_over_max_per_question']}")
    click.echo(f"wrote {paths['stratos']}, {paths['messages']}, {paths['report']}", err=True)
