"""Live progress for ``r1h train`` data preparation: one rich display on stderr, like ``r1h eval``'s.

The slow part of preparing the data is ``datasets``' work: building the Arrow table from a file, the ``map`` that
renders the prompts, the ``filter`` that drops long ones, and TRL's own tokenization and packing of the SFT data (also
``Dataset.map``). ``datasets`` reports all of it through its tqdm subclass, which each module binds as ``hf_tqdm``;
tqdm bars and a rich live display garble each other, and ``datasets`` offers no hook for another progress class (only
``disable_progress_bars``). Inside :func:`data_progress` those names point to :class:`RichBar`, a small object with the
part of tqdm's interface that ``datasets`` uses, which reports into one shared ``rich.progress.Progress``. The names
are restored on exit, also after an error.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any


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
