"""Where benchmark rows come from: a hub dataset id, a local clone of a dataset repository, or one data file.

``load_rows(source, default_hub_id=..., split=..., required_columns=...)`` returns plain ``dict`` rows. SOURCE is:

- ``None``: the benchmark's ``default_hub_id``;
- an existing directory: a local clone of the dataset repository (``git clone https://huggingface.co/datasets/ID``).
  The split's files are found by name: ``test.jsonl``, ``data/test-00000-of-00001.parquet``, ``<config>/test-*.parquet``,
  or the single data file of the config (``gpqa_diamond.csv``). Sharded files are read in name order;
- an existing ``.jsonl``, ``.json``, ``.parquet`` or ``.csv`` file;
- anything else is taken as a hub dataset id and loaded with ``datasets.load_dataset(id, config, split=split)``.

Every failure is a one-line :class:`~r1h.harness.core.errors.DataError` naming the path (and the line, for bad JSONL) and
the expected columns; :meth:`Source.locate` names any loaded row's file and line. The files are read by
:mod:`r1h.harness.data.readers`; a hub dataset is loaded only after :mod:`r1h.harness.data.hub` finds the hub reachable.
Standard library only at import; pyarrow and datasets are imported when needed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import ConfigError, DataError, one_line
from r1h.harness.core.naming import looks_like_path
from r1h.harness.data.readers import Selector, read_file, read_file_located

__all__ = ["FORMATS", "Selector", "Source", "apply_limit", "check_columns", "find_split_files", "load_rows",
           "load_rows_with_source", "read_file", "read_file_located", "resolve"]

FORMATS = (".parquet", ".jsonl", ".json", ".csv")  # preference order when a split exists in several formats
_SKIP_DIRS = {".git", ".cache", ".huggingface", "__pycache__"}

@dataclass
class Source:
    """A resolved data source: ``kind`` is "hub", "dir" or "file"; ``files`` are the data files read (not for hub)."""

    kind: str
    spec: str
    files: list[Path] = field(default_factory=list)
    hub_id: str | None = None
    config: str | None = None
    split: str = "test"
    # where each loaded row came from: (index into ``files``, or -1 for the hub; line number or row index)
    rows_at: list[tuple[int, int]] = field(default_factory=list, repr=False)
    line_numbered: set[int] = field(default_factory=set, repr=False)  # indices of files whose numbers are lines

    def locate(self, index: int) -> str:
        """Where row ``index`` (of the rows returned) came from: ``FILE:LINE`` for JSON Lines, else ``FILE: row N``
        (the row's index in that file or hub split, 0-based)."""
        if not 0 <= index < len(self.rows_at):
            return f"{self.spec}: row {index}"
        file_index, number = self.rows_at[index]
        if file_index < 0:
            return f"hub dataset {self.hub_id} (split {self.split}): row {number}"
        path = self.files[file_index]
        return f"{path}:{number}" if file_index in self.line_numbered else f"{path}: row {number}"

    @property
    def label(self) -> str:
        """A short description for results and error messages."""
        if self.kind == "hub":
            return f"hub:{self.hub_id}" + (f"/{self.config}" if self.config else "") + f" (split {self.split})"
        if self.kind == "dir":
            shown = ", ".join(str(f) for f in self.files[:3]) + (" ..." if len(self.files) > 3 else "")
            return f"dir:{self.spec} ({shown})"
        return f"file:{self.spec}"


def _expected(required: Iterable[str]) -> str:
    cols = list(required)
    return f"expected columns: {', '.join(cols)}" if cols else "expected a table of rows"


def resolve(
    source: str | os.PathLike | None,
    *,
    default_hub_id: str | None,
    hub_config: str | None = None,
    split: str = "test",
    required_columns: Iterable[str] = (),
    name: str = "data",
    alt_splits: Iterable[str] = (),
) -> Source:
    """Decide what SOURCE is and, for local sources, which files hold the split."""
    if source is None or str(source).strip() == "":
        if not default_hub_id:
            raise DataError(f"{name}: no data source given and no default; pass --data {name}=PATH")
        return Source("hub", default_hub_id, hub_id=default_hub_id, config=hub_config, split=split)
    spec = str(source).strip()
    path = Path(spec).expanduser()
    if path.is_dir():
        files = find_split_files(path, split=split, config=hub_config, name=name, alt_splits=alt_splits)
        return Source("dir", spec, files=files, config=hub_config, split=split)
    if path.is_file():
        if path.suffix.lower() not in FORMATS:
            raise DataError(
                f"{name}: {path}: unsupported file type {path.suffix or '(none)'!r}; use .jsonl, .json, .parquet or "
                f".csv ({_expected(required_columns)})"
            )
        return Source("file", spec, files=[path], split=split)
    if looks_like_path(spec, FORMATS):  # a missing path is "not found", not a hub lookup
        raise DataError(f"{name}: data source {spec} does not exist ({_expected(required_columns)})")
    return Source("hub", spec, hub_id=spec, config=hub_config, split=split)


def _data_files(root: Path) -> list[Path]:
    found: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for fn in sorted(filenames):
            if fn.lower().endswith(FORMATS) and not fn.startswith("."):
                found.append(Path(dirpath) / fn)
    return found


def _matches_split(rel: Path, split: str) -> bool:
    stem = rel.name.split(".")[0].lower()
    split = split.lower()
    if stem == split or re.match(rf"^{re.escape(split)}[-_.]", stem):
        return True
    return split in (p.lower() for p in rel.parts[:-1])


def _matches_config(rel: Path, config: str) -> bool:
    config = config.lower()
    stem = rel.name.split(".")[0].lower()
    return config in (p.lower() for p in rel.parts[:-1]) or stem == config or stem.startswith(config + "-")


def find_split_files(
    root: Path, *, split: str, config: str | None = None, name: str = "data", alt_splits: Iterable[str] = ()
) -> list[Path]:
    """The files of ``split`` (and ``config``) in a local clone of a dataset repository.

    ``alt_splits`` are tried in order when no file is named after ``split`` (AIME clones call theirs "test").
    """
    files = _data_files(root)
    if not files:
        raise DataError(f"{name}: {root}: no .parquet/.jsonl/.json/.csv data files in this directory")
    rel = {f: f.relative_to(root) for f in files}
    if config:
        in_config = [f for f in files if _matches_config(rel[f], config)]
        files = in_config or files
    chosen: list[Path] = []
    for candidate in (split, *alt_splits):
        chosen = [f for f in files if _matches_split(rel[f], candidate)]
        if chosen:
            break
    if not chosen:
        if len(files) == 1:
            chosen = files
        else:
            shown = ", ".join(str(rel[f]) for f in files[:6]) + (" ..." if len(files) > 6 else "")
            raise DataError(
                f"{name}: {root}: cannot tell which file holds split {split!r}"
                + (f" of config {config!r}" if config else "")
                + f" among {shown}; pass the file itself with --data {name}=FILE"
            )
    for suffix in FORMATS:  # one format only: a clone may carry the same split as parquet and as jsonl
        same = [f for f in chosen if f.name.lower().endswith(suffix)]
        if same:
            return same
    return chosen  # pragma: no cover - every chosen file has one of FORMATS


def _load_hub(src: Source, name: str, select: Selector | None) -> tuple[list[dict[str, Any]], list[str]]:
    from r1h.harness.data import hub

    hint = f"pass --data {name}=PATH to a local clone or a .jsonl/.json/.parquet/.csv file"
    label = f"hub dataset {src.hub_id}" + (f" (config {src.config})" if src.config else "")
    try:
        hub.require_hub(f"{name}: {label}")  # seconds, not datasets' retry loop, when the hub is down
    except hub.HubUnreachableError as exc:
        raise hub.HubUnreachableError(f"{exc}; {hint}") from None
    try:
        import datasets
    except ImportError:
        raise DataError(f"{name}: loading hub dataset {src.hub_id} needs the 'datasets' package; or {hint}") from None
    try:
        ds = datasets.load_dataset(src.hub_id, src.config, split=src.split)
    except Exception as exc:
        if hub.offline_mode():
            raise DataError(
                f"{name}: {label} split {src.split!r} is not in the local cache (HF_HUB_OFFLINE is set; "
                f"{type(exc).__name__}: {one_line(exc)}); {hint}"
            ) from None
        raise DataError(
            f"{name}: could not load {label} split {src.split!r}: the hub has no such dataset or refused it "
            f"({type(exc).__name__}: {one_line(exc)}); {hint}"
        ) from None
    picked = select(len(ds)) if select else None
    if picked is not None:
        ds = ds.select(picked)
    start = picked.start if picked is not None else 0
    src.rows_at = [(-1, start + i) for i in range(len(ds))]
    return ds.to_list(), list(ds.column_names)


def check_columns(
    rows: list[dict[str, Any]], required: Iterable[str], where: str, name: str = "data", lines: list[int] | None = None
) -> None:
    """A one-line DataError naming ``where`` and the expected columns when a row lacks one of ``required``
    (``lines``: each row's line number, named instead of the row index)."""
    required = list(required)
    if not required:
        return
    for i, row in enumerate(rows):
        missing = [c for c in required if c not in row]
        if missing:
            at = f":{lines[i]}" if lines else ("" if i == 0 else f" (row {i})")
            found = ", ".join(list(row)[:12]) or "none"
            raise DataError(
                f"{name}: {where}{at}: missing column(s) {', '.join(missing)}; {_expected(required)} (found: {found})"
            )


def load_rows(source: str | os.PathLike | None, **options: Any) -> list[dict[str, Any]]:
    """The rows of SOURCE (see the module docstring), checked for ``required_columns``: :func:`load_rows_with_source`
    (same keyword options: ``default_hub_id``, ``hub_config``, ``split``, ``required_columns``, ``name``, ``select``,
    ``alt_splits``) without the resolved source.

    ``select(n_rows)`` may return a ``range`` of rows to keep (applied before materialising hub and parquet data).
    """
    return load_rows_with_source(source, **options)[0]


def load_rows_with_source(
    source: str | os.PathLike | None,
    *,
    default_hub_id: str | None,
    hub_config: str | None = None,
    split: str = "test",
    required_columns: Iterable[str] = (),
    name: str = "data",
    select: Selector | None = None,
    alt_splits: Iterable[str] = (),
) -> tuple[list[dict[str, Any]], Source]:
    """Like :func:`load_rows`, also returning the resolved :class:`Source` (for provenance in results)."""
    required = tuple(required_columns)
    src = resolve(source, default_hub_id=default_hub_id, hub_config=hub_config, split=split,
                  required_columns=required, name=name, alt_splits=alt_splits)
    if src.kind == "hub":
        rows, columns = _load_hub(src, name, select)
        missing = [c for c in required if c not in columns]
        if missing:
            raise DataError(
                f"{name}: hub dataset {src.hub_id}: missing column(s) {', '.join(missing)}; {_expected(required)} "
                f"(found: {', '.join(columns[:12])})"
            )
        return rows, src
    rows: list[dict[str, Any]] = []
    single_parquet = len(src.files) == 1 and src.files[0].suffix.lower() == ".parquet"
    for file_index, path in enumerate(src.files):
        part, numbers, are_lines = read_file_located(path, name=name, select=select if single_parquet else None)
        check_columns(part, required, str(path), name, numbers if are_lines else None)
        rows.extend(part)
        src.rows_at.extend((file_index, n) for n in numbers)
        if are_lines:
            src.line_numbered.add(file_index)
    if not single_parquet and select is not None:
        picked = select(len(rows))
        if picked is not None:
            rows = rows[picked.start:picked.stop]
            src.rows_at = src.rows_at[picked.start:picked.stop]
    if not rows:
        raise DataError(f"{name}: {src.spec}: no rows ({_expected(required)})")
    return rows, src


def apply_limit(items: list[Any], limit: int | None) -> list[Any]:
    """The first ``limit`` items (``--limit N``); None keeps all."""
    if limit is None:
        return items
    try:
        n = int(limit)
    except (TypeError, ValueError):
        raise ConfigError(f"--limit must be a positive integer, got {limit!r}") from None
    if n < 1:
        raise ConfigError(f"--limit must be a positive integer, got {limit!r}")
    return items[:n]
