"""``r1h train sft | grpo | grpo-vl``: the original guide's recipes on TRL, with r1h's reward plugins.

Heavy imports (torch, transformers, trl, datasets) happen only when a run starts, never at import.
"""

from __future__ import annotations

import json
import sys

import click

from r1h.harness.core.errors import ConfigError, FlagError
from r1h.harness.core.options import split_pairs
from r1h.harness.system import settings

WORKFLOWS = ("sft", "grpo", "grpo-vl")


def parse_trl_flags(args: list[str]) -> list[str]:
    """TRL-style extra flags (``--learning_rate 1e-6``, ``--max_steps=3``, ``--bf16``) -> ``key=value`` overrides."""
    out, i = [], 0
    while i < len(args):
        token = args[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument {token!r} (TRL-style flags look like --learning_rate 1e-6)")
        key, sep, value = token[2:].partition("=")
        if not sep:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value, i = args[i + 1], i + 1
            else:
                value = "true"
        out.append(f"{key.replace('-', '_')}={value}")
        i += 1
    return out


def _rebuild_argv(params: dict, extra: list[str]) -> list[str]:
    """The command line of this run, for re-execution under ``accelerate launch`` (launcher options dropped later)."""
    names = {"sets": "--set", "rewards": "--reward", "accelerate_args": "--accelerate-arg"}
    argv: list[str] = []
    for key, value in params.items():
        flag = names.get(key) or "--" + key.replace("_", "-")
        if key == "use_vllm" and value is False:
            argv.append("--no-vllm")
            continue
        if value is None or value is False or value == () or key == "launcher":
            continue
        if isinstance(value, tuple):
            for v in value:
                argv += [flag, str(v)]
        elif value is True:
            argv.append(flag)
        else:
            argv += [flag, str(value)]
    return argv + list(extra)


def _options(f):
    options = [
        click.option("--recipe", "-r", help="Recipe name (see `r1h train --list`) or a recipe YAML file."),
        click.option("--model", "-m", help="Base model (hub id or local directory); replaces the recipe's."),
        click.option("--data", "-d", help="Training data: hub id, local dataset clone, or .jsonl/.json/.parquet/.csv."),
        click.option("--output-dir", "-o", help="Where checkpoints go (default runs/train/<recipe>)."),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                     help="Override a recipe value: a TRL config field, model, data.<key>, processor.<key>."),
        click.option("--reward", "rewards", multiple=True, metavar="NAME[:WEIGHT]",
                     help="A registered reward (repeatable); replaces the recipe's rewards (GRPO only)."),
        click.option("--limit", type=int, help="Use only the first N training rows (smoke runs)."),
        click.option("--use-vllm/--no-vllm", default=None, help="Generate with vLLM (TRL use_vllm)."),
        click.option("--vllm-mode", type=click.Choice(["colocate", "server"]), help="TRL vllm_mode."),
        click.option("--report-to", help="TRL report_to: none (default), tensorboard, wandb."),
        click.option("--eval-bench", help="An r1h benchmark to run on the current weights during training."),
        click.option("--eval-every", type=int, default=0, show_default=True, help="Run --eval-bench every N steps."),
        click.option("--eval-limit", type=int, default=8, show_default=True, help="Problems per evaluation."),
        click.option("--eval-n", type=int, help="Samples per problem (default: the benchmark's protocol n)."),
        click.option("--eval-data", help="Data source for --eval-bench (default: the benchmark's)."),
        click.option("--eval-max-tokens", type=int, help="New tokens per evaluation answer."),
        click.option("--launcher", type=click.Choice(["none", "accelerate"]), default="none", show_default=True,
                     help="Re-run this command under `accelerate launch`."),
        click.option("--accelerate-config", default=None,
                     help="single_gpu, multi_gpu, zero3, cpu, or a config file (default: multi_gpu; cpu with --cpu)."),
        click.option("--num-processes", type=click.IntRange(1), help="accelerate --num_processes."),
        click.option("--cpu", is_flag=True, help="accelerate --cpu (gloo data parallel on CPU)."),
        click.option("--main-process-port", type=int, help="accelerate --main_process_port."),
        click.option("--accelerate-arg", "accelerate_args", multiple=True,
                     help="Extra `accelerate launch` argument, e.g. '--machine_rank 1' (repeatable)."),
        click.option("--no-progress", is_flag=True, help="No live progress display for data preparation."),
        click.option("--dry-run", is_flag=True,
                     help="Validate; print the effective numbers next to the original's (stderr) and the resolved "
                          "recipe as JSON (stdout); load no model."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _make(workflow: str, help_text: str) -> click.Command:
    @click.command(
        name=workflow,
        help=help_text + "\n\nExtra TRL-style flags (--learning_rate 1e-6, --max_steps 3) override config fields.",
        context_settings={"ignore_unknown_options": True, "allow_extra_args": True},
    )
    @_options
    @click.pass_context
    def command(ctx: click.Context, **params):
        run_workflow(workflow, params, list(ctx.args))

    return command


def _print_effective(resolved, config) -> dict:
    """The dry-run table (stderr): this run's effective numbers next to the original's, differences flagged."""
    from r1h.trainers.common import effective_rows
    from r1h.trainers.effective import render_table

    for note in resolved.notes:
        click.echo(f"r1h train: {note}", err=True)
    rows = effective_rows(resolved, config)
    if not rows:
        click.echo(f"r1h train: recipe {resolved.recipe.name} names no original run to compare with", err=True)
        return {}
    original = resolved.recipe.original
    differ = render_table(rows, f"{resolved.recipe.name} on {resolved.processes} process(es) vs the original")
    click.echo(f"original: {original.get('name', 'original run')}", err=True)
    for source in original.get("sources") or ():
        click.echo(f"  {source}", err=True)
    for warning in resolved.warnings:
        click.echo(f"r1h train: WARNING: {warning}", err=True)
    if differ:
        click.echo(f"r1h train: {differ} setting(s) differ from the original (marked ≠)", err=True)
    else:
        click.echo("r1h train: every listed setting matches the original", err=True)
    return {what: {"original": a, "effective": b, "differs": d} for what, a, b, d in rows}


def run_workflow(workflow: str, params: dict, extra: list[str]) -> None:
    from r1h.trainers.common import TrainOptions, build_config, plan
    from r1h.trainers.launch import LAUNCHED_ENV, launch_command, run_launched

    sets = list(params["sets"]) + parse_trl_flags(extra)
    split_pairs("--set", sets)  # one KEY=VALUE grammar: a key given twice (by --set or a TRL flag) is refused
    if params.get("use_vllm") is not None:
        sets.append(f"use_vllm={str(params['use_vllm']).lower()}")
    if params.get("vllm_mode"):
        sets.append(f"vllm_mode={params['vllm_mode']}")
    if params.get("report_to"):
        sets.append(f"report_to={params['report_to']}")
    options = TrainOptions(
        workflow=workflow,
        recipe=params.get("recipe"),
        model=params.get("model"),
        data=params.get("data"),
        output_dir=params.get("output_dir"),
        sets=sets,
        rewards=list(params.get("rewards") or ()),
        limit=params.get("limit"),
        eval_bench=params.get("eval_bench"),
        eval_every=params.get("eval_every") or 0,
        eval_limit=params.get("eval_limit") or 8,
        eval_n=params.get("eval_n"),
        eval_data=params.get("eval_data"),
        eval_max_tokens=params.get("eval_max_tokens"),
        # the batch layout follows the processes that will train: --num-processes for a dry run or the launcher's
        # parent; a training process reads WORLD_SIZE (a run without a launcher is one process)
        num_processes=params.get("num_processes") if params.get("dry_run") or params.get("launcher") == "accelerate"
        else None,
        progress=not params.get("no_progress"),
    )
    if params.get("accelerate_config"):  # a bad name fails here, in a --dry-run too, not after the launch
        from r1h.trainers.launch import accelerate_config_path, accelerate_configs

        try:
            accelerate_config_path(params["accelerate_config"])
        except ConfigError:
            raise FlagError(f"--accelerate-config {params['accelerate_config']!r}: not a file and not one of "
                            f"{', '.join(accelerate_configs())}") from None
    resolved = plan(options)  # every one-line error about recipe, rewards and flags comes from here
    if params.get("dry_run"):
        config = build_config(resolved)  # TRL's own consistency checks
        from r1h.trainers.datacheck import check_training_data

        checked = check_training_data(resolved)  # the data's columns and types against the recipe and rewards
        summary = resolved.recipe.to_dict()
        summary["config"] = resolved.config_kwargs
        summary["rewards"] = [getattr(r, "__name__", str(r)) for r in resolved.rewards] or summary["rewards"]
        summary["data_check"] = checked
        summary["effective"] = _print_effective(resolved, config)
        click.echo(json.dumps(summary, indent=2, default=str))
        return
    if params.get("launcher") == "accelerate" and not settings.get(LAUNCHED_ENV):
        config = params.get("accelerate_config") or ("cpu" if params.get("cpu") else "multi_gpu")
        cmd = launch_command(workflow, _rebuild_argv(params, extra), config, params.get("num_processes"),
                             bool(params.get("cpu")), params.get("main_process_port"),
                             tuple(params.get("accelerate_args") or ()))
        code = run_launched(cmd)
        if code:
            raise click.exceptions.Exit(code)
        return
    if workflow == "sft":
        from r1h.trainers import sft

        trainer = sft.run(resolved)
    else:
        from r1h.trainers import grpo

        trainer = grpo.run(resolved, vision=workflow == "grpo-vl")
    if trainer.accelerator.is_main_process:
        click.echo(f"checkpoint: {resolved.output_dir}", err=False)
        click.echo(f"evaluate it: r1h eval --model {resolved.output_dir} --bench <name>", err=True)


@click.group(name="train", invoke_without_command=True)
@click.option("--list", "list_", is_flag=True, help="List the shipped recipes and accelerate configs.")
@click.option("--json", "as_json", is_flag=True, help="With --list: print JSON.")
@click.pass_context
def train_cmd(ctx: click.Context, list_: bool, as_json: bool) -> None:
    """Train with the guide's recipes: distillation SFT, GRPO on Countdown, GRPO-VL (R1-V)."""
    if ctx.invoked_subcommand is not None:
        return
    if not list_:
        click.echo(ctx.get_help())
        return
    from r1h.trainers.launch import accelerate_configs
    from r1h.trainers.recipes import list_recipes

    rows = list_recipes()
    if as_json:
        click.echo(json.dumps({"recipes": rows, "accelerate_configs": accelerate_configs()}, indent=2))
        return
    width = max(len(r["name"]) for r in rows) if rows else 0
    for r in rows:
        click.echo(f"{r['name']:<{width}}  {r['workflow']:<7}  {r['model']:<28}  {r['description']}")
    click.echo(f"accelerate configs: {', '.join(accelerate_configs())}", file=sys.stdout)


train_cmd.add_command(_make("sft", "Distillation SFT (default recipe stratos-qwen2.5-math-1.5b)."))
train_cmd.add_command(_make("grpo", "GRPO on text prompts (default recipe countdown-qwen2.5)."))
train_cmd.add_command(_make("grpo-vl", "GRPO on image + text prompts (default recipe r1v-clevr-qwen2-vl-2b)."))
