"""One batch through a grading pool: dispatch one item at a time per worker, enforce deadlines (SIGKILL on overrun),
replace dead or killed workers at once, keep input order.

A batch only schedules. The processes are the pool's (:class:`~r1h.harness.grading.pool.GradingPool`), reached
through its public methods, listed in :class:`Workers`; the messages are :mod:`r1h.harness.grading.protocol`'s.
"""

from __future__ import annotations

import pickle
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import Any, Protocol

from r1h.harness.core.errors import R1HError
from r1h.harness.core.types import GradeResult, prompt_tail
from r1h.harness.grading import protocol as P
from r1h.harness.grading.budget import load_timeout
from r1h.harness.grading.fallback import grade_bounded, warn_once
from r1h.harness.grading.launch import START_ERRORS, Worker

Progress = Callable[[int], Any]


class RewardLoadError(R1HError):
    """An isolated reward that a grading worker cannot load (import error, a crash or a hang while loading)."""


class Workers(Protocol):
    """What a batch uses of its pool (:class:`~r1h.harness.grading.pool.GradingPool` provides it)."""

    workers: int

    def members(self) -> list[Worker]: ...
    def start_worker(self, key: str | None = None) -> Worker: ...
    def fill(self, want: int, key: str) -> list[Worker]: ...
    def retire(self, worker: Worker) -> None: ...
    def prepare(self, key: str, blob: bytes, warm_row: dict[str, Any] | None, budget: float) -> None: ...


def report(progress: Progress | None, done: int) -> None:
    """Tell ``progress`` how many items are done; a progress bar must never break grading."""
    if progress is not None:
        try:
            progress(done)
        except Exception:
            pass


def _picklable(row: dict[str, Any]) -> dict[str, Any] | None:
    try:
        pickle.dumps(row)
        return row
    except Exception:
        return None


class Batch:
    """One batch through a pool: dispatch one item at a time per worker, enforce deadlines, keep input order."""

    def __init__(self, pool: Workers, reward: Any, key: str, blob: bytes, items: list, budget: float,
                 progress: Progress | None):
        self.pool, self.reward, self.key, self.blob = pool, reward, key, blob
        self.items, self.budget, self.progress = items, budget, progress
        self.results: list[GradeResult | None] = [None] * len(items)
        self.pending: deque[int] = deque(range(len(items)))
        self.done = 0
        self.warm_row: dict[str, Any] | None = _picklable(P.warm_row(reward))
        self.inline_fallback: str | None = None  # this process cannot start workers: the bounded thread path
        self.load_failure: str | None = None  # the reward cannot load in a worker: raised to the caller
        self.load_crashes = 0

    def _finish(self, index: int, result: GradeResult) -> None:
        if self.results[index] is None:
            self.results[index] = result
            self.done += 1
            report(self.progress, self.done)

    def _workers(self) -> list[Worker]:
        """The first ``want`` workers (their count bounds the items in flight); the pool also keeps spares loaded,
        and items go to whichever are loaded and idle."""
        try:
            return self.pool.fill(min(self.pool.workers, len(self.items)), self.key)
        except START_ERRORS as exc:
            self.inline_fallback = f"cannot start a grading worker in this process ({type(exc).__name__}: {exc})"
            return []

    def run(self) -> list[GradeResult]:
        """The results in input order. On Ctrl-C the interrupt carries ``partial``: the results so far, in input
        order, None where an item was not graded (``r1h score`` writes the graded rows)."""
        try:
            return self._run()
        except KeyboardInterrupt as exc:
            exc.partial = list(self.results)  # type: ignore[attr-defined]
            raise

    def _run(self) -> list[GradeResult]:
        self.pool.prepare(self.key, self.blob, self.warm_row, self.budget)
        while self.done < len(self.items) and self.inline_fallback is None and self.load_failure is None:
            workers = self._workers()
            if not workers:
                break
            everyone = self.pool.members()
            now = time.monotonic()
            # at most `want` items in flight, on whichever processes are loaded and idle (spares included), so
            # that items never queue behind a replacement that is still booting while a warm spare waits
            in_flight = sum(w.item is not None for w in everyone)
            for w in everyone:
                ready = w.item is None and w.loading is None and self.key in w.loaded
                if ready and self.pending and in_flight < len(workers):
                    self._feed(w, now)
                    in_flight += 1
                else:
                    self._feed(w, now, load_only=True)
            self._wait(everyone)
            self._enforce(everyone)
        if self.load_failure is not None:
            name = getattr(self.reward, "__name__", repr(self.reward))
            raise RewardLoadError(f"reward {name!r} cannot be loaded in a grading worker: {self.load_failure}")
        if self.inline_fallback is not None:
            warn_once(self.inline_fallback)
            rest = [self.items[i] for i in range(len(self.items)) if self.results[i] is None]
            offset = self.done
            for (index, *_), result in zip(rest, grade_bounded(self.reward, rest, self.budget,
                                                               lambda k: report(self.progress, offset + k)),
                                           strict=True):
                self.results[index] = result
        return [r if r is not None else GradeResult(score=0.0, error="not graded") for r in self.results]

    def _feed(self, w: Worker, now: float, load_only: bool = False) -> None:
        if w.item is not None or w.loading is not None or not (self.pending or load_only):
            return
        try:
            if self.key not in w.loaded:
                w.send(P.Load(self.key, self.blob, self.warm_row))
                w.loading = (self.key, now + load_timeout(self.budget))
                return
            if load_only:
                return
            index = self.pending.popleft()
            _, completion, prompt, row = self.items[index]
            try:
                w.send(P.Grade(self.key, index, completion, prompt, row))
            except (pickle.PicklingError, TypeError, AttributeError):
                w.send(P.Grade(self.key, index, completion, prompt_tail(prompt), _picklable(row) or {}))
            w.item = (index, time.monotonic() + self.budget)
        except (BrokenPipeError, EOFError, OSError):
            self._crashed(w)

    def _wait(self, workers: list[Worker]) -> None:
        deadlines = [d for w in workers for d in ((w.item or (0, None))[1], (w.loading or (0, None))[1]) if d]
        busy = [w.conn for w in workers if w.item is not None or w.loading is not None]
        if not busy:
            return
        timeout = max(0.0, min(deadlines) - time.monotonic()) if deadlines else None
        for conn in wait(busy, timeout):
            worker = next(w for w in workers if w.conn is conn)
            while worker.conn is conn and not conn.closed:
                try:
                    if not conn.poll():
                        break
                    msg = P.recv(conn)
                except (EOFError, OSError):
                    self._crashed(worker)
                    break
                self._handle(worker, msg)

    def _handle(self, w: Worker, msg: P.Message) -> None:
        if isinstance(msg, P.Done):
            w.item = None
            if msg.out_of_memory:  # the worker hit its memory cap (and exits): replace it now
                self._respawn(w)
            self._finish(msg.index, GradeResult(score=msg.score, extracted=msg.extracted, error=msg.error))
        elif isinstance(msg, P.Ready):
            P.remember(w.loaded, msg.key)  # the worker dropped its oldest reward the same way
            w.loading = None
        elif isinstance(msg, P.LoadError):
            w.loading = None
            if msg.key == self.key:  # (a replacement started by an earlier batch may report another reward)
                self.load_failure = msg.error
        elif isinstance(msg, P.BootError):
            w.loading = None
            self.load_failure = msg.error

    def _enforce(self, workers: list[Worker]) -> None:
        now = time.monotonic()
        for w in workers:
            if w.item is not None and now >= w.item[1]:
                index = w.item[0]
                w.item = None
                self._respawn(w)
                self._finish(index, GradeResult(score=0.0, timed_out=True))
            elif w.loading is not None and now >= w.loading[1]:
                self.pool.retire(w)
                if self.warm_row is not None:
                    self.warm_row = None  # the warm-up itself hung (a pathological gold?): retry without it
                else:
                    self.load_failure = f"it did not load within {load_timeout(self.budget):.0f} s"

    def _respawn(self, w: Worker) -> None:
        """Kill ``w`` and start its replacement loading the reward at once, so that it boots while the rest of this
        batch (or the caller, before its next call) goes on; no item's clock runs until it is ready."""
        self.pool.retire(w)
        try:
            fresh = self.pool.start_worker(self.key)
        except START_ERRORS:
            return  # _workers() retries (and falls back) when it needs one
        self._feed(fresh, time.monotonic(), load_only=True)

    def _crashed(self, w: Worker) -> None:
        w.join(1)
        code = w.poll()
        if w.item is not None:
            index = w.item[0]
            w.item = None
            self._finish(index, GradeResult(score=0.0, error=f"grading worker died (exit code {code})"))
        if w.loading is not None:
            w.loading = None
            self.load_crashes += 1
            if self.load_crashes >= 3:
                self.load_failure = f"3 grading workers died while loading it (exit code {code})"
        self.pool.retire(w)
