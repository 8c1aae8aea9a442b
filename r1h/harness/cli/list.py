"""``r1h list``: the registered benchmarks, rewards, backends and anchors (published results), with version, source plugin, the gold columns each
reward reads, and description.

The table fits the terminal (100 columns when the output is not a terminal and ``COLUMNS`` is unset): descriptions
are cut with an ellipsis, built-in plugins show as ``r1h``. ``--wide`` shows full descriptions and plugin modules,
and each backend's options (``--backend-arg``: name, type, default, help, from its ``Options`` class); ``--json``
gives them as ``options``.
A name registered without a version shows its distribution's version (r1h's for built-ins), never "-".
"""

from __future__ import annotations

import json
import os
from typing import Any

import click

KINDS = {"benchmarks": "benchmark", "rewards": "reward", "backends": "backend", "anchors": "anchor"}
_SINGULAR = {v: v for v in KINDS.values()}
NARROW_WIDTH = 100  # the width when stdout is not a terminal and COLUMNS is unset


@click.command("list")
@click.argument("kind", required=False, type=click.Choice([*KINDS, *_SINGULAR], case_sensitive=False), metavar="[KIND]")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list instead of a table.")
@click.option("--wide", is_flag=True, help="Full descriptions, plugin module names and each backend's options "
                                           "(lines may be long).")
def list_cmd(kind: str | None, as_json: bool, wide: bool) -> None:
    """List registered plugins; KIND is benchmarks, rewards, backends or anchors (default: all four).

    Rewards show the gold columns they read ("answer or solution": either; [brackets]: optional).
    Plugins that failed to load are reported as warnings naming the plugin.
    """
    import r1h
    from r1h.harness.core.plugins import get_plugins

    kind = None if kind is None else (KINDS.get(kind.lower()) or kind.lower())
    rows = r1h.list_plugins(kind)
    plugins = get_plugins()
    for failure in plugins.failures:
        click.echo(f"r1h: warning: plugin {failure.plugin!r} failed to load: {failure.error}", err=True)
    for row in rows:  # a registered name whose target cannot be imported
        if row.get("error"):
            click.echo(f"warning: {row['kind']} {row['name']!r} (plugin {row['plugin']!r}): {row['error']}", err=True)
        if not row.get("version"):
            row["version"] = plugin_version(plugins, row["plugin"])
        if row["kind"] == "reward":
            row.update(reward_columns(plugins, row["name"]))
        if row["kind"] == "backend" and (wide or as_json):
            row["options"], row["other_options"] = backend_options(plugins, row["name"])

    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    _table(rows, kind, wide)


def plugin_version(plugins: Any, plugin_name: str) -> str:
    """The version of the distribution that provides a plugin: r1h's own for built-ins; "unversioned" if none."""
    import r1h

    obj = plugins.pm.get_plugin(plugin_name) if hasattr(plugins, "pm") else None
    module = getattr(obj, "__name__", None) if obj is not None and hasattr(obj, "__file__") else None
    module = module or getattr(obj, "__module__", None) or plugin_name
    top = str(module).split(".")[0]
    if top == "r1h":
        return r1h.__version__
    try:
        from importlib import metadata

        for dist in metadata.packages_distributions().get(top, ()):
            return metadata.version(dist)
    except Exception:  # metadata of a broken install: still list the plugin
        pass
    return "unversioned"


def reward_columns(plugins: Any, name: str) -> dict[str, Any]:
    """``required_columns`` (groups of alternatives) and ``optional_columns`` of a registered reward."""
    try:
        cls = plugins.registry("reward").entry(name).resolve()
        groups = cls.column_groups()
        declared = tuple(getattr(cls, "columns", ()) or ())
    except Exception:  # an unimportable reward is already a warning
        return {}
    needed = {c for group in groups for c in group}
    return {"required_columns": [list(g) for g in groups], "optional_columns": [c for c in declared if c not in needed]}


def backend_options(plugins: Any, name: str) -> tuple[list[dict[str, str]] | None, str | None]:
    """A registered backend's options (``Options.table()``: name, type, default, help) and what other keys it takes
    (``Options.extra``); None where it declares none (it then reads raw ``--backend-arg`` strings) or cannot be
    imported (already a warning)."""
    try:
        options = getattr(plugins.registry("backend").entry(name).resolve(), "Options", None)
    except Exception:  # an unimportable backend is already a warning
        return None, None
    if options is None or not hasattr(options, "table"):
        return None, None
    return options.table(), options.extra or None


def columns_cell(row: dict[str, Any]) -> str:
    parts = [" or ".join(group) for group in row.get("required_columns", [])]
    parts += [f"[{c}]" for c in row.get("optional_columns", [])]
    return ", ".join(parts) or "(none)"


def _console(wide: bool):
    from rich.console import Console

    if wide:
        return Console(soft_wrap=True, width=100_000)  # nothing is cut; the terminal wraps long lines
    console = Console(soft_wrap=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(soft_wrap=False, width=NARROW_WIDTH)
    return console


def _table(rows: list[dict], kind: str | None, wide: bool) -> None:
    from rich import box
    from rich.table import Table
    from rich.text import Text

    console = _console(wide)
    if not rows:
        console.print(f"no {kind + 's' if kind else 'plugins'} registered")
        return
    kinds = [kind] if kind else [k for k in KINDS.values() if any(r["kind"] == k for r in rows)]
    for i, k in enumerate(kinds):
        headers = ["name", "version", "plugin", *(["columns"] if k == "reward" else []), "description"]
        body = [_cells(row, k, wide) for row in rows if row["kind"] == k]
        table = Table(box=box.SIMPLE_HEAD, title=None if kind else f"{k}s", title_justify="left",
                      expand=False, pad_edge=False, show_edge=False)
        widths = [max(len(header), *(len(cells[j]) for cells in body)) for j, header in enumerate(headers)]
        # the description is the only column that gives way (cut with an ellipsis); 3 = a column's padding + rule
        rest = max(12, console.width - sum(widths[:-1]) - 3 * (len(headers) - 1))
        for j, header in enumerate(headers):
            if header == "description":
                table.add_column(header, no_wrap=True, overflow="fold" if wide else "ellipsis",
                                 width=None if wide else min(rest, widths[j]))
            else:
                table.add_column(header, no_wrap=True, width=widths[j], style="bold" if j == 0 else None)
        for row, cells in zip((r for r in rows if r["kind"] == k), body, strict=True):
            table.add_row(*(Text(c) for c in cells), style="red" if row.get("error") else None)
        if i:
            console.print()
        console.print(table, crop=not wide)
        if k == "backend" and wide:
            _options_tables(console, [r for r in rows if r["kind"] == k])


def _options_tables(console: Any, rows: list[dict]) -> None:
    """Each backend's ``--backend-arg`` options, one table per backend."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    for row in rows:
        options = row.get("options")
        console.print()
        if options is None:
            console.print(f"{row['name']} --backend-arg: not declared (the backend reads raw KEY=VALUE strings)")
            continue
        if not options:
            console.print(f"{row['name']} --backend-arg: none")
            continue
        table = Table(box=box.SIMPLE_HEAD, title=f"{row['name']} --backend-arg", title_justify="left", expand=False,
                      pad_edge=False, show_edge=False)
        for j, header in enumerate(("option", "type", "default", "help")):
            table.add_column(header, no_wrap=True, style="bold" if j == 0 else None)
        for option in options:
            table.add_row(*(Text(option[key]) for key in ("name", "type", "default", "help")))
        console.print(table, crop=False)
        if row.get("other_options"):
            console.print(f"and {row['other_options']}")


def _cells(row: dict[str, Any], kind: str, wide: bool) -> list[str]:
    name = row["name"] + (f" ({', '.join(row['aliases'])})" if wide and row.get("aliases") else "")
    plugin = row["plugin"] if wide or not row["plugin"].startswith("r1h.") else "r1h"
    cells = [name, str(row["version"]), plugin]
    if kind == "reward":
        cells.append(columns_cell(row))
    cells.append(row.get("description") or "")
    return cells
