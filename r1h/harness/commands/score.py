"""``r1h score``: grade a JSONL file of completions with a registered reward, in bulk, with hard budgets."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import click

from ..errors import ConfigError, DataError, FlagError


def parse_params(values: tuple[str, ...]) -> dict[str, Any]:
    """``--param key=value`` flags: values are read as JSON where they parse (numbers, booleans), else as strings."""
    params: dict[str, Any] = {}
    for value in values:
        key, sep, raw = value.partition("=")
        key = key.strip()
        if not sep or not key:
            raise FlagError(f"--param {value!r}: expected KEY=VALUE")
        if key in params:
            raise FlagError(f"--param {key}: given twice")
        try:
            params[key] = json.loads(raw)
        except ValueError:
            params[key] = raw
    return params


def read_rows(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """The rows of a JSONL file as ``(line_number, row)``, and one ``FILE:LINE: reason`` per malformed line.

    Blank lines are not rows. A row must be a JSON object whose ``completion`` is a string or a list of messages.
    """
    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[str] = []
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        reason = None
        try:
            row = json.loads(raw.decode("utf-8"))
        except UnicodeDecodeError as exc:
            reason = f"not UTF-8 (byte {exc.start})"
        except json.JSONDecodeError as exc:
            reason = f"bad JSON: {exc}"
        except (RecursionError, ValueError):  # too deep, or an integer over the int/str digit limit
            from ..columns import bad_json_column

            column, why = bad_json_column(raw.decode("utf-8"))
            reason = f"column {column!r} {why}" if column else f"line {why}"
        else:
            if not isinstance(row, dict):
                reason = f"expected a JSON object, got {type(row).__name__}"
            elif "completion" not in row:
                reason = "missing 'completion'"
            elif not isinstance(row["completion"], (str, list)):
                reason = f"'completion' must be a string or a list of messages, got {type(row['completion']).__name__}"
        if reason is None:
            rows.append((number, row))
        else:
            problems.append(f"{path}:{number}: {reason}")
    return rows, problems


def check_gold_columns(reward: Any, reward_name: str, path: Path, rows: list[dict[str, Any]]) -> None:
    """One line when no row holds the columns the reward reads; a warning when only some rows lack them."""
    groups = getattr(reward, "column_groups", lambda: [])()
    if not groups or not rows:
        return
    lacking = [i for i, row in enumerate(rows) if reward.missing_groups(row)]
    if len(lacking) == len(rows):
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        raise DataError(
            f"reward {reward_name!r} reads {reward.columns_text()}; {path} has: {', '.join(seen) or 'no columns'}"
        )
    if lacking:
        click.echo(f"warning: {len(lacking)} of {len(rows)} rows of {path} lack {reward.columns_text()}; "
                   "they stay unscored (score null)", err=True)


def default_output(path: Path) -> Path:
    name = path.name[: -len(".jsonl")] if path.name.endswith(".jsonl") else path.name
    return path.with_name(f"{name}.scored.jsonl")


def _dump(row: dict[str, Any]) -> str:
    try:
        line = json.dumps(row, ensure_ascii=False)
        line.encode("utf-8")
        return line
    except UnicodeEncodeError:  # a lone surrogate (e.g. "\ud800" in the input): keep it, escaped
        return json.dumps(row, ensure_ascii=True)


def _finite(score: Any) -> Any:
    return None if isinstance(score, float) and not math.isfinite(score) else score


def write_rows(path: Path, rows: list[dict[str, Any]]) -> None:
    """Write JSONL atomically (a temp file renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            for row in rows:
                fh.write(_dump(row) + "\n")
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise DataError(f"{path}: cannot write: {exc.strerror or exc}") from None


@click.command("score")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--reward", "reward_name", required=True, help="Registered reward name (see `r1h list rewards`).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Output JSONL (default: next to FILE, with .jsonl replaced by .scored.jsonl: "
                   "data.jsonl -> data.scored.jsonl).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
@click.option("--budget", type=float, default=None, help="Seconds per item before it scores 0.0 as a timeout (default 2).")
@click.option("--workers", type=int, default=None, help="Grading processes for isolated rewards (default: all cores).")
@click.option("--param", "params", multiple=True, metavar="KEY=VALUE", help="Reward parameter (repeatable).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def score_cmd(file: Path, reward_name: str, output: Path | None, force: bool, budget: float | None,
              workers: int | None, params: tuple[str, ...], no_progress: bool) -> None:
    """Score FILE (JSONL rows holding `completion`, gold columns and optionally `prompt`) with a reward.

    Each row is written back with `score`, `extracted` and `timed_out` (and `error` where grading failed). Malformed
    lines are reported as FILE:LINE and skipped; the summary counts them.
    """
    import r1h

    from ..grading import GradingPool, grade

    if budget is not None and not budget > 0:
        raise FlagError(f"--budget {budget}: must be a positive number of seconds")
    if workers is not None and workers < 1:
        raise FlagError(f"--workers {workers}: must be at least 1")
    reward = r1h.get_reward(reward_name, **parse_params(params))
    output = output or default_output(file)
    if output.exists() and not force:
        raise ConfigError(f"{output} exists; pass --force to overwrite it or --output to choose another file")

    numbered, problems = read_rows(file)
    for problem in problems:
        click.echo(f"warning: {problem} (skipped)", err=True)
    rows = [row for _, row in numbered]
    check_gold_columns(reward, reward_name, file, rows)
    completions = [row["completion"] for row in rows]
    prompts = [row.get("prompt") for row in rows]
    gold = [{k: row[k] for k in reward.columns if k in row} for row in rows]

    pool = GradingPool(workers) if workers is not None else None
    try:
        results = _grade_with_progress(grade, reward, completions, prompts, gold, budget, pool, not no_progress)
    finally:
        if pool is not None:
            pool.close()

    out_rows = []
    for row, result in zip(rows, results, strict=True):
        row = dict(row)
        row["score"] = _finite(result.score)
        row["extracted"] = result.extracted
        row["timed_out"] = result.timed_out
        if result.error:
            row["error"] = result.error
        out_rows.append(row)
    write_rows(output, out_rows)
    _summary(reward_name, file, output, results, len(problems))


def _grade_with_progress(grade, reward, completions, prompts, gold, budget, pool, show: bool):
    if not show or not completions:
        return grade(reward, completions, prompts=prompts, rows=gold, budget=budget, pool=pool)
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=Console(stderr=True), transient=False) as bar:
        task = bar.add_task("grading", total=len(completions))
        return grade(reward, completions, prompts=prompts, rows=gold, budget=budget, pool=pool,
                     progress=lambda done: bar.update(task, completed=done))


def _summary(reward_name: str, source: Path, output: Path, results: list, skipped: int) -> None:
    scores = [r.score for r in results if r.score is not None and math.isfinite(r.score)]
    mean = sum(scores) / len(scores) if scores else None
    timeouts = sum(1 for r in results if r.timed_out)
    errors = sum(1 for r in results if r.error)
    no_gold = sum(1 for r in results if r.score is None)
    mean_text = "n/a" if mean is None else f"{mean:.4f}"
    click.echo(f"{reward_name} on {source}: mean {mean_text} over {len(scores)} scored "
               f"(count {len(results)}, unscored {no_gold}, timeouts {timeouts}, errors {errors}, "
               f"skipped lines {skipped})")
    click.echo(f"wrote {output}")
