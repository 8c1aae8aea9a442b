"""Training data: load a hub dataset, a local clone or a single file, check its columns, and convert it to what TRL
expects (``messages`` for SFT; a plain-text ``prompt`` for Countdown GRPO; a conversational ``prompt`` + ``image``
for GRPO-VL). Every failure is a one-line :class:`DataError` naming the source and the column.

``datasets`` reports a corrupt JSON line as ``DatasetGenerationError: An error occurred while generating the
dataset`` with no file or line; when it fails on local JSON data, the file is read again with r1h's own reader
(:mod:`r1h.harness.data.readers`) to name ``FILE:LINE``, or the first line whose column changes type.
:func:`check_training_data` (in :mod:`r1h.trainers.datacheck`) is ``r1h train ... --dry-run``'s data check: the
recipe's format columns, their types row by row, and the columns each reward reads, without a tokenizer or a model."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import DataError, first_line
from r1h.harness.core.naming import looks_like_path

FILE_LOADERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}

# The columns each data format needs in its source.
FORMAT_COLUMNS: dict[str, tuple[str, ...]] = {
    "stratos": ("conversations",),
    "messages": ("messages",),
    "countdown": ("nums", "target"),
    "clevr": ("image", "problem", "solution"),
    "prompt": ("prompt",),
}

# R1-V's training prompt (CLEVR counting): the image, then the question and this instruction (two spaces before it).
R1V_TRAIN_SUFFIX = "  Output the thinking process in <think> </think> and final answer (number) in <answer> </answer> tags."

ROLE_MAP = {"user": "user", "human": "user", "assistant": "assistant", "gpt": "assistant", "system": "system"}


def looks_like_file(source: str) -> bool:
    """A data source meant as a local file (the one rule: :func:`r1h.harness.data.hub.looks_like_path`)."""
    return looks_like_path(source, tuple(FILE_LOADERS))


def load_source(source: str, split: str = "train", limit: int | None = None):
    """A ``datasets.Dataset`` from a hub id, a local dataset clone (directory) or a .jsonl/.json/.parquet/.csv file."""
    path = Path(source).expanduser()
    if path.is_file() or (looks_like_file(source) and not path.is_dir()):
        if not path.is_file():
            raise DataError(f"data file {source} does not exist")
        loader = FILE_LOADERS.get(path.suffix.lower())
        if loader is None:
            raise DataError(f"data file {source}: unsupported type {path.suffix!r} (use .jsonl, .json, .parquet, .csv)")
        kwargs: dict[str, Any] = {"data_files": str(path), "split": "train"}
    elif path.is_dir():
        loader, kwargs = str(path), {"split": split}
    else:
        from r1h.harness.data import hub

        try:
            hub.require_hub(f"data {source}: hub dataset")  # seconds, not huggingface_hub's retries
        except hub.HubUnreachableError as exc:
            raise DataError(f"{exc}; pass --data PATH to a local copy, or {hub.OFFLINE_HINT}") from None
        loader, kwargs = source, {"split": split}
    if limit is not None:
        kwargs["split"] = f"{kwargs['split']}[:{int(limit)}]"
    import datasets

    try:
        return datasets.load_dataset(loader, **kwargs)
    except DataError:
        raise
    except Exception as exc:
        locate_bad_json(path)  # raises a DataError naming FILE:LINE when the cause is in a local JSON file
        message = first_line(exc)
        raise DataError(f"cannot load data {source!r}: {type(exc).__name__}: {message}") from exc


def locate_bad_json(path: Path) -> None:
    """For a local .jsonl/.json file (or a folder of them) that ``datasets`` could not load: a one-line DataError
    naming the first bad line (invalid JSON, not an object, a column whose type changes). Returns if none is found."""
    from r1h.harness.data.sources import _data_files, read_file_located

    if path.is_dir():
        files = [f for f in _data_files(path) if f.suffix.lower() in (".jsonl", ".json")]
    elif path.is_file() and path.suffix.lower() in (".jsonl", ".json"):
        files = [path]
    else:
        return
    for file in files:
        rows, numbers, are_lines = read_file_located(file, name="data")
        first: dict[str, tuple[str, int]] = {}
        for row, number in zip(rows, numbers, strict=True):
            where = f"{file}:{number}" if are_lines else f"{file}: row {number}"
            for key, value in row.items():
                kind = _json_kind(value)
                if kind is None:
                    continue
                seen = first.setdefault(key, (kind, number))
                if seen[0] != kind:
                    at = f"line {seen[1]}" if are_lines else f"row {seen[1]}"
                    raise DataError(f"data: {where}: column {key!r} is {kind} but {at} has {seen[0]} "
                                    "(datasets needs one type per column)")


def _json_kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def require_columns(dataset, columns: tuple[str, ...], source: str) -> None:
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise DataError(
            f"data {source}: missing column(s) {', '.join(missing)} (has: {', '.join(dataset.column_names)})"
        )


# -- SFT: Bespoke-Stratos -> messages -------------------------------------------------------------------------------
def stratos_to_messages(row: dict[str, Any]) -> list[dict[str, str]]:
    """``{"system", "conversations": [{"from", "value"}]}`` -> chat ``messages``."""
    messages = []
    system = row.get("system")
    if system:
        messages.append({"role": "system", "content": str(system)})
    for turn in row["conversations"] or []:
        role = ROLE_MAP.get(str(turn.get("from", "")).lower())
        if role is None:
            raise DataError(f"conversation turn has an unknown 'from' value {turn.get('from')!r}")
        messages.append({"role": role, "content": str(turn.get("value", ""))})
    return messages


def sft_dataset(source: str, fmt: str | None = None, limit: int | None = None):
    """A dataset with one ``messages`` column. ``fmt``: "stratos" (from/value), "messages", or None to detect."""
    dataset = load_source(source, limit=limit)
    if fmt is None:
        fmt = "messages" if "messages" in dataset.column_names else "stratos"
    require_columns(dataset, FORMAT_COLUMNS[fmt], source)
    if fmt == "messages":
        return dataset.select_columns(["messages"])
    try:
        return dataset.map(
            lambda row: {"messages": stratos_to_messages(row)},
            remove_columns=dataset.column_names,
            desc="stratos -> messages",
        )
    except DataError as exc:
        raise DataError(f"data {source}: {exc}") from None


# -- GRPO: Countdown -------------------------------------------------------------------------------------------------
def countdown_rows(dataset, source: str, train_rows: int | None = None, heldout: tuple[int, int] | None = None):
    """The training rows: the first ``train_rows`` rows minus the held-out range (the eval's rows)."""
    from r1h.benchmarks import countdown as bench

    train_rows = bench.TRAIN_ROWS if train_rows is None else int(train_rows)
    start, end = (bench.HELDOUT_START, bench.HELDOUT_END) if heldout is None else heldout
    n = min(len(dataset), train_rows)
    keep = [i for i in range(n) if not (start <= i < end)]
    if not keep:
        raise DataError(f"data {source}: no training rows left after removing held-out rows {start}..{end - 1}")
    return dataset.select(keep)


def render_prompt(tokenizer, messages: list[dict[str, Any]]) -> str:
    """The prompt string the model continues: the chat template with the final assistant message left open."""
    continue_final = bool(messages) and messages[-1].get("role") == "assistant"
    return tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=not continue_final, continue_final_message=continue_final
    )


def countdown_dataset(source: str, tokenizer, max_prompt_tokens: int | None = None, limit: int | None = None,
                      train_rows: int | None = None, heldout: tuple[int, int] | None = None):
    """Countdown GRPO data: plain-text ``prompt`` (the eval benchmark's messages + prefill, rendered), ``nums``,
    ``target``. Prompts longer than ``max_prompt_tokens`` are dropped (TRL 1.x has no ``max_prompt_length``)."""
    from r1h.benchmarks.countdown import countdown_messages

    dataset = load_source(source)
    require_columns(dataset, FORMAT_COLUMNS["countdown"], source)
    dataset = countdown_rows(dataset, source, train_rows, heldout)
    if limit is not None:
        dataset = dataset.select(range(min(int(limit), len(dataset))))

    from r1h.harness.data.columns import ColumnError

    def to_prompt(row, index):
        try:
            messages = countdown_messages(row["nums"], row["target"])
        except ColumnError as exc:  # check_training_data (--dry-run) names FILE:LINE; here the row index
            raise DataError(f"data {source}: training row {index}: {exc}") from None
        return {"prompt": render_prompt(tokenizer, messages)}

    dataset = dataset.map(to_prompt, with_indices=True, desc="countdown prompts")
    return filter_long_prompts(dataset, tokenizer, max_prompt_tokens, source)


def filter_long_prompts(dataset, tokenizer, max_prompt_tokens: int | None, source: str):
    if not max_prompt_tokens:
        return dataset
    before = len(dataset)

    def short(row):
        return len(tokenizer(row["prompt"], add_special_tokens=False)["input_ids"]) <= int(max_prompt_tokens)

    dataset = dataset.filter(short, desc="drop long prompts")
    if len(dataset) == 0:
        raise DataError(f"data {source}: every prompt is longer than max_prompt_tokens={max_prompt_tokens}")
    if len(dataset) < before:
        print(f"r1h: dropped {before - len(dataset)} of {before} prompts longer than {max_prompt_tokens} tokens")
    return dataset


def prompt_dataset(source: str, tokenizer=None, max_prompt_tokens: int | None = None, limit: int | None = None):
    """Generic GRPO data that already has a ``prompt`` column (text or conversational); other columns pass through."""
    dataset = load_source(source, limit=limit)
    require_columns(dataset, FORMAT_COLUMNS["prompt"], source)
    if tokenizer is not None and max_prompt_tokens and isinstance(dataset[0]["prompt"], str):
        dataset = filter_long_prompts(dataset, tokenizer, max_prompt_tokens, source)
    return dataset


# -- GRPO-VL: CLEVR counting (R1-V) ----------------------------------------------------------------------------------
ANSWER_RE = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.DOTALL)


def r1v_prompt(problem: str) -> list[dict[str, Any]]:
    """R1-V's training chat: one user turn, image then text (TRL inserts the image part before the text)."""
    return [{"role": "user", "content": f"{problem}{R1V_TRAIN_SUFFIX}"}]


def clevr_dataset(source: str, limit: int | None = None):
    """CLEVR counting data: conversational ``prompt`` + PIL ``image``; ``solution`` (``<answer> N </answer>``) and
    ``answer`` (N) are kept for the rewards."""
    dataset = load_source(source, limit=limit)
    require_columns(dataset, FORMAT_COLUMNS["clevr"], source)
    import datasets

    if not isinstance(dataset.features.get("image"), datasets.Image):
        dataset = dataset.cast_column("image", datasets.Image())

    def to_row(row):
        found = ANSWER_RE.search(str(row["solution"]))
        return {"prompt": r1v_prompt(str(row["problem"])), "answer": found.group(1) if found else str(row["solution"])}

    return dataset.map(to_row, desc="R1-V prompts")


def check_reward_columns(rewards: list[Any], dataset, source: str) -> None:
    """Each reward's required gold columns must be in the training data (TRL passes dataset columns as kwargs)."""
    _check_rewards(rewards, list(dataset.column_names), source)


def _check_rewards(rewards: list[Any], columns: list[str], source: str, shown: list[str] | None = None) -> None:
    for reward in rewards:
        groups = reward.column_groups() if hasattr(reward, "column_groups") else [
            (c,) for c in getattr(reward, "columns", ()) or ()]
        missing = [g for g in groups if not set(columns).intersection(g)]
        if missing:
            word = "column" if len(missing) == 1 else "columns"
            needs = f"{word} " + " and ".join(" or ".join(repr(c) for c in g) for g in missing)
            raise DataError(f"data {source}: reward {getattr(reward, '__name__', reward)!r} reads {needs}; "
                            f"{source} has: {', '.join(shown if shown is not None else columns) or 'no columns'}")
