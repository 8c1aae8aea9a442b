"""``r1h doctor [--json] [--need WORKFLOW] [--constraints]``: check the stack, or print pip constraints for it."""

from __future__ import annotations

import json
import sys

import click


@click.command("doctor")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output (stack, findings, exit_code).")
@click.option("--need", "needs", multiple=True, type=click.Choice(["eval", "train", "vision", "vllm", "deepspeed"]),
              help="A workflow you mean to run: what it needs but lacks is an error (repeatable).")
@click.option("--constraints", is_flag=True,
              help="Print a pip constraints file pinning every vendor build (+metax, +cu124, +rocm...) and torch.")
@click.option("--hub-timeout", type=click.FloatRange(0.1, 60), default=3.0, show_default=True,
              help="Seconds to wait for the hub.")
def doctor_cmd(as_json, needs, constraints, hub_timeout):
    """Python, OS, ML libraries with their builds, accelerators, vLLM vs TRL's range, hub, caches and free disk.
    Each problem comes with its fix. Exit status: 0 all good, 2 warnings only, 1 something blocks a workflow."""
    from r1h.harness.system.doctor import render, run
    from r1h.harness.system.stack import constraints as pins

    if constraints:
        click.echo(pins(), nl=False)
        return
    report = run(list(needs), hub_timeout=hub_timeout)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(render(report), nl=False)
    sys.exit(report["exit_code"])
