"""``r1h score``: grade a JSONL file of completions with a registered reward, in bulk, with hard budgets."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any

import click

from r1h.harness.cli.flags import parse_pairs
from r1h.harness.core.errors import ConfigError, DataError, FlagError
from r1h.harness.core.options import literal
from r1h.harness.core.reward import rows_lacking_gold


def parse_params(values: tuple[str, ...]) -> dict[str, Any]:
    """``--param key=value`` flags, each value by the literal rule (``r1h.harness.core.options``: the JSON value the
    text spells, else the text)."""
    return {key: literal(raw) for key, raw in parse_pairs("--param", values).items()}


def read_rows(path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[str]]:
    """The rows of a JSONL file as ``(line_number, row)``, and one ``FILE:LINE: reason`` per malformed line.

    Blank lines are not rows. A row must be a JSON object whose ``completion`` is a string or a list of messages.
    """
    from r1h.harness.data import jsonl

    rows: list[tuple[int, dict[str, Any]]] = []
    problems: list[str] = []
    try:
        for line in jsonl.scan(path):
            row, exc = line.value, line.error
            if isinstance(exc, UnicodeDecodeError):
                reason = f"not UTF-8 (byte {exc.start})"
            elif isinstance(exc, json.JSONDecodeError):
                reason = f"bad JSON: {exc}"
            elif not line.is_object:  # too deep, an over-long integer, not an object
                reason = line.reason()
            elif "completion" not in row:
                reason = f"no 'completion' column (the row has: {', '.join(list(row)[:8]) or 'no columns'})"
            elif not isinstance(row["completion"], (str, list)):
                reason = f"'completion' must be a string or a list of messages, got {type(row['completion']).__name__}"
            else:
                rows.append((line.number, row))
                continue
            problems.append(f"{path}:{line.number}: {reason}")
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return rows, problems


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
    """Write JSONL atomically (a temp file renamed into place); ``-`` is stdout."""
    if str(path) == "-":
        for row in rows:
            sys.stdout.write(_dump(row) + "\n")
        sys.stdout.flush()
        return
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
              help="Output JSONL, '-' for stdout (default: next to FILE, with .jsonl replaced by .scored.jsonl: "
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
    from r1h.harness.core.errors import Terminated
    from r1h.harness.eval.session import sigterm_as_interrupt
    from r1h.harness.grading.pool import GradingPool, grade

    if budget is not None and not budget > 0:
        raise FlagError(f"--budget {budget}: must be a positive number of seconds")
    if workers is not None and workers < 1:
        raise FlagError(f"--workers {workers}: must be at least 1")
    reward = r1h.get_reward(reward_name, **parse_params(params))
    output = output or default_output(file)
    _check_output(output, force)

    numbered, problems = read_rows(file)
    if not numbered and problems:  # nothing to grade: an error, not an empty output file
        raise DataError(f"{file}: no row can be graded ({len(problems)} skipped; the first: {problems[0]})")
    for problem in problems:
        click.echo(f"warning: {problem} (skipped)", err=True)
    rows = [row for _, row in numbered]
    lacking = rows_lacking_gold(reward, reward_name, file, rows)
    if lacking:
        click.echo(f"warning: {lacking} of {len(rows)} rows of {file} lack {reward.columns_text()}; "
                   "they stay unscored (score null)", err=True)
    completions = [row["completion"] for row in rows]
    prompts = [row.get("prompt") for row in rows]
    gold = [{k: row[k] for k in reward.columns if k in row} for row in rows]

    pool = GradingPool(workers) if workers is not None else None
    try:
        with sigterm_as_interrupt():
            results = _grade_with_progress(grade, reward, completions, prompts, gold, budget, pool, not no_progress)
    except KeyboardInterrupt as exc:  # keep what was graded: those rows, in input order
        partial = list(getattr(exc, "partial", None) or [])
        graded = [(row, r) for row, r in zip(rows, partial, strict=False) if r is not None]
        if graded:
            write_rows(output, [_scored(row, r) for row, r in graded])
        what = "SIGTERM" if isinstance(exc, Terminated) else "interrupt"
        kept = (f"wrote those to {_name(output)} (rerun with --force to grade every row)" if graded
                else "nothing written")
        click.echo(f"r1h: stopped by {what} after grading {len(graded)} of {len(rows)} rows; {kept}", err=True)
        sys.exit(143 if isinstance(exc, Terminated) else 130)
    finally:
        if pool is not None:
            pool.close()
    write_rows(output, [_scored(row, r) for row, r in zip(rows, results, strict=True)])
    _summary(reward_name, file, output, results, len(problems))


def _scored(row: dict[str, Any], result: Any) -> dict[str, Any]:
    row = dict(row)
    row["score"] = _finite(result.score)
    row["extracted"] = result.extracted
    row["timed_out"] = result.timed_out
    if result.error:
        row["error"] = result.error
    return row


def _name(output: Path) -> str:
    return "stdout" if str(output) == "-" else str(output)


def _check_output(output: Path, force: bool) -> None:
    """Before grading: an output that exists (without --force) or that cannot be written is refused in one line."""
    if str(output) == "-":
        return
    if output.exists() and not force:
        raise ConfigError(f"{output} exists; pass --force to overwrite it or --output to choose another file")
    folder = output.parent
    if not folder.is_dir():
        raise DataError(f"--output {output}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK):
        raise DataError(f"--output {output}: the folder {folder} is not writable")


def _grade_with_progress(grade, reward, completions, prompts, gold, budget, pool, show: bool):
    if not show or not completions:
        return grade(reward, completions, prompts=prompts, rows=gold, budget=budget, pool=pool)
    from r1h.harness.eval.progress import live_count

    with live_count("grading", len(completions), unit="rows") as tracker:
        return grade(reward, completions, prompts=prompts, rows=gold, budget=budget, pool=pool,
                     progress=lambda done: tracker.count(done - tracker.done))


def _summary(reward_name: str, source: Path, output: Path, results: list, skipped: int) -> None:
    scores = [r.score for r in results if r.score is not None and math.isfinite(r.score)]
    mean = sum(scores) / len(scores) if scores else None
    timeouts = sum(1 for r in results if r.timed_out)
    errors = sum(1 for r in results if r.error)
    no_gold = sum(1 for r in results if r.score is None)
    mean_text = "n/a" if mean is None else f"{mean:.4f}"
    to_stderr = str(output) == "-"  # stdout carries the rows
    click.echo(f"{reward_name} on {source}: mean {mean_text} over {len(scores)} scored "
               f"(count {len(results)}, unscored {no_gold}, timeouts {timeouts}, errors {errors}, "
               f"skipped lines {skipped})", err=to_stderr)
    click.echo(f"wrote {_name(output)}", err=to_stderr)
