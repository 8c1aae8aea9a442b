"""``r1h list``: the registered benchmarks, rewards and backends, with version, source plugin and description."""

from __future__ import annotations

import json

import click

KINDS = {"benchmarks": "benchmark", "rewards": "reward", "backends": "backend"}
_SINGULAR = {v: v for v in KINDS.values()}


@click.command("list")
@click.argument("kind", required=False, type=click.Choice([*KINDS, *_SINGULAR], case_sensitive=False), metavar="[KIND]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
def list_cmd(kind: str | None, as_json: bool) -> None:
    """List registered plugins; KIND is benchmarks, rewards or backends (default: all three).

    Plugins that failed to load are reported as warnings naming the plugin.
    """
    import r1h
    from r1h.harness.plugins import get_plugins

    kind = None if kind is None else (KINDS.get(kind.lower()) or kind.lower())
    rows = r1h.list_plugins(kind)
    for failure in get_plugins().failures:
        click.echo(f"r1h: warning: plugin {failure.plugin!r} failed to load: {failure.error}", err=True)
    for row in rows:  # a registered name whose target cannot be imported
        if row.get("error"):
            click.echo(f"warning: {row['kind']} {row['name']!r} (plugin {row['plugin']!r}): {row['error']}", err=True)

    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    _table(rows, kind)


def _table(rows: list[dict], kind: str | None) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(soft_wrap=False)
    if not console.is_terminal:  # piped: do not squeeze the table into 80 columns
        console = Console(soft_wrap=False, width=200)
    if not rows:
        console.print(f"no {kind + 's' if kind else 'plugins'} registered")
        return
    table = Table(show_lines=False, title=None)
    if kind is None:
        table.add_column("kind", style="cyan", no_wrap=True)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("version", no_wrap=True)
    table.add_column("plugin", style="magenta", no_wrap=True)
    table.add_column("description", overflow="fold")
    for row in rows:
        name = row["name"] + (f" ({', '.join(row['aliases'])})" if row.get("aliases") else "")
        cells = [name, row.get("version") or "-", row["plugin"], row.get("description") or ""]
        table.add_row(*([row["kind"]] if kind is None else []), *cells, style="red" if row.get("error") else None)
    console.print(table)
