"""Flag parsing shared by the subcommands, so that a flag means and reads the same in every command."""

from __future__ import annotations

import sys
from typing import NoReturn

import click

from r1h.harness.core.errors import FlagError, Terminated
from r1h.harness.core.options import split_pairs

parse_pairs = split_pairs  # the one KEY=VALUE splitter (r1h.harness.core.options), by the name the commands use


def backend_args(values: tuple[str, ...], base_urls: tuple[str, ...] = ()) -> dict[str, str]:
    """``--backend-arg KEY=VALUE`` flags, with ``--base-url`` (repeatable) folded in as ``base_url=URL[,URL...]``."""
    pairs = parse_pairs("--backend-arg", values)
    if base_urls:
        joined = ",".join(base_urls)
        if pairs.get("base_url", joined) != joined:
            raise FlagError("--base-url and --backend-arg base_url=... disagree; give one")
        pairs["base_url"] = joined
    return pairs


def backend_options(f):
    """``--backend-arg`` and ``--base-url``, worded the same in every command that runs a backend."""
    f = click.option("--base-url", "base_url", multiple=True, metavar="URL",
                     help="OpenAI-compatible server for --backend openai (repeatable: replicas; same as --backend-arg "
                          "base_url=URL[,URL...]).")(f)
    return click.option("--backend-arg", "backend_args", multiple=True, metavar="KEY=VALUE",
                        help="Backend option (repeatable); `r1h list backends --wide` shows each backend's.")(f)


def exit_stopped(exc: KeyboardInterrupt, kept: str = "the graded samples") -> NoReturn:
    """Ctrl-C or SIGTERM in a resumable command (eval, distill generate): one line naming what is kept and where
    (the run session puts ``output`` and ``kept`` on the exception), then exit 130 / 143."""
    where = getattr(exc, "output", "") or "the run directory"
    what = "SIGTERM" if isinstance(exc, Terminated) else "interrupt"
    click.echo(f"r1h: stopped by {what}; {getattr(exc, 'kept', kept)} are saved in {where}; rerun the same command to "
               "resume", err=True)
    sys.exit(143 if isinstance(exc, Terminated) else 130)
