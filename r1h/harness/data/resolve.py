"""Load every benchmark's data before anything else runs, and report every failure at once.

``r1h eval --bench all`` used to stop at the first benchmark whose data was missing: fix, rerun, and meet the next.
:func:`load_all` runs each loader, collects the one-line :class:`DataError` of each that fails, and raises a single
DataError listing all of them, each with the ``--data NAME=PATH`` that would supply it, plus a hint to set
``HF_HUB_OFFLINE=1`` when the hub could not be reached. It runs before any backend is created, so the gold backend
and a real one fail the same way, and no model is loaded for a run that cannot start.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

from r1h.harness.core.errors import DataError, first_line
from r1h.harness.data.hub import OFFLINE_HINT, HubUnreachableError

T = TypeVar("T")
_DATA_FLAG = re.compile(r"--data (\S+?)=(PATH|DIR|FILE|SOURCE)\b")
_UNREACHABLE = re.compile(r"the hub at (\S+) cannot be reached \((.*?)\)(?=;|$)")


def load_all(loaders: list[tuple[str, Callable[[], T]]]) -> dict[str, T]:
    """``{name: loader()}``; raises one DataError naming every loader that failed (other errors propagate)."""
    loaded: dict[str, T] = {}
    failures: list[tuple[str, DataError]] = []
    for name, loader in loaders:
        try:
            loaded[name] = loader()
        except DataError as exc:
            failures.append((name, exc))
    if failures:
        raise DataError(report(failures, total=len(loaders)))
    return loaded


def report(failures: list[tuple[str, DataError]], total: int) -> str:
    """The combined message: one line per benchmark, then the flags to pass and, if the hub was down, the hint."""
    if len(failures) == 1 and total == 1:
        message = str(failures[0][1])
        if isinstance(failures[0][1], HubUnreachableError):
            message += f"; if it is in the local cache, {OFFLINE_HINT}"
        return message
    lines = [f"data for {len(failures)} of {total} benchmarks could not be loaded (no model was loaded):"]
    flags: list[str] = []
    down: dict[str, str] = {}
    for name, exc in failures:
        line = first_line(exc)
        found = _UNREACHABLE.search(line) if isinstance(exc, HubUnreachableError) else None
        if found:  # the endpoint and the reason once, at the end
            down.setdefault(found.group(1), found.group(2))
            line = line[:found.start()] + "the hub cannot be reached" + line[found.end():]
        lines.append(f"  {line}")
        found = _DATA_FLAG.search(str(exc))
        if found:
            flags.append(f"--data {found.group(1)}={found.group(2)}")
        elif not any(f.startswith(f"--data {name}=") for f in flags):
            flags.append(f"--data {name}=PATH")
    lines.append("pass: " + " ".join(dict.fromkeys(flags)))
    for url, reason in down.items():
        lines.append(f"the hub at {url} cannot be reached ({reason}); if these hub datasets are in the local "
                     f"cache, {OFFLINE_HINT}")
    return "\n".join(lines)
