"""``r1h eval``: evaluate a model on benchmarks with the R1 protocol (resumable)."""

from __future__ import annotations

import click

from r1h.harness.cli import flags
from r1h.harness.cli.flags import backend_options
from r1h.harness.core.errors import FlagError


@click.command("eval")
@click.option("--model", default=None, help="Checkpoint dir, hub id or .gguf (default: the backend's; SmolLM2-135M).")
@click.option("--bench", default="all", show_default=True, help="'all' or a comma list of benchmarks.")
@click.option("--backend", default="transformers", show_default=True, help="transformers, vllm, openai, gold ...")
@backend_options
@click.option("--data", "data", multiple=True, metavar="NAME=SOURCE",
              help="Data source of a benchmark: hub id, local dataset clone or .jsonl/.json/.parquet/.csv (repeatable).")
@click.option("--limit", type=int, default=None, help="Only the first N problems of each benchmark.")
@click.option("-n", "--n", "n", type=int, default=None,
              help="Samples per problem (default: the benchmark's R1 protocol n).")
@click.option("--temperature", type=float, default=None, help="Sampling temperature (default 0.6).")
@click.option("--top-p", "top_p", type=float, default=None, help="Nucleus sampling (default 0.95).")
@click.option("--max-tokens", "max_tokens", type=int, default=None, help="New tokens per sample (default 32768).")
@click.option("--seed", type=int, default=0, show_default=True, help="Base seed; per-sample seeds derive from it.")
@click.option("--greedy", is_flag=True, help="n=1 and temperature 0.")
@click.option("--output", default=None, metavar="DIR", help="Run directory (default runs/<model>/<timestamp>).")
@click.option("--budget", type=float, default=None, help="Grading seconds per item (default: the reward's).")
@click.option("--generation-config", "generation_policy", type=click.Choice(["neutral", "model"]), default="neutral",
              show_default=True,
              help="neutral: every backend sends neutral top-k/min-p/repetition penalty; model: the checkpoint's "
                   "generation_config.json fills them.")
@click.option("--shard", default=None, metavar="I/N",
              help="Run only shard I of N (0-based) of the (problem, sample) pairs into the same --output.")
@click.option("--merge", is_flag=True,
              help="Fold the shard files of --output DIR into the whole run (settings from DIR/run.json), generate "
                   "what is still missing, and write results.")
@click.option("--force", is_flag=True,
              help="Write into an existing --output folder that is not an r1h run (its report.md and results.json "
                   "are replaced).")
@click.option("--thinking-budget", "thinking_budget", default=None, metavar="B[,B...]",
              help="s1 budget forcing: stop the thinking at B tokens, close it (</think>) and let the model answer "
                   "after the benchmark's answer cue within --answer-cap tokens. A comma list runs one run per "
                   "budget into --output/budget-B and plots accuracy against budget (budget_sweep.png).")
@click.option("--answer-cap", "answer_cap", type=int, default=None,
              help="Tokens for the answer after a forced </think> (default 512).")
@click.option("--answer-cue", "answer_cue", default=None,
              help="Text written after a forced </think>, taken literally (default: the benchmark's answer cue, "
                   "e.g. ending in '\\boxed{' for math; in bash, newlines as $'\\n').")
@click.option("--no-progress", is_flag=True, help="No live progress bar or progress lines (eval.log still gets them).")
@click.option("--batch-size", "batch_size", default=None, hidden=True, expose_value=True)
def eval_cmd(model, bench, backend, base_url, backend_args, data, limit, n, temperature, top_p, max_tokens, seed, greedy,
             output, budget, generation_policy, shard, merge, force, thinking_budget, answer_cap, answer_cue,
             no_progress, batch_size):
    """Evaluate MODEL on benchmarks: pass@1 (mean of n), pass@k, maj@n, bootstrap CI.

    Rerunning the same command with the same --output resumes the run: only missing samples are generated.
    Ctrl-C or SIGTERM stops cleanly (exit 130 / 143); what was graded is saved.
    """
    from r1h.harness.eval.budget import parse_budgets
    from r1h.harness.eval.plan import EvalOptions
    from r1h.harness.eval.runner import run_eval

    budgets = parse_budgets(thinking_budget)
    if len(budgets) > 1 and (shard or merge):
        raise FlagError("--thinking-budget with several budgets runs a sweep; it does not combine with --shard/--merge")
    if batch_size is not None:  # batching belongs to the backend; say where it went instead of "no such option"
        raise FlagError(f"--batch-size is a backend setting: use --backend-arg batch_size={batch_size}")
    opts = EvalOptions(
        model=model, bench=bench, backend=backend, backend_args=flags.backend_args(backend_args, base_url),
        data=flags.parse_pairs("--data", data), limit=limit, n=n, temperature=temperature, top_p=top_p,
        max_tokens=max_tokens, seed=seed, greedy=greedy, output=output, budget=budget,
        generation_policy=generation_policy, shard=shard, merge=merge, force=force, progress=not no_progress,
        thinking_budget=budgets[0] if budgets else None, answer_cap=answer_cap, answer_cue=answer_cue,
    )
    try:
        if len(budgets) > 1:
            from r1h.harness.eval.budget_sweep import markdown, run_sweep

            sweep = run_sweep(opts, budgets)
            click.echo(markdown(sweep))
            click.echo(f"r1h: thinking-budget sweep in {sweep['output']}: sweep.json, sweep.md, budget_sweep.png",
                       err=True)
        else:
            run_eval(opts)
    except KeyboardInterrupt as exc:
        flags.exit_stopped(exc)
