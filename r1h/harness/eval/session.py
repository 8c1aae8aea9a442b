"""The session of a run: one run directory held from the first check to the last line of its log.

:class:`RunSession` is what ``r1h eval`` (:mod:`r1h.harness.eval.runner`) and ``r1h distill generate`` share:

- entering it: refuse a folder that is not an r1h run (unless ``force``), create the directory, take the lock
  (:mod:`r1h.harness.eval.lock`: a second run on the same ``--output`` is refused, naming the holder's PID) and turn
  SIGTERM into :class:`~r1h.harness.core.errors.Terminated` (a KeyboardInterrupt) for the main thread;
- :meth:`RunSession.open`: run.json, written or checked (:func:`r1h.harness.eval.resume.open_run`);
- leaving it: SIGTERM handler restored, lock released, why the run stopped written to the display's log (eval.log),
  a run that stopped before run.json removed again (its empty ``samples/``, its lock files, the folder it created),
  the display closed and the backend closed (``close``). An interrupt carries ``output`` (the directory) and ``kept``
  (what is saved there) for the command's one-line message.

:func:`eval_session` is ``r1h eval``'s: the backend (:class:`LazyBackend`), run.json with the software stack, the
display (:class:`~r1h.harness.eval.progress.Display`, which also writes eval.log) and the opening notes.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import R1HError, RunError, Terminated
from r1h.harness.core.naming import model_slug
from r1h.harness.eval.lock import RunLock
from r1h.harness.eval.resume import open_run
from r1h.harness.eval.store import RunStore


@contextlib.contextmanager
def sigterm_as_interrupt():
    """SIGTERM raises :class:`~r1h.harness.core.errors.Terminated` (a KeyboardInterrupt) in the main thread; a second
    SIGTERM during the clean-up is ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_term(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise Terminated()

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


class RunSession:
    """Hold run directory ``root`` for one run (a context manager). ``display`` (a
    :class:`~r1h.harness.eval.progress.Display`, set by the caller once the run is open) gets the stop reason and is
    closed on the way out; ``note`` gets the lock's warning on a filesystem that cannot lock; ``command`` and ``kept``
    name the command in a lock refusal and what is saved in an interrupt's message."""

    def __init__(self, root: str | Path, *, shard: Any = None, force: bool = False, check_foreign: bool = True,
                 command: str = "r1h eval", kept: str = "the graded samples",
                 note: Callable[[str], Any] | None = None, close: Callable[[], Any] | None = None):
        self.root, self.store, self.shard = Path(root), RunStore(root), shard
        self.force, self.check_foreign, self.command, self.kept = force, check_foreign, command, kept
        self._note, self._close = note, close
        self.display: Any = None
        self.backend: Any = None  # eval_session's LazyBackend
        self.stack: dict[str, Any] = {}
        self.model_id = ""
        self.foreign: list[str] = []
        self.lock: RunLock | None = None
        self.created = self.opened = False  # opened: run.json is there (the run is kept, eval.log says why it stopped)
        self._held = contextlib.ExitStack()

    def __enter__(self) -> RunSession:
        try:
            self._claim()
        except BaseException as exc:
            self.__exit__(type(exc), exc, exc.__traceback__)
            raise
        return self

    def _claim(self) -> None:
        self.foreign = self.store.foreign_entries() if self.check_foreign else []
        if self.foreign and not self.force:
            shown = ", ".join(self.foreign[:3]) + (", ..." if len(self.foreign) > 3 else "")
            raise RunError(f"{self.root} exists and is not an r1h run (no run.json; it holds {shown}); pass --force to "
                           "write the run into it (its report.md, results.json and passk.png are replaced) or choose "
                           "another --output")
        self.created = not self.root.exists()
        self.store.ensure_root()
        lock = RunLock(self.root, self.shard.label if self.shard else None, command=self.command)
        self.lock = self._held.enter_context(lock)
        if lock.warning and self._note is not None:  # eval_session shows it once its display is up
            self._note(lock.warning)
        self._held.enter_context(sigterm_as_interrupt())

    def open(self, config: Mapping[str, Any], record: Mapping[str, Any] | None = None) -> bool:
        """Write or check run.json (True: resuming an existing run)."""
        resumed = open_run(self.store, config, record)
        self.opened = True
        return resumed

    def record(self, text: str) -> None:
        """A line for the run's log only."""
        if self.display is not None:
            self.display.record(text)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            self._held.close()  # SIGTERM handler restored, then the lock released
            if isinstance(exc, KeyboardInterrupt):
                exc.output, exc.kept = str(self.root), self.kept  # type: ignore[attr-defined]
                self.record(f"stopped: {'SIGTERM' if isinstance(exc, Terminated) else 'interrupt'}; {self.kept} "
                            "are saved; rerun the same command to resume")
            elif exc is not None:
                self.record(f"stopped: error: {exc}" if isinstance(exc, R1HError) else
                            f"stopped: error: {type(exc).__name__}: {exc}")
                if not self.opened and self.lock is not None:  # no half-made run (a model that cannot load)
                    self.store.discard_unstarted(self.created)
        finally:
            if self.display is not None:
                self.display.close()
            if self._close is not None:
                self._close()


class LazyBackend:
    """The run's backend, made on first use: ``--merge`` loads the model only if something is still missing."""

    def __init__(self, opts: Any, eager: bool, shared: Any = None):
        self.opts, self.backend, self.shared = opts, shared, shared is not None  # shared: the caller's, left open
        self.started = self.described = False  # loaded (engine started) / described: runner.run_benchmark
        if eager:
            self.get()

    def get(self) -> Any:
        if self.backend is None:
            import r1h

            self.backend = r1h.get_backend(self.opts.backend, model=self.opts.model, **self.opts.backend_args)
        return self.backend

    def close(self) -> None:
        if self.shared:
            return
        close = getattr(self.backend, "close", None)
        if callable(close):
            close()


def default_output(model_id: str) -> Path:
    return Path("runs") / model_slug(model_id) / datetime.now().strftime("%Y%m%d-%H%M%S")


@contextlib.contextmanager
def eval_session(run: Any, console: Any = None, backend: Any = None) -> Iterator[RunSession]:
    """``r1h eval``'s session for ``run`` (a :class:`~r1h.harness.eval.plan.RunPlan`): ``session.backend`` is the
    :class:`LazyBackend`, ``session.stack`` the software stack recorded in run.json and results.json, ``session.model_id``
    the backend's model id (``--model`` until a backend is made). ``backend``: one the caller made and closes (a
    --thinking-budget sweep runs every budget on one)."""
    from r1h.harness.eval.progress import Display
    from r1h.harness.system.stack import collect as collect_stack

    opts, shard = run.opts, run.shard

    def model_id() -> str:
        return str(getattr(holder.backend, "model_id", None) or opts.model or "default")

    # With --output the lock is taken before the model loads (a refused second run loads nothing); without it the
    # backend's model id names the default directory, so the backend comes first.
    holder = LazyBackend(opts, eager=not opts.merge and not opts.output, shared=backend)
    out = Path(opts.output) if opts.output else default_output(model_id())
    with RunSession(out, shard=shard, force=opts.force, close=holder.close) as session:
        session.backend = holder
        if not opts.merge:  # before run.json is written: a backend that fails to load leaves no run behind
            holder.get()
        session.stack = collect_stack()  # versions, builds, accelerators (no new imports): r1h compare reads it
        resumed = session.open(run.config, record={"stack": session.stack})
        session.model_id = model_id()
        display = session.display = Display(console, enabled=opts.progress, log_path=session.store.log_path)
        if session.lock is not None and session.lock.warning:
            display.note(session.lock.warning)
        if session.foreign:
            display.note(f"--force: writing into {out}, which is not an r1h run; its report.md, results.json and "
                         "passk.png are replaced")
        display.note(f"{'resuming' if resumed else 'writing'} {out}" + (f" ({shard.label})" if shard else ""))
        yield session
