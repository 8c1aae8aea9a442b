"""One batch through a :class:`~r1h.harness.grading.pool.GradingPool`: dispatch one item at a time per worker, enforce
deadlines (SIGKILL on overrun), replace dead or killed workers at once, keep input order."""

from __future__ import annotations

import pickle
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import wait
from typing import TYPE_CHECKING, Any

from r1h.harness.core.errors import R1HError
from r1h.harness.core.types import GradeResult, prompt_tail
from r1h.harness.grading.fallback import grade_bounded, warn_once
from r1h.harness.grading.worker import _REWARD_CACHE, _Worker, out_of_memory

if TYPE_CHECKING:
    from r1h.harness.grading.pool import GradingPool

WARM_GOLD = "\\frac{1}{2}"  # differs from the warm-up answer: a math reward runs its whole path
LOAD_TIMEOUT_S = 60.0  # unpickling + warming up a reward in a fresh worker (imports), never counted against items
Progress = Callable[[int], Any]


class RewardLoadError(R1HError):
    """An isolated reward that a grading worker cannot load (import error, a crash or a hang while loading)."""


def _report(progress: Progress | None, done: int) -> None:
    if progress is not None:
        try:
            progress(done)
        except Exception:  # a progress bar must never break grading
            pass


def warm_row(reward: Any) -> dict[str, Any]:
    """The gold a fresh worker warms ``reward`` up with: ``reward.warm_row`` if set, else ``"1"`` for each column.

    Never an item's own gold: a pathological one (``1e99999999999``) would stall the load, outside any budget.
    """
    row = getattr(reward, "warm_row", None)
    if isinstance(row, dict):
        return row
    return {c: WARM_GOLD for c in getattr(reward, "columns", ()) or () if isinstance(c, str)}


class _Batch:
    """One batch through a pool: dispatch one item at a time per worker, enforce deadlines, keep input order."""

    def __init__(self, pool: GradingPool, reward: Any, key: str, blob: bytes, items: list, budget: float,
                 progress: Progress | None):
        self.pool, self.reward, self.key, self.blob = pool, reward, key, blob
        self.items, self.budget, self.progress = items, budget, progress
        self.results: list[GradeResult | None] = [None] * len(items)
        self.pending: deque[int] = deque(range(len(items)))
        self.done = 0
        self.warm_row: dict[str, Any] | None = self._picklable_row(warm_row(reward))
        self.inline_fallback: str | None = None  # this process cannot start workers: the bounded thread path
        self.load_failure: str | None = None  # the reward cannot load in a worker: raised to the caller
        self.load_crashes = 0

    @staticmethod
    def _picklable_row(row: dict[str, Any]) -> dict[str, Any] | None:
        try:
            pickle.dumps(row)
            return row
        except Exception:
            return None

    def _finish(self, index: int, result: GradeResult) -> None:
        if self.results[index] is None:
            self.results[index] = result
            self.done += 1
            _report(self.progress, self.done)

    def _workers(self) -> list[_Worker]:
        """The first ``want`` workers (their count bounds the items in flight); the pool also keeps ``spares`` more
        processes loaded, and items go to whichever are loaded and idle."""
        want = min(self.pool.workers, len(self.items))
        while len(self.pool._pool) < want + self.pool.spares:
            try:
                self.pool._start_worker(self.key)
            except (OSError, AssertionError, ValueError) as exc:  # EAGAIN/ENOMEM, or a daemonic spawn (Windows)
                if self.pool._pool:
                    break  # grade with the workers we have
                self.inline_fallback = f"cannot start a grading worker in this process ({type(exc).__name__}: {exc})"
                return []
        return self.pool._pool[:want]

    def run(self) -> list[GradeResult]:
        """The results in input order. On Ctrl-C the interrupt carries ``partial``: the results so far, in input
        order, None where an item was not graded (``r1h score`` writes the graded rows)."""
        try:
            return self._run()
        except KeyboardInterrupt as exc:
            exc.partial = list(self.results)  # type: ignore[attr-defined]
            raise

    def _run(self) -> list[GradeResult]:
        self.pool._prepare_zygote(self.key, self.blob, self.warm_row)
        self._await_zygote()
        while self.done < len(self.items) and self.inline_fallback is None and self.load_failure is None:
            workers = self._workers()
            if not workers:
                break
            everyone = list(self.pool._pool)
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
                                                               lambda k: _report(self.progress, offset + k)),
                                           strict=True):
                self.results[index] = result
        return [r if r is not None else GradeResult(score=0.0, error="not graded") for r in self.results]

    def _await_zygote(self) -> None:
        """On a cold pool, let the zygote load the reward and fork every worker (and spare) from it: one interpreter
        imports sympy and warms the reward instead of ``workers + spares + 1`` at once, which on 2 cores cost more
        CPU than grading 1,000 MATH-500 answers. If the zygote fails or hangs, fresh interpreters start as before."""
        zygote = self.pool._zygote
        if zygote is None or self.pool._pool:
            return
        if not zygote.wait_loaded(self.key, max(LOAD_TIMEOUT_S, 10 * self.budget)):
            zygote.stop()
            self.pool._zygote = None

    def _feed(self, w: _Worker, now: float, load_only: bool = False) -> None:
        if w.item is not None or w.loading is not None or not (self.pending or load_only):
            return
        try:
            if self.key not in w.loaded:
                w.send(("reward", self.key, self.blob, self.warm_row))
                w.loading = (self.key, now + max(LOAD_TIMEOUT_S, 10 * self.budget))
                return
            if load_only:
                return
            index = self.pending.popleft()
            _, completion, prompt, row = self.items[index]
            try:
                w.send(("item", self.key, index, completion, prompt, row))
            except (pickle.PicklingError, TypeError, AttributeError):
                w.send(("item", self.key, index, completion, prompt_tail(prompt), self._picklable_row(row) or {}))
            w.item = (index, time.monotonic() + self.budget)
        except (BrokenPipeError, EOFError, OSError):
            self._crashed(w)

    def _wait(self, workers: list[_Worker]) -> None:
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
                    msg = conn.recv()
                except (EOFError, OSError):
                    self._crashed(worker)
                    break
                self._handle(worker, msg)

    def _handle(self, w: _Worker, msg: tuple) -> None:
        kind = msg[0]
        if kind == "done":
            _, index, score, extracted, error = msg
            w.item = None
            result = GradeResult(score=score, extracted=extracted, error=error)
            if out_of_memory(result):  # the worker hit R1H_GRADING_MEMORY_MB (and exits): replace it now
                self._respawn(w)
            self._finish(index, result)
        elif kind == "ready":
            w.loaded[msg[1]] = None
            while len(w.loaded) > _REWARD_CACHE:  # the worker dropped its oldest reward the same way
                w.loaded.pop(next(iter(w.loaded)))
            w.loading = None
        elif kind == "load_error":
            w.loading = None
            if msg[1] == self.key:  # (a replacement started by an earlier batch may report another reward)
                self.load_failure = msg[2]
        elif kind == "boot_error":
            w.loading = None
            self.load_failure = msg[1]

    def _enforce(self, workers: list[_Worker]) -> None:
        now = time.monotonic()
        for w in workers:
            if w.item is not None and now >= w.item[1]:
                index = w.item[0]
                w.item = None
                self._respawn(w)
                self._finish(index, GradeResult(score=0.0, timed_out=True))
            elif w.loading is not None and now >= w.loading[1]:
                self.pool._replace(w)
                if self.warm_row is not None:
                    self.warm_row = None  # the warm-up itself hung (a pathological gold?): retry without it
                else:
                    self.load_failure = f"it did not load within {max(LOAD_TIMEOUT_S, 10 * self.budget):.0f} s"

    def _respawn(self, w: _Worker) -> None:
        """Kill ``w`` and start its replacement loading the reward at once, so that it boots while the rest of this
        batch (or the caller, before its next call) goes on; no item's clock runs until it is ready."""
        self.pool._replace(w)
        try:
            fresh = self.pool._start_worker(self.key)
        except (OSError, AssertionError, ValueError):
            return  # _workers() retries (and falls back) when it needs one
        self._feed(fresh, time.monotonic(), load_only=True)

    def _crashed(self, w: _Worker) -> None:
        w._join(1)
        code = w.exitcode
        if w.item is not None:
            index = w.item[0]
            w.item = None
            self._finish(index, GradeResult(score=0.0, error=f"grading worker died (exit code {code})"))
        if w.loading is not None:
            w.loading = None
            self.load_crashes += 1
            if self.load_crashes >= 3:
                self.load_failure = f"3 grading workers died while loading it (exit code {code})"
        self.pool._replace(w)


