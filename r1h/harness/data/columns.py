"""Typed gold columns: each check returns the value a benchmark keeps, or raises :class:`ColumnError` with the reason.

A benchmark (or a training loader) calls these on every row, and turns a :class:`ColumnError` into a one-line
:class:`~r1h.harness.core.errors.DataError` naming the row's place (``FILE:LINE`` for JSON Lines, ``FILE: row N`` for
parquet, CSV, a JSON list or a hub dataset) and the column, for example::

    math500: data.jsonl:3: column 'answer' is null (expected a string or number)

Nothing is coerced silently: ``null`` is not the string "None", a list is not its repr, NaN and infinities are not
numbers, ``true`` is not 1, ``3.7`` is not the integer 3, and an object is not the list of its keys. A CSV cell is
text, so where a column wants an integer or a list, a cell spelling one (``"12"``, ``"[1, 2]"``) is read as such.
Integers are read with a digit limit before ``int()`` ever sees them (Python refuses over 4,300 digits with a
ValueError; a huge float literal such as ``1e400`` is infinity), and a nested JSON cell deeper than the parser's
recursion limit is one line too.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_INT_DIGITS = 4300  # CPython's default int<->str limit (sys.int_info.default_max_str_digits)
_INT_TEXT = re.compile(r"^[+-]?\d+$")


class ColumnError(ValueError):
    """A gold value of the wrong type; ``str(exc)`` is ``column 'NAME' is ... (expected ...)``."""

    def __init__(self, column: str, reason: str):
        super().__init__(f"column {column!r} {reason}")
        self.column = column
        self.reason = reason


def kind(value: Any) -> str:
    """How a value reads in an error: ``null``, ``a boolean``, ``NaN``, ``a list`` ..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        if math.isinf(value):
            return "infinite" if value > 0 else "negative infinite"
        return f"the number {value!r}"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, str):
        return "an empty string" if not value.strip() else "a string"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def text(value: Any, column: str) -> str:
    """A non-empty string (a question, a prompt)."""
    if isinstance(value, str) and value.strip():
        return value
    raise ColumnError(column, f"is {kind(value)} (expected a non-empty string)")


def answer(value: Any, column: str) -> str:
    """A gold answer: a non-empty string, or a finite number (kept as its text, e.g. AIME's ``33``)."""
    if isinstance(value, str) and value.strip():
        return value.strip()
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # every int here came from a parser with the digit limit
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() and abs(value) < 1e16 else repr(value)
    raise ColumnError(column, f"is {kind(value)} (expected a string or number)")


def integer(value: Any, column: str, what: str = "an integer") -> int:
    """An integer: an int, a float with no fraction (parquet doubles), or a string of digits (a CSV cell)."""
    if isinstance(value, str):
        stripped = value.strip()
        if _INT_TEXT.match(stripped):
            if len(stripped.lstrip("+-")) > MAX_INT_DIGITS:
                raise ColumnError(column, f"is an integer of over {MAX_INT_DIGITS} digits (expected {what})")
            return int(stripped)
        raise ColumnError(column, f"is the string {_short(stripped)} (expected {what})")
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    raise ColumnError(column, f"is {kind(value)} (expected {what})")


def integer_list(value: Any, column: str) -> list[int]:
    """A non-empty list of integers (Countdown's ``nums``); a CSV cell may hold it as JSON text."""
    expected = "expected a list of integers"
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except RecursionError:
            raise ColumnError(column, f"is nested too deeply to read ({expected})") from None
        except ValueError as exc:
            why = f"holds an integer of over {MAX_INT_DIGITS} digits" if "digits" in str(exc) else \
                "is a string that is not a JSON list"
            raise ColumnError(column, f"{why} ({expected})") from None
    if not isinstance(value, (list, tuple)):
        raise ColumnError(column, f"is {kind(value)} ({expected})")
    if not value:
        raise ColumnError(column, f"is an empty list ({expected})")
    out = []
    for i, item in enumerate(value):
        if isinstance(item, str) or not (_finite_number(item) and float(item).is_integer()):
            raise ColumnError(column, f"item {i} is {kind(item)} ({expected})")
        out.append(int(item))
    return out


def _short(text_: str, limit: int = 40) -> str:
    return repr(text_ if len(text_) <= limit else text_[:limit] + "...")


def bad_json_column(line: str) -> tuple[str | None, str]:
    """For a JSON object line that ``json.loads`` cannot finish (too deep, an integer over the digit limit): the top
    key whose value fails and why, by decoding the top level one value at a time. ``(None, reason)`` if none is found.
    """
    decoder = json.JSONDecoder()
    ws = re.compile(r"[ \t\n\r]*")
    s = line
    i = ws.match(s, 0).end()
    if not s.startswith("{", i):
        return None, _why(None)
    i = ws.match(s, i + 1).end()
    while i < len(s) and s[i] == '"':
        try:
            key, i = json.decoder.scanstring(s, i + 1)
        except ValueError:
            return None, _why(None)
        i = ws.match(s, i).end()
        if not s.startswith(":", i):
            return None, _why(None)
        i = ws.match(s, i + 1).end()
        try:
            _, i = decoder.raw_decode(s, i)
        except (RecursionError, ValueError) as exc:
            return key, _why(exc)
        i = ws.match(s, i).end()
        if not s.startswith(",", i):
            break
        i = ws.match(s, i + 1).end()
    return None, _why(None)


def _why(exc: BaseException | None) -> str:
    if isinstance(exc, RecursionError):
        return "is nested too deeply to read"
    if isinstance(exc, ValueError) and "digits" in str(exc):
        return f"holds an integer of over {MAX_INT_DIGITS} digits"
    if exc is not None:
        return f"is not valid JSON ({getattr(exc, 'msg', exc)})"
    return "cannot be read (nested too deeply or an integer too long)"
