"""Reading one data file into plain ``dict`` rows, with each row's line number (JSON Lines) or row index.

.jsonl, .json (a list, ``{"data": [...]}``, or JSON Lines saved as .json), .csv and .parquet; JSON Lines are read by
:mod:`r1h.harness.data.jsonl`. Every failure is a one-line :class:`~r1h.harness.core.errors.DataError` naming the
file, and the line for JSON Lines; a line the JSON parser cannot finish (nested deeper than its recursion limit, an
integer over Python's 4,300-digit limit) also names the column (:func:`r1h.harness.data.columns.bad_json_column`).
Standard library only at import; pyarrow when needed.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import DataError, one_line
from r1h.harness.data import jsonl

# ``select(n_rows) -> range | None`` picks rows before they are materialised (None: all rows).
Selector = Callable[[int], "range | None"]  # noqa: UP037


def _read_jsonl(path: Path, name: str, lines: list[int] | None = None) -> list[dict[str, Any]]:
    """JSON Lines rows (:func:`r1h.harness.data.jsonl.objects`); ``lines`` (if given) receives each row's number."""
    rows: list[dict[str, Any]] = []
    for lineno, row in jsonl.objects(path, prefix=f"{name}: "):
        rows.append(row)
        if lines is not None:
            lines.append(lineno)
    return rows


def _read_json(path: Path, name: str, lines: list[int] | None = None) -> list[dict[str, Any]]:
    """A JSON list (or ``{"data": [...]}``); JSON Lines saved as .json fill ``lines`` with line numbers."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data":  # JSON Lines saved as .json (the hub does this)
            return _read_jsonl(path, name, lines)
        raise DataError(f"{name}: {path}:{exc.lineno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise DataError(f"{name}: {path}: nested too deeply to read") from None
    except ValueError as exc:  # an integer over the int/str digit limit
        try:  # JSON Lines saved as .json: name the line and the column
            return _read_jsonl(path, name, lines)
        except DataError as again:
            if "not valid JSON" not in str(again):
                raise
        why = "holds an integer of over 4300 digits" if "digits" in str(exc) else one_line(exc)
        raise DataError(f"{name}: {path}: {why}") from None
    if isinstance(data, dict):
        for key in ("data", "rows", "examples"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            data = [data] if data and all(not isinstance(v, (list, dict)) for v in data.values()) else data
    if not isinstance(data, list):
        raise DataError(f"{name}: {path}: expected a JSON list of objects or {{\"data\": [...]}}")
    for i, row in enumerate(data):
        if not isinstance(row, dict):
            raise DataError(f"{name}: {path}: item {i} is {type(row).__name__}, expected a JSON object")
    return data


def _read_csv(path: Path, name: str) -> list[dict[str, Any]]:
    csv.field_size_limit(1 << 27)
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            return [dict(row) for row in csv.DictReader(fh)]
    except UnicodeDecodeError as exc:
        raise DataError(f"{name}: {path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except csv.Error as exc:
        raise DataError(f"{name}: {path}: bad CSV ({one_line(exc)})") from None


def _read_parquet(path: Path, name: str, select: Selector | None) -> tuple[list[dict[str, Any]], int]:
    try:
        import pyarrow.parquet as pq
    except ImportError:  # pragma: no cover - pyarrow ships with datasets
        raise DataError(f"{name}: {path}: reading parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path)
    except Exception as exc:
        raise DataError(f"{name}: {path}: unreadable parquet ({type(exc).__name__}: {one_line(exc)})") from None
    picked = select(table.num_rows) if select else None
    if picked is not None:
        table = table.slice(picked.start, len(picked))
    return table.to_pylist(), (picked.start if picked is not None else 0)


def read_file(path: Path, *, name: str = "data", select: Selector | None = None) -> list[dict[str, Any]]:
    """Rows of one data file (``select`` is applied by parquet before materialising; the caller applies it else)."""
    return read_file_located(path, name=name, select=select)[0]


def read_file_located(
    path: Path, *, name: str = "data", select: Selector | None = None
) -> tuple[list[dict[str, Any]], list[int], bool]:
    """Rows of one data file, each row's number, and whether the numbers are line numbers (JSON Lines) rather than
    0-based row indices (parquet, CSV, a JSON list)."""
    suffix = path.suffix.lower()
    lines: list[int] = []
    try:
        if suffix == ".parquet":
            rows, start = _read_parquet(path, name, select)
            return rows, list(range(start, start + len(rows))), False
        if suffix == ".jsonl":
            rows = _read_jsonl(path, name, lines)
        elif suffix == ".json":
            rows = _read_json(path, name, lines)
        elif suffix == ".csv":
            rows = _read_csv(path, name)
        else:
            raise DataError(f"{name}: {path}: unsupported file type {suffix!r}")
    except OSError as exc:
        raise DataError(f"{name}: {path}: cannot read ({exc.strerror or exc})") from None
    if lines:
        return rows, lines, True
    return rows, list(range(len(rows))), False
