"""What a run shows while it runs: a live rich bar on a terminal, plain lines in a log, and ``eval.log``.

- TTY: one bar per benchmark (one rich ``Progress`` for the whole run, so earlier benchmarks stay visible) with
  samples done/total, elapsed, ETA, generated tok/s and the running pass@1 (correct / stored samples so far).
  The count column never wraps or shrinks; the bar is what gives way on a narrow terminal.
- Not a TTY (a log file, CI): a plain line every 5% of the benchmark, and a heartbeat: the same line whenever
  ``interval`` seconds (30; ``R1H_PROGRESS_INTERVAL_S``) passed without one, written by a timer thread, so a log
  shows the job alive while the backend is still loading or generating its first long sample.
- Every plain line and note also goes to ``eval.log`` in the run directory, whatever the console is; so does the
  reason a run stopped (:meth:`Display.record`).

Thread safety: :meth:`Tracker.advance` is called from the grading thread; rich's ``Progress`` has its own lock and
the plain-line state is guarded by one here.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from r1h.harness.system import settings

INTERVAL_ENV = "R1H_PROGRESS_INTERVAL_S"
LINE_INTERVAL_S = settings.default(INTERVAL_ENV)  # 30 s
LINE_STEP = 0.05  # a plain line every 5% of a benchmark


def line_interval(default: float = LINE_INTERVAL_S) -> float:
    """Seconds between heartbeat lines: ``R1H_PROGRESS_INTERVAL_S`` when it is a positive number, else ``default``."""
    return settings.get(INTERVAL_ENV, default=default)


def clock_text(seconds: float | None) -> str:
    """``H:MM:SS`` (``-:--:--`` when unknown): elapsed and left times in every progress line."""
    if seconds is None:
        return "-:--:--"
    seconds = int(max(0, seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Heartbeat:
    """A daemon thread that calls ``beat()`` every ``poll`` seconds until :meth:`stop`: what repeats a progress line
    after ``interval`` seconds without one (the eval display's trackers, ``r1h train``'s step lines)."""

    def __init__(self, beat: Callable[[], None], poll: float, name: str = "r1h-heartbeat"):
        self._beat, self._poll = beat, poll
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopped.wait(self._poll):
            self._beat()

    def stop(self, join: float | None = None) -> None:
        """No more beats; with ``join``, wait up to that many seconds for the thread (not from the thread itself)."""
        self._stopped.set()
        if join is not None and self._thread is not threading.current_thread():
            self._thread.join(join)


class Tracker:
    """Counts for one benchmark (or one tool's job: ``unit`` names what is counted, and without ``pass1`` the line
    shows the rate instead of the running pass@1); feeds the live bar and the plain lines."""

    def __init__(self, display: Display, name: str, total: int, done: int, correct: int, task: Any = None,
                 unit: str = "samples", pass1: bool = True):
        self.display, self.name, self.total, self.task = display, name, total, task
        self.unit, self.show_pass1 = unit, pass1
        self.done, self.correct, self.existing = done, correct, done
        self.tokens = 0
        self.start = display.clock()
        self._lock = threading.Lock()
        self._last_line = self.start
        self._last_done: int | None = None  # the count the latest plain line showed
        self._next_step = self._step_after(done)

    def _step_after(self, done: int) -> int:
        step = max(1, int(self.total * LINE_STEP))
        return (done // step + 1) * step

    @property
    def pass1(self) -> float | None:
        return self.correct / self.done if self.done else None

    def rates(self, now: float) -> tuple[float, float | None, float]:
        elapsed = max(now - self.start, 1e-9)
        new = self.done - self.existing
        eta = (self.total - self.done) * elapsed / new if new else None
        return elapsed, eta, self.tokens / elapsed

    def _quality(self, now: float, digits: int) -> str:
        if not self.show_pass1:
            elapsed = max(now - self.start, 1e-9)
            return f"{(self.done - self.existing) / elapsed:.2f} {self.unit}/s"
        return "pass@1 " + ("-" if self.pass1 is None else f"{100 * self.pass1:.{digits}f}%")

    def _tokens(self, tok_s: float) -> str:
        return f"{tok_s:.0f} tok/s" if self.show_pass1 or self.tokens else ""  # a tool that generates nothing

    def stats_text(self, now: float) -> str:
        _, _, tok_s = self.rates(now)
        return " ".join(filter(None, [self._quality(now, 1), self._tokens(tok_s)]))

    def line(self, now: float) -> str:
        elapsed, eta, tok_s = self.rates(now)
        pct = 100.0 * self.done / self.total if self.total else 100.0
        parts = [f"{self.name}: {self.done}/{self.total} {self.unit} ({pct:.0f}%)", f"elapsed {clock_text(elapsed)}",
                 f"ETA {clock_text(eta)}", self._tokens(tok_s), self._quality(now, 2)]
        return ", ".join(filter(None, parts))

    def describe(self, name: str) -> None:
        """A new label for the bar and the lines (a tool's job moving to its next step)."""
        self.name = name
        if self.task is not None:
            self.display.progress.update(self.task, description=name)

    def advance(self, records: list[Mapping[str, Any]]) -> None:
        """Graded records written: count them, their correct verdicts and their generated tokens."""
        self.count(len(records), tokens=sum(int(r.get("num_tokens") or 0) for r in records),
                   correct=sum(1 for r in records if r.get("correct") is True))

    def count(self, n: int = 1, tokens: int = 0, correct: int = 0) -> None:
        """``n`` more items done (``tokens`` generated, ``correct`` of them right)."""
        with self._lock:
            self.done += n
            self.correct += correct
            self.tokens += int(tokens or 0)
            now = self.display.clock()
            if self.task is not None:
                self.display.progress.update(self.task, completed=self.done, stats=self.stats_text(now))
            if now - self._last_line >= self.display.interval or self.done >= self._next_step:
                self._next_step = self._step_after(self.done)
                self._emit(now)

    def _emit(self, now: float) -> None:
        self._last_line, self._last_done = now, self.done
        self.display.plain(self.line(now))

    def heartbeat(self) -> None:
        """The current line again when ``interval`` seconds passed without one (the display's timer calls it)."""
        with self._lock:
            now = self.display.clock()
            if now - self._last_line >= self.display.interval:
                self._emit(now)

    def finish(self) -> None:
        """The final line, unless the latest line already showed this count."""
        with self._lock:
            now = self.display.clock()
            if self.task is not None:
                self.display.progress.update(self.task, completed=self.done, stats=self.stats_text(now))
            if self._last_done != self.done:
                self._emit(now)


@contextlib.contextmanager
def live_count(label: str, total: int, *, done: int = 0, unit: str = "items", console: Any = None,
               enabled: bool = True, interval: float = 10.0) -> Iterator[Tracker]:
    """The same display for a tool's long job with one total (``r1h distill generate``, ``r1h regrade``): call
    ``count(n, tokens=...)`` per finished item and ``describe(label)`` between steps; stderr unless ``console``."""
    display = Display(console, enabled=enabled, interval=line_interval(interval))
    task = display._progress().add_task(label, total=total, completed=done, stats="") if display.live else None
    tracker = Tracker(display, label, total, done, 0, task, unit=unit, pass1=False)
    display.watch(tracker)
    try:
        yield tracker
        tracker.finish()  # the final count (not after an error: that stays one line)
    finally:
        display.close()


class Display:
    """The console (stderr) display plus ``eval.log``. Notes always print; bars and lines only when enabled."""

    def __init__(self, console: Any = None, enabled: bool = True, log_path: Path | None = None,
                 interval: float | None = None, clock: Callable[[], float] = time.monotonic):
        from rich.console import Console

        self.console = console or Console(stderr=True)
        self.enabled, self.clock = enabled, clock
        self.interval = line_interval() if interval is None else interval
        self.live = enabled and self.console.is_terminal
        self.progress: Any = None
        self._log = None
        self._watched: list[Tracker] = []
        self._beat: Heartbeat | None = None
        if log_path is not None:
            self.open_log(log_path)

    def open_log(self, path: Path) -> None:
        try:
            self._log = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held for the run
        except OSError:
            self._log = None  # the run dir's own checks report an unwritable directory

    def _to_log(self, text: str) -> None:
        if self._log is not None:
            try:
                self._log.write(f"{datetime.now().isoformat(timespec='seconds')} {text}\n")
                self._log.flush()
            except (OSError, ValueError):
                self._log = None

    def record(self, text: str) -> None:
        """A line for eval.log only (why the run stopped: the console has its own message)."""
        self._to_log(text)

    def watch(self, tracker: Tracker) -> None:
        """Give ``tracker`` a heartbeat: a timer thread repeats its line after ``interval`` seconds without one.
        Only on the real clock (a test's fake clock drives the lines itself)."""
        self._watched.append(tracker)
        if self._beat is None and self.clock is time.monotonic:
            self._beat = Heartbeat(self._beats, min(1.0, self.interval / 4)).start()

    def _beats(self) -> None:
        for tracker in list(self._watched):
            tracker.heartbeat()

    def note(self, text: str) -> None:
        self.console.print(f"[dim]r1h:[/dim] {text}", highlight=False, markup=True, soft_wrap=True)
        self._to_log(text)

    def plain(self, text: str) -> None:
        """A progress line: to eval.log always, to the console when it is not a live terminal."""
        self._to_log(text)
        if self.enabled and not self.live:
            self.console.print(f"r1h: {text}", highlight=False, markup=False, soft_wrap=True)

    def _progress(self) -> Any:
        if self.progress is None:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.table import Column

            self.progress = Progress(
                TextColumn("[bold]{task.description}", table_column=Column(no_wrap=True, max_width=20)),
                BarColumn(bar_width=None, table_column=Column(ratio=1, min_width=4)),
                MofNCompleteColumn(table_column=Column(no_wrap=True, justify="right")),
                TextColumn("{task.fields[stats]}", table_column=Column(no_wrap=True)),
                TimeElapsedColumn(table_column=Column(no_wrap=True)),
                TextColumn("ETA", table_column=Column(no_wrap=True)),
                TimeRemainingColumn(table_column=Column(no_wrap=True)),
                console=self.console, expand=True,
            )
            self.progress.start()
        return self.progress

    @contextlib.contextmanager
    def benchmark(self, name: str, total: int, done: int = 0, correct: int = 0, *, unit: str = "samples",
                  pass1: bool = True) -> Iterator[Tracker]:
        task = None
        if self.enabled and self.live:
            task = self._progress().add_task(name, total=total, completed=done, stats="")
        tracker = Tracker(self, name, total, done, correct, task, unit=unit, pass1=pass1)
        with tracker._lock:
            tracker._emit(self.clock())
        self.watch(tracker)
        try:
            yield tracker
        finally:
            self._watched.remove(tracker)
            tracker.finish()

    def close(self) -> None:
        self._watched.clear()
        if self._beat is not None:
            self._beat.stop(join=2.0)
            self._beat = None
        if self.progress is not None:
            self.progress.stop()
            self.progress = None
        if self._log is not None:
            with contextlib.suppress(OSError):
                self._log.close()
            self._log = None

    def table(self, results: Mapping[str, Any]) -> None:
        from rich.console import Console

        from r1h.harness.eval.report import results_table

        console = Console()
        if not console.is_terminal and not os.environ.get("COLUMNS"):  # a log file or pipe: do not squeeze it
            console = Console(width=160)
        console.print(results_table(results, width=console.width))
