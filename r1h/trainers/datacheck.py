"""``r1h train ... --dry-run``'s data check: the recipe format's columns, each row's types, and the columns each
reward reads, against the data the real run will load, without a tokenizer or a model.

Local files are read with r1h's reader, so a bad row is named ``FILE:LINE`` (``FILE: row N`` for parquet/CSV);
hub and folder sources go through ``datasets`` (row index; image columns are never decoded). A hub source that
cannot be reached (offline mode, hub down) is reported as skipped in the summary rather than failing the dry run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1h.harness.core.errors import DataError
from r1h.trainers.data import FILE_LOADERS, FORMAT_COLUMNS, ROLE_MAP, _check_rewards, load_source, looks_like_file

# The columns each format's conversion adds (what the rewards then see besides the source's own columns).
PRODUCED_COLUMNS = {"countdown": ("prompt",), "clevr": ("prompt", "answer"), "stratos": ("messages",)}


def _check_countdown(row: dict[str, Any]) -> None:
    from r1h.harness.data import columns as typed

    typed.integer(row["target"], "target")
    typed.integer_list(row["nums"], "nums")


def _check_clevr(row: dict[str, Any]) -> None:
    from r1h.harness.data import columns as typed

    typed.text(row["problem"], "problem")
    typed.answer(row["solution"], "solution")


def _check_turns(value: Any, column: str, role_key: str, text_key: str, roles: Any) -> None:
    from r1h.harness.data.columns import ColumnError, kind

    if not isinstance(value, list):
        raise ColumnError(column, f"is {kind(value)} (expected a list of turns)")
    if not value:
        raise ColumnError(column, "is an empty list (expected a list of turns)")
    for i, turn in enumerate(value):
        if not isinstance(turn, dict):
            raise ColumnError(column, f"turn {i} is {kind(turn)} (expected an object with {role_key!r} and "
                                      f"{text_key!r})")
        role = turn.get(role_key)
        if not isinstance(role, str) or role.lower() not in roles:
            raise ColumnError(column, f"turn {i} has {role_key!r} {role!r} (expected one of {', '.join(roles)})")
        text = turn.get(text_key)
        if not isinstance(text, (str, list)):
            raise ColumnError(column, f"turn {i} {text_key!r} is {kind(text)} (expected a string)")


def _check_prompt(row: dict[str, Any]) -> None:
    from r1h.harness.data import columns as typed

    if isinstance(row["prompt"], list):
        _check_turns(row["prompt"], "prompt", "role", "content", ("system", "user", "assistant"))
    else:
        typed.text(row["prompt"], "prompt")


ROW_CHECKS = {
    "countdown": _check_countdown,
    "clevr": _check_clevr,
    "prompt": _check_prompt,
    "stratos": lambda row: _check_turns(row["conversations"], "conversations", "from", "value", tuple(ROLE_MAP)),
    "messages": lambda row: _check_turns(row["messages"], "messages", "role", "content", ("system", "user",
                                                                                         "assistant", "tool")),
}


def _rows_to_check(source: str, needed: tuple[str, ...], limit: int | None):
    """``(columns, rows, locate)`` of a training source: local files through r1h's reader (FILE:LINE), anything else
    through ``datasets`` (row index; image columns are never decoded)."""
    path = Path(source).expanduser()
    if path.is_file() and path.suffix.lower() in FILE_LOADERS:
        from r1h.harness.data.sources import load_rows_with_source

        rows, src = load_rows_with_source(str(path), default_hub_id=None, split="train", name="data")
        rows = rows[:limit] if limit else rows
        columns: dict[str, None] = {}
        for row in rows:
            columns.update(dict.fromkeys(row))
        return list(columns), rows, src.locate
    dataset = load_source(source, limit=limit)
    present = [c for c in needed if c in dataset.column_names]

    def rows_of():
        if not present:
            return
        for batch in dataset.select_columns(present).iter(batch_size=1024):
            yield from (dict(zip(present, values, strict=True)) for values in zip(*batch.values(), strict=True))

    return list(dataset.column_names), rows_of(), lambda i: f"{source} row {i}"


def _unreachable(source: str) -> str | None:
    """Why a hub source cannot be checked here (offline mode, hub down); None for local data or a reachable hub."""
    from r1h.harness.data import hub

    path = Path(source).expanduser()
    if path.exists() or looks_like_file(source):
        return None
    if hub.offline_mode():
        return f"{source} is a hub dataset and HF_HUB_OFFLINE is set (not in the local cache?)"
    reason = hub.unreachable_reason()
    return None if reason is None else f"{source} is a hub dataset and the hub cannot be reached ({reason})"


def check_training_data(plan) -> dict[str, Any]:
    """``r1h train ... --dry-run``: the data has the recipe format's columns, of the right type in every row used,
    and the columns every reward reads. A one-line DataError names the file and line (or row) and the column.
    Returns ``{"format", "rows_checked", "columns"}`` for the dry-run summary."""
    from r1h.harness.data.columns import ColumnError

    recipe, options = plan.recipe, plan.options
    data = recipe.data
    source = str(data["source"])
    fmt = data.get("format")
    if recipe.workflow != "sft" and not fmt:
        fmt = "clevr" if recipe.workflow == "grpo-vl" else "prompt"
    limit = options.limit or data.get("limit")
    if fmt == "countdown" and not limit:  # only the training rows are used (held-out rows are checked too)
        from r1h.benchmarks.countdown import TRAIN_ROWS

        limit = int(data.get("train_rows") or TRAIN_ROWS)
    needed = FORMAT_COLUMNS.get(fmt, ()) if fmt else ("conversations", "messages")  # sft without a format: detect
    try:
        columns, rows, locate = _rows_to_check(source, needed, limit)
    except DataError as exc:
        skipped = _unreachable(source)
        if skipped is None:
            raise
        return {"format": fmt, "skipped": f"{skipped}: {exc}"}  # shown in the dry-run's summary
    if recipe.workflow == "sft" and fmt is None:
        fmt = "messages" if "messages" in columns else "stratos"
    if fmt not in FORMAT_COLUMNS:
        from r1h.harness.core.errors import ConfigError

        raise ConfigError(f"recipe {recipe.name}: unknown data.format {fmt!r} ({', '.join(FORMAT_COLUMNS)})")
    missing = [c for c in FORMAT_COLUMNS[fmt] if c not in columns]
    if missing:
        raise DataError(f"data {source}: missing column(s) {', '.join(missing)} for format {fmt!r} "
                        f"(has: {', '.join(columns) or 'no columns'})")
    check = ROW_CHECKS[fmt]
    count = 0
    for i, row in enumerate(rows):
        try:
            check(row)
        except ColumnError as exc:
            raise DataError(f"data: {locate(i)}: {exc}") from None
        count += 1
    if count == 0:
        raise DataError(f"data {source}: no rows")
    _check_rewards(list(plan.rewards), [*columns, *PRODUCED_COLUMNS.get(fmt, ())], source, shown=columns)
    return {"format": fmt, "rows_checked": count, "columns": columns}
