"""The batch grader: the only place that runs rewards in bulk, with a hard per-item time budget.

- ``reward.isolate`` is True (sympy, math-verify, big integers): items run in warm worker processes (fresh
  interpreters talking multiprocessing's Connection protocol; they never re-import the caller's ``__main__``). The
  parent tracks every item's deadline; a worker that overruns is killed with SIGKILL, its item scores 0.0 with
  ``timed_out=True``, and a replacement worker starts. No signals are used for timing, so this holds when ``grade``
  is called from any thread (TRL calls rewards off the main thread).
- ``reward.isolate`` is False: items run inline and are timed; an overrun still scores 0.0 as a timeout. Such rewards
  must be bounded by construction: :meth:`Reward.grade_one` refuses completions over ``max_chars`` before any work.
- The same holds in every process: a user's ``multiprocessing.Pool`` worker (spawn or fork), a datasets
  ``map(num_proc=...)`` or dataloader worker starts grading workers like any other process (``subprocess.Popen``
  works where ``multiprocessing`` refuses daemonic children). Only a real grading worker
  (:func:`~r1h.harness.grading.worker.in_worker`) grades nested calls inline, and its parent's deadline covers them.
- A reward that cannot load in a worker raises :class:`RewardLoadError` (``r1h score``/``r1h eval`` print one line,
  TRL fails at the first step), never a silent 0.0. A reward that cannot be shipped to a worker at all (unpicklable,
  defined in ``__main__``), or a process that cannot start one, gets one warning and the bounded thread path of
  :mod:`r1h.harness.grading.fallback`.
- Each worker's memory is capped (:mod:`r1h.harness.grading.budget`); an item that exceeds it scores 0.0 with an
  error and the worker is replaced. Starting a replacement is never counted against the next item's budget: an
  item's clock starts when it is sent to a loaded, idle worker. The pool keeps a loaded spare, and replacements fork
  from a warm zygote (:mod:`r1h.harness.grading.zygote`, Linux) in milliseconds, so the caller barely waits either.
  A cold pool forks its first workers from the zygote too: one interpreter imports sympy, not workers + spare + 1.

Each worker receives the pickled reward once (cached by content hash) and warms it up (lazy imports happen then,
outside any item's budget); after that only items cross the pipe, one at a time per worker so a hung worker can never
block the parent in a pipe write. This module owns the processes; :mod:`r1h.harness.grading.batch` schedules one
batch on them through the pool's public methods.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import pickle
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from r1h.harness.core.errors import ConfigError
from r1h.harness.core.types import GradeResult
from r1h.harness.grading import launch
from r1h.harness.grading import zygote as zygotes
from r1h.harness.grading.batch import Batch, Progress, RewardLoadError, report
from r1h.harness.grading.budget import (
    LOAD_TIMEOUT_S,
    default_workers,
    load_timeout,
    memory_limit_mb,
    resolve_budget,
)
from r1h.harness.grading.fallback import grade_bounded, warn_once
from r1h.harness.grading.protocol import WARMUP_COMPLETION
from r1h.harness.grading.worker import in_worker, safe_grade_one


# -- public entry points ------------------------------------------------------------------------------------------
def grade(
    reward: Any,
    completions: Sequence[Any],
    prompts: Sequence[Any] | None = None,
    rows: Sequence[dict[str, Any]] | None = None,
    *,
    budget: float | None = None,
    pool: GradingPool | None = None,
    progress: Progress | None = None,
) -> list[GradeResult]:
    """Grade ``completions`` with ``reward``: one :class:`GradeResult` per completion, in input order, never raising
    for a bad item. Isolated rewards run in ``pool`` (default: the shared :func:`default_pool`). A Ctrl-C while
    grading re-raises with ``partial``: the results so far in input order, None where not graded yet."""
    if getattr(reward, "isolate", False) and not in_worker():
        return (pool or default_pool()).grade(reward, completions, prompts, rows, budget=budget, progress=progress)
    items = _items(completions, prompts, rows)
    return _grade_inline(reward, items, resolve_budget(reward, budget), progress)


def _from_main(reward: Any) -> bool:
    """Whether ``reward`` pickles by reference to the caller's ``__main__``, which workers never import."""
    return getattr(type(reward), "__module__", None) == "__main__" or getattr(reward, "__module__", None) == "__main__"


def _items(completions, prompts, rows) -> list[tuple[int, Any, Any, dict[str, Any]]]:
    completions = list(completions or [])
    n = len(completions)
    if prompts is None:
        prompts = [None] * n
    elif isinstance(prompts, str) or len(prompts) != n:
        prompts = list(prompts) if not isinstance(prompts, str) else [prompts]
        if len(prompts) != n:
            raise ConfigError(f"grading got {n} completions but {len(prompts)} prompts")
    if rows is None:
        rows = [{} for _ in range(n)]
    elif len(rows) != n:
        raise ConfigError(f"grading got {n} completions but {len(rows)} rows of gold columns")
    return [(i, completions[i], prompts[i], dict(rows[i] or {})) for i in range(n)]


def _grade_inline(reward: Any, items: list, budget: float, progress: Progress | None) -> list[GradeResult]:
    results: list[GradeResult] = []
    try:
        for done, (_, completion, prompt, row) in enumerate(items, 1):
            start = time.monotonic()
            result = safe_grade_one(reward, completion, prompt, row)
            if time.monotonic() - start > budget:
                result = GradeResult(score=0.0, extracted=result.extracted, timed_out=True, error=result.error)
            results.append(result)
            report(progress, done)
    except KeyboardInterrupt as exc:  # the caller may keep what was graded (see GradingPool.grade)
        exc.partial = results + [None] * (len(items) - len(results))  # type: ignore[attr-defined]
        raise
    return results


@dataclass(frozen=True)
class WorkerStats:
    pid: int
    forked: bool  # forked from the zygote (else a fresh interpreter)
    busy: bool  # grading an item now


@dataclass(frozen=True)
class PoolStats:
    """A snapshot of a pool, for reports, tests and perf scripts (:meth:`GradingPool.stats`)."""

    workers: int  # items in flight at most
    spares: int  # loaded processes kept beyond ``workers``
    restarts: int  # processes replaced after a kill, a crash or a hung load
    members: tuple[WorkerStats, ...]  # every live worker process, spares included
    zygote_pid: int | None  # the zygote, while it is alive
    zygote_rewards: int  # rewards the zygote holds loaded, ready to fork with

    @property
    def pids(self) -> list[int]:
        return [m.pid for m in self.members]


class GradingPool:
    """Warm worker processes that grade isolated rewards with a hard per-item budget.

    >>> with GradingPool(workers=2) as pool:
    ...     results = pool.grade(reward, completions, rows=rows, budget=5.0)

    Workers start on first use and stay warm across batches; one batch runs at a time (other threads wait).
    """

    def __init__(self, workers: int | None = None, spares: int = 1, zygote: bool = True):
        self.workers = int(workers) if workers is not None else default_workers()
        if self.workers < 1:
            raise ConfigError(f"a grading pool needs at least 1 worker, got {self.workers}")
        # warm workers kept loaded but idle: a killed worker's place is taken by one at once, instead of the next
        # items waiting seconds for a fresh interpreter to import sympy (a replacement spare boots meanwhile)
        self.spares = max(0, int(spares))
        # replacements fork from a warm zygote in milliseconds where the platform allows
        self.use_zygote = bool(zygote) and os.name == "posix" and zygotes.supported()
        self.memory_mb = memory_limit_mb()
        self.restarts = 0  # workers replaced after a kill or a crash (for reports and tests)
        self.closed = False
        self._members: list[launch.Worker] = []
        self._zygote: zygotes.Zygote | None = None
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def __enter__(self) -> GradingPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers. A closed pool starts fresh workers if it is used again."""
        with self._lock:
            if os.getpid() == self._pid:
                for w in self._members:
                    w.stop()
                if self._zygote is not None:
                    self._zygote.stop()
            self._members, self._zygote = [], None
            self.closed = True

    def grade(
        self,
        reward: Any,
        completions: Sequence[Any],
        prompts: Sequence[Any] | None = None,
        rows: Sequence[dict[str, Any]] | None = None,
        *,
        budget: float | None = None,
        progress: Progress | None = None,
    ) -> list[GradeResult]:
        """Like :func:`grade`, always in this pool's worker processes (inline when called inside a worker)."""
        items = _items(completions, prompts, rows)
        budget = resolve_budget(reward, budget)
        if not items:
            return []
        if in_worker():
            return _grade_inline(reward, items, budget, progress)
        if _from_main(reward):
            warn_once(f"reward {getattr(reward, '__name__', reward)!r} is defined in __main__, which grading workers "
                      f"never import (move it to a module to isolate it)")
            return grade_bounded(reward, items, budget, lambda k: report(progress, k))
        try:
            blob = pickle.dumps(reward, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an unpicklable reward cannot be isolated
            warn_once(f"reward {getattr(reward, '__name__', reward)!r} cannot be pickled for a grading worker "
                      f"({type(exc).__name__})")
            return grade_bounded(reward, items, budget, lambda k: report(progress, k))
        key = hashlib.blake2b(blob, digest_size=16).hexdigest()
        with self._lock:
            if os.getpid() != self._pid:  # we were forked: the workers belong to our parent
                self._members, self._pid, self._zygote = [], os.getpid(), None
            self.closed = False
            return Batch(self, reward, key, blob, items, budget, progress).run()

    def warm(self, reward: Any, row: dict[str, Any] | None = None) -> None:
        """Start every worker and load ``reward`` into it now, so later batches pay no start-up cost."""
        self.grade(reward, [WARMUP_COMPLETION] * self.workers, rows=[row or {}] * self.workers,
                   budget=max(resolve_budget(reward), LOAD_TIMEOUT_S))

    def stats(self) -> PoolStats:
        """What the pool holds now (a snapshot; safe to call from another thread while a batch runs)."""
        members = tuple(WorkerStats(w.pid, w.forked, w.item is not None) for w in list(self._members))
        zygote = self._zygote
        alive = zygote is not None and zygote.alive
        return PoolStats(self.workers, self.spares, self.restarts, members, zygote.pid if alive else None,
                         len(zygote.loaded) if alive else 0)

    # -- the processes, as a batch (r1h.harness.grading.batch) uses them; callers hold no lock but the batch's ----
    def members(self) -> list[launch.Worker]:
        """Every live worker process (spares included), oldest first."""
        return list(self._members)

    def start_worker(self, key: str | None = None) -> launch.Worker:
        """A new worker: forked from the zygote when it holds ``key``, else a fresh interpreter (one of
        :data:`~r1h.harness.grading.launch.START_ERRORS` when this process cannot start one)."""
        worker = self._zygote.fork(key) if self._zygote is not None and key is not None else None
        if worker is None:
            worker = launch.start_worker(launch.boot_config(self.memory_mb))  # sys.path as it is now
        self._members.append(worker)
        return worker

    def fill(self, want: int, key: str) -> list[launch.Worker]:
        """Start workers until there are ``want`` plus the spares; the first ``want`` (their count bounds the items
        in flight). Raises what starting one raised only when there is none at all."""
        while len(self._members) < want + self.spares:
            try:
                self.start_worker(key)
            except launch.START_ERRORS:
                if self._members:
                    break  # grade with the workers we have
                raise
        return self._members[:want]

    def retire(self, worker: launch.Worker) -> None:
        """Kill ``worker`` (overrun, crashed, out of memory or hung loading) and count the replacement."""
        worker.kill()
        if worker in self._members:
            self._members.remove(worker)
        self.restarts += 1

    def prepare(self, key: str, blob: bytes, warm_row: dict[str, Any] | None, budget: float) -> None:
        """Before a batch: have the zygote load the reward. On a cold pool, wait for it, so that every worker and
        spare forks from one interpreter that imported sympy and warmed the reward up, instead of ``workers +
        spares + 1`` interpreters doing it at once (on 2 cores that cost more CPU than grading 1,000 MATH-500
        answers). If the zygote fails or hangs, fresh interpreters start as before."""
        if not self.use_zygote:
            return
        if self._zygote is not None and not self._zygote.alive:
            self._zygote = None
        try:
            if self._zygote is None:
                self._zygote = zygotes.Zygote(launch.boot_config(self.memory_mb))
            self._zygote.ensure(key, blob, warm_row)
        except (OSError, ValueError):
            self._zygote = None
        if self._zygote is None or self._members:
            return
        if not self._zygote.wait_loaded(key, load_timeout(budget)):
            self._zygote.stop()
            self._zygote = None


# -- the shared pool ----------------------------------------------------------------------------------------------
_DEFAULT: GradingPool | None = None
_DEFAULT_LOCK = threading.Lock()


def default_pool() -> GradingPool:
    """The process-wide pool (``$R1H_GRADING_WORKERS`` or all cores), created on first use, closed at exit."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT._pid != os.getpid():
            _DEFAULT = GradingPool()
        return _DEFAULT


@atexit.register
def _close_default_pool() -> None:
    if _DEFAULT is not None and _DEFAULT._pid == os.getpid():
        _DEFAULT.close()


def _after_fork_in_child() -> None:
    global _DEFAULT_LOCK
    _DEFAULT_LOCK = threading.Lock()  # a thread of the parent may have held it at fork time


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


__all__ = ["GradingPool", "PoolStats", "RewardLoadError", "default_pool", "grade", "resolve_budget"]
