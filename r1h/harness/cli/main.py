"""The ``r1h`` command line. Subcommands live in ``r1h/harness/cli/`` and are imported only when invoked, so
``r1h --help`` stays fast and never imports torch. Domain errors (:class:`R1HError`) become click errors here only.

Exit statuses (README "Exit codes"):

- 0: success. ``r1h doctor`` also uses 2 for "warnings only"; ``r1h check`` uses 1 for a regression.
- 1: a domain error (:class:`R1HError`: missing data, a run that cannot be resumed, a failed plugin): one line
  ``Error: ...``.
- 2: a usage error: a bad flag type, range or choice (click's own checks) or a flag value r1h's validation rejects
  (:class:`FlagError`), with the usage line, as click does.
- 130 / 143: stopped by Ctrl-C / SIGTERM (one line, never click's "Aborted!").
"""

from __future__ import annotations

import importlib

import click

from r1h.harness.core.errors import FlagError, R1HError, Terminated

# command name -> "module:attr" of a click command; the help text is shown without importing the module.
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("r1h.harness.cli.list:list_cmd", "List registered benchmarks, rewards and backends."),
    "score": ("r1h.harness.cli.score:score_cmd", "Score a JSONL file of completions with a reward."),
    "eval": ("r1h.harness.cli.eval:eval_cmd", "Evaluate a model on benchmarks (R1 protocol pass@1)."),
    "train": ("r1h.harness.cli.train:train_cmd", "Train with the guide's SFT / GRPO / GRPO-VL recipes."),
    "distill": ("r1h.harness.cli.distill:distill_cmd", "Generate and filter distillation traces."),
    "regrade": ("r1h.harness.cli.regrade:regrade_cmd", "Regrade a run with r1h, lighteval or lm-eval graders."),
    "compare": ("r1h.harness.cli.compare:compare_cmd", "Compare runs with paired significance tests."),
    "check": ("r1h.harness.cli.check:check_cmd", "Check a run against a baseline (non-zero on regression)."),
    "baseline": ("r1h.harness.cli.check:baseline_cmd", "Manage regression baselines."),
    "doctor": ("r1h.harness.cli.doctor:doctor_cmd", "Check this machine's stack; print pip constraints for it."),
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on use; R1HError becomes a one-line click error."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (target, _) in COMMANDS.items() if _module_exists(target)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, _ = COMMANDS[cmd_name]
        module_name, _, attr = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None
            raise
        return getattr(module, attr)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # `r1h --help` describes the subcommands from COMMANDS, without importing their modules.
        rows = [(name, COMMANDS[name][1]) for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt as exc:  # click would print "Aborted!" and exit 1; eval and score say what they kept
            terminated = isinstance(exc, Terminated)
            click.echo(f"r1h: stopped by {'SIGTERM' if terminated else 'interrupt'}", err=True)
            ctx.exit(143 if terminated else 130)
        except FlagError as exc:  # a usage error: exit 2 with the failing subcommand's usage line, as click does
            raise click.UsageError(str(exc), ctx=_innermost_context(exc) or ctx) from exc
        except R1HError as exc:
            raise click.ClickException(str(exc)) from exc


def _innermost_context(exc: BaseException) -> click.Context | None:
    """The context of the (sub)command that raised: the last click frame's ``ctx`` (click pops it on the way out)."""
    found = None
    tb = exc.__traceback__
    while tb is not None:
        candidate = tb.tb_frame.f_locals.get("ctx")
        if isinstance(candidate, click.Context):
            found = candidate
        tb = tb.tb_next
    return found


def _module_exists(target: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(target.partition(":")[0]) is not None
    except ModuleNotFoundError:
        return False


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="r1h", prog_name="r1h")
def main() -> None:
    """r1h: evaluate and train DeepSeek-R1-style reasoning models with one set of graders."""


if __name__ == "__main__":  # pragma: no cover
    main()
