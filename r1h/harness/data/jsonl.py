"""The one JSON Lines reader: a file's lines streamed one at a time, each with its line number, parsed or with the
reason it cannot be.

Every JSON Lines file r1h reads goes through :func:`scan`: benchmark and training data (:mod:`r1h.harness.data.readers`),
a run's samples (:mod:`r1h.harness.eval.store`), ``r1h compare``, ``r1h distill`` traces and ``r1h score`` input.

- Streaming: one line in memory at a time, so a 100k-sample run file is never loaded whole.
- Lines end at ``\\n`` only, as JSON Lines defines them (``\\r\\n`` too: the ``\\r`` is JSON whitespace); a U+2028 that
  ``ensure_ascii=False`` left inside a string is text, not a line break (``str.splitlines`` would split there).
- Each line is decoded as strict UTF-8 and parsed by ``json.loads``; a line that fails keeps the exception
  (:attr:`Line.error`) and :meth:`Line.reason` words it, naming the column for a line the parser cannot finish (too
  deep, an integer over Python's 4,300-digit limit).
- A torn last line is the last line without its newline: a write cut short by a kill. What to do with it is the
  caller's policy: the run store truncates it away (:attr:`Line.torn`); ``compare`` and ``distill`` drop a last line
  that does not parse (:func:`objects` with ``drop_torn``); data files and ``score`` read it like any other line.

Standard library only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import DataError


@dataclass(slots=True)
class Line:
    """One line of a JSON Lines file: its 1-based ``number``, its ``raw`` bytes (with the newline), whether it is the
    file's ``last`` line, and the parsed ``value`` or the ``error`` that stopped the parse."""

    number: int
    raw: bytes
    last: bool
    value: Any = None
    error: Exception | None = None

    @property
    def torn(self) -> bool:
        """The line lacks its newline: only the last line can, and then a write was cut short."""
        return not self.raw.endswith(b"\n")

    @property
    def is_object(self) -> bool:
        return self.error is None and isinstance(self.value, dict)

    def reason(self) -> str:
        """Why the line is not a JSON object, as one phrase ("" when it is one)."""
        exc = self.error
        if exc is None:
            return "" if isinstance(self.value, dict) else f"expected a JSON object, got {type(self.value).__name__}"
        if isinstance(exc, UnicodeDecodeError):
            return f"not UTF-8 text ({exc.reason} at byte {exc.start})"
        if isinstance(exc, json.JSONDecodeError):
            return f"not valid JSON ({exc.msg})"
        from r1h.harness.data.columns import bad_json_column  # too deep, or an over-long integer

        column, why = bad_json_column(self.raw.decode("utf-8"))
        return f"column {column!r} {why}" if column else f"line {why}"


def parse(raw: bytes) -> tuple[Any, Exception | None]:
    """One line's JSON value, or the exception that stopped it: ``UnicodeDecodeError``, ``json.JSONDecodeError``,
    ``RecursionError`` (nested too deeply) or ``ValueError`` (an integer over the int/str digit limit)."""
    try:
        return json.loads(raw.decode("utf-8")), None
    except (ValueError, RecursionError) as exc:
        return None, exc


def scan(path: str | Path, *, blank: bool = False) -> Iterator[Line]:
    """The lines of ``path``, read lazily and parsed; blank lines are skipped unless ``blank``. The file is opened
    in binary mode (an ``OSError`` propagates: each caller names the path in its own error)."""
    with open(path, "rb") as fh:
        numbered = enumerate(fh, 1)
        ahead = next(numbered, None)
        while ahead is not None:
            number, raw = ahead
            ahead = next(numbered, None)
            if not raw.strip():
                if blank:
                    yield Line(number, raw, ahead is None)
                continue
            value, error = parse(raw)
            yield Line(number, raw, ahead is None, value, error)


def objects(path: str | Path, *, prefix: str = "", error: type[Exception] = DataError,
            drop_torn: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """``(line_number, row)`` for each JSON object line of ``path``, lazily. The first line that is not one raises
    ``error("{prefix}{path}:{line}: {reason}")``; with ``drop_torn`` a last line that does not parse is left out (torn
    by a kill mid-write). A file that cannot be read raises ``error("{prefix}{path}: cannot read (...)")``."""
    try:
        for line in scan(path):
            if line.error is not None and drop_torn and line.last:
                return
            if not line.is_object:
                raise error(f"{prefix}{path}:{line.number}: {line.reason()}")
            yield line.number, line.value
    except OSError as exc:
        raise error(f"{prefix}{path}: cannot read ({exc.strerror or exc})") from None
