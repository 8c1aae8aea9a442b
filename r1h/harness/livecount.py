"""A live count for long commands that have one total (``r1h distill generate``, ``r1h regrade``): a rich progress
bar on a terminal, a plain line every ``interval`` seconds (and at the end) in a log file or pipe.

rich's ``Progress`` alone redraws nothing in a non-TTY and prints only the final frame, so a two-hour job in a log
would say nothing until it ends; the plain line is the part rich does not give.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any


class Count:
    """``advance(n, tokens=0)`` after each finished item; ``describe(text)`` changes the label."""

    def __init__(self, label: str, total: int, done: int, unit: str, console: Any, progress: Any, task: Any,
                 interval: float):
        self.label, self.total, self.done, self.unit = label, total, done, unit
        self.console, self.progress, self.task, self.interval = console, progress, task, interval
        self.start = time.monotonic()
        self.fresh = 0
        self.tokens = 0
        self._last_line = self.start

    def _rate(self) -> str:
        elapsed = max(time.monotonic() - self.start, 1e-6)
        text = f"{self.fresh / elapsed:.2f} {self.unit}/s"
        if self.tokens:
            text += f" {self.tokens / elapsed:.0f} tok/s"
        return text

    def describe(self, label: str) -> None:
        self.label = label
        if self.progress is not None:
            self.progress.update(self.task, description=label)

    def advance(self, n: int = 1, tokens: int = 0) -> None:
        self.done += n
        self.fresh += n
        self.tokens += int(tokens or 0)
        if self.progress is not None:
            self.progress.update(self.task, advance=n, rate=self._rate())
        elif time.monotonic() - self._last_line >= self.interval:
            self.line()

    def line(self) -> None:
        """The plain progress line: ``label: done/total unit (pct), rate, ETA``."""
        self._last_line = time.monotonic()
        pct = 100.0 * self.done / self.total if self.total else 100.0
        elapsed = max(self._last_line - self.start, 1e-6)
        left = self.total - self.done
        eta = f", ETA {left * elapsed / self.fresh:.0f} s" if self.fresh and left > 0 else ""
        self.console.print(f"r1h: {self.label}: {self.done}/{self.total} {self.unit} ({pct:.0f}%), {self._rate()}{eta}",
                           highlight=False, markup=False)


@contextlib.contextmanager
def live_count(label: str, total: int, *, done: int = 0, unit: str = "items", console: Any = None,
               enabled: bool = True, interval: float = 10.0) -> Iterator[Count]:
    """Show ``done/total`` while the block runs (on stderr unless ``console`` is given); a final line at the end
    when not on a terminal and the block succeeded. ``enabled=False``: count silently."""
    from rich.console import Console

    console = console or Console(stderr=True)
    if not enabled:
        yield Count(label, total, done, unit, console, None, None, float("inf"))
        return
    if not console.is_terminal:
        count = Count(label, total, done, unit, console, None, None, interval)
        yield count
        count.line()  # the final count (not after an error: that stays one line)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    progress = Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TextColumn(unit), TextColumn("{task.fields[rate]}"), TimeRemainingColumn(), console=console)
    with progress:
        task = progress.add_task(label, total=total, completed=done, rate="")
        yield Count(label, total, done, unit, console, progress, task, interval)
