"""Live progress for ``r1h train`` data preparation: one rich display on stderr, like ``r1h eval``'s.

The slow part of preparing the data is ``datasets``' work: building the Arrow table from a file, the ``map`` that
renders the prompts, the ``filter`` that drops long ones, and TRL's own tokenization and packing of the SFT data (also
``Dataset.map``). ``datasets`` reports all of it through its tqdm subclass, which each module binds as ``hf_tqdm``;
tqdm bars and a rich live display garble each other, and ``datasets`` offers no hook for another progress class (only
``disable_progress_bars``). Inside :func:`data_progress` those names point to :class:`RichBar`, a small object with the
part of tqdm's interface that ``datasets`` uses, which reports into one shared ``rich.progress.Progress``. The names
are restored on exit, also after an error.

Training itself (:func:`quiet_training`, :func:`step_lines`): the log holds r1h's lines, not the libraries'. The
trainer's tqdm step bar gives way to one plain line per logging step (and a heartbeat at least every 30 s,
``R1H_PROGRESS_INTERVAL_S``, while a long step runs); transformers' own bars ("Loading weights", "Writing model
shards") and FutureWarnings are off, by the switch ``r1h eval`` uses for model loading. The trainer's logged metrics
(its ``PrinterCallback``) and every error stay.

Shared with ``r1h eval``'s display (:mod:`r1h.harness.eval.progress`): the heartbeat thread (:class:`Heartbeat`), the
interval setting and the ``H:MM:SS`` times. The data bars keep their own column set: the eval bar's (a 20-character
label, pass@1 and tok/s columns) would cut "Generating train split" short and show empty stats.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from r1h.harness.eval.progress import Heartbeat, clock_text, line_interval


class RichBar:
    """The part of tqdm's interface that ``datasets`` calls (constructor keywords, update, close, context manager,
    iteration), reported as one task of a shared rich Progress."""

    progress: Any = None  # set by data_progress
    _lock = threading.RLock()

    @classmethod
    def get_lock(cls) -> Any:  # tqdm.contrib.concurrent.thread_map (used by datasets) shares the bars' lock
        return cls._lock

    @classmethod
    def set_lock(cls, lock: Any) -> None:
        cls._lock = lock

    def __init__(self, iterable: Any = None, *args: Any, desc: str | None = None, total: float | None = None,
                 initial: float = 0, disable: bool | None = False, unit: str = "it", **_: Any) -> None:
        self.iterable = iterable
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)
        total = total or None  # datasets passes 0 for "unknown" (a split being generated)
        self.total, self.n, self.desc, self.unit = total, initial or 0, desc or "", unit
        self.disable = bool(disable) or self.progress is None
        self.task = None
        self.started = time.monotonic()
        if not self.disable:
            self.task = self.progress.add_task(self.desc or "data", total=total, completed=self.n)

    def update(self, n: float = 1) -> bool | None:
        self.n += n or 0
        if self.task is not None:
            self.progress.update(self.task, completed=self.n)
        return None

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""
        if self.task is not None:
            self.progress.update(self.task, description=self.desc)

    def set_postfix(self, *args: Any, **kwargs: Any) -> None:
        pass

    def refresh(self, *args: Any, **kwargs: Any) -> None:
        pass

    def reset(self, total: float | None = None) -> None:
        self.n, self.total = 0, total
        if self.task is not None:
            self.progress.reset(self.task, total=total)

    def close(self) -> None:
        if self.task is not None:
            total = self.total or self.n
            self.progress.update(self.task, total=total, completed=self.n)
            self.task = None

    def __iter__(self) -> Iterator[Any]:
        for item in self.iterable or ():
            yield item
            self.update(1)
        self.close()

    def __len__(self) -> int:
        return int(self.total or 0)

    def __enter__(self) -> RichBar:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def _bound_modules() -> list[tuple[Any, Any]]:
    """(module, original class) for every loaded ``datasets`` module that binds its tqdm class as ``hf_tqdm``."""
    from datasets.utils import tqdm as hf_class

    found = []
    for name, module in list(sys.modules.items()):
        if (name == "datasets" or name.startswith("datasets.")) and getattr(module, "hf_tqdm", None) is hf_class:
            found.append((module, hf_class))
    return found


@contextlib.contextmanager
def data_progress(enabled: bool = True, console: Any = None) -> Iterator[Any]:
    """Show the data preparation's progress (rich, stderr) while the block runs; a no-op when not ``enabled``."""
    if not enabled:
        yield None
        return
    import datasets  # noqa: F401  (load the modules whose bars are redirected)
    import datasets.arrow_dataset  # noqa: F401
    import datasets.builder  # noqa: F401
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console or Console(stderr=True), transient=False,
    )
    bound = _bound_modules()
    with progress:
        RichBar.progress = progress
        for module, _ in bound:
            module.hf_tqdm = RichBar
        try:
            yield progress
        finally:
            for module, original in bound:
                module.hf_tqdm = original
            RichBar.progress = None


def quiet_training() -> contextlib.AbstractContextManager[None]:
    """No transformers progress bars and no library FutureWarnings while the block runs (``r1h eval``'s switch)."""
    from r1h.plugins.backends.models import quiet_loading

    return quiet_loading()


def step_lines(recipe: Any, config: Any) -> list[Any]:
    """The callbacks that show training progress: r1h's step lines in place of the trainer's tqdm bar (unless the
    recipe or the command line sets ``disable_tqdm`` itself)."""
    if "disable_tqdm" in getattr(recipe, "explicit", ()) and not config.disable_tqdm:
        return []
    config.disable_tqdm = True
    return [_step_callback()]


def _step_callback() -> Any:
    from transformers import TrainerCallback

    class StepLines(TrainerCallback):
        """``r1h train: step 3/100, elapsed 0:01:02, left 0:33:10`` on stderr (world process 0): at the first and last
        step, every ``logging_steps``, and from a timer thread whenever ``line_interval()`` passed without a line."""

        def __init__(self) -> None:
            self.lock = threading.Lock()
            self.heartbeat: Heartbeat | None = None
            self.started = self.last = 0.0
            self.step = self.total = 0

        def line(self, now: float, running: bool = False) -> None:
            with self.lock:
                elapsed = now - self.started
                left = elapsed / self.step * (self.total - self.step) if self.step and self.total else None
                text = f"r1h train: step {self.step}/{self.total}, elapsed {clock_text(elapsed)}"
                text += f", step {self.step + 1} running" if running else f", left {clock_text(left)}"
                print(text, file=sys.stderr, flush=True)
                self.last = now

        def beat(self, interval: float) -> None:
            now = time.monotonic()
            if now - self.last >= interval:
                self.line(now, running=True)

        def on_train_begin(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if not state.is_world_process_zero:
                return
            self.started = self.last = time.monotonic()
            self.step, self.total = state.global_step, state.max_steps
            interval = line_interval()
            if self.heartbeat is not None:
                self.heartbeat.stop()
            self.heartbeat = Heartbeat(lambda: self.beat(interval), min(interval, 5.0), "r1h-train-beat").start()

        def on_step_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if not state.is_world_process_zero:
                return
            self.step, self.total = state.global_step, state.max_steps
            every = max(1, int(state.logging_steps or 1))  # the trainer resolves a ratio into steps here
            if self.step in (1, self.total) or self.step % every == 0 or time.monotonic() - self.last >= line_interval():
                self.line(time.monotonic())

        def on_train_end(self, args: Any, state: Any, control: Any, **_: Any) -> None:
            if self.heartbeat is not None:
                self.heartbeat.stop()
                self.heartbeat = None

    return StepLines()
