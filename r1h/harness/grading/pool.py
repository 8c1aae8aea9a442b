"""The batch grader: the only place that runs rewards in bulk, with a hard per-item time budget.

- ``reward.isolate`` is True (sympy, math-verify, big integers): items run in warm worker processes (fresh
  interpreters talking multiprocessing's Connection protocol; they never re-import the caller's ``__main__``). The parent tracks every item's deadline; a worker that overruns is
  killed with SIGKILL, its item scores 0.0 with ``timed_out=True``, and a replacement worker starts. No signals are
  used for timing, so this holds when ``grade`` is called from any thread (TRL calls rewards off the main thread).
- ``reward.isolate`` is False: items run inline and are timed; an overrun still scores 0.0 as a timeout. Such rewards
  must be bounded by construction: :meth:`Reward.grade_one` refuses completions over ``max_chars`` before any work.
- The same holds in every process: a user's ``multiprocessing.Pool`` worker (spawn or fork), a datasets
  ``map(num_proc=...)`` or dataloader worker starts grading workers like any other process (``subprocess.Popen``
  works where ``multiprocessing`` refuses daemonic children). Only a real grading worker (``IN_WORKER``, set when
  the pool starts it) grades nested calls inline, and its parent's deadline covers them.
- A reward that cannot load in a worker raises :class:`RewardLoadError` (``r1h score``/``r1h eval`` print one line,
  TRL fails at the first step), never a silent 0.0. A reward that cannot be shipped to a worker at all (unpicklable,
  defined in ``__main__``), or a process that cannot start one, gets one warning and the bounded thread path of
  :mod:`r1h.harness.grading.fallback`.
- Each worker's memory is capped (``$R1H_GRADING_MEMORY_MB``, default 4096); an item that exceeds it scores 0.0 with
  an error and the worker is replaced. Starting a replacement is never counted against the next item's budget: an
  item's clock starts when it is sent to a loaded, idle worker. The pool keeps a loaded spare, and replacements fork
  from a warm zygote (:mod:`r1h.harness.grading.zygote`, Linux) in milliseconds, so the caller barely waits either.
  A cold pool forks its first workers from the zygote too: one interpreter imports sympy, not workers + spare + 1.

Each worker receives the pickled reward once (cached by content hash) and warms it up (lazy imports happen then,
outside any item's budget); after that only ``(index, completion, prompt, row)`` items cross the pipe, one at a time
per worker so a hung worker can never block the parent in a pipe write.
"""

from __future__ import annotations

import atexit
import hashlib
import multiprocessing as mp
import os
import pickle
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from r1h.harness.core.errors import ConfigError
from r1h.harness.core.reward import DEFAULT_BUDGET_S, Reward
from r1h.harness.core.types import GradeResult
from r1h.harness.grading import worker as grading_worker
from r1h.harness.grading import zygote as grading_zygote
from r1h.harness.grading.batch import LOAD_TIMEOUT_S, RewardLoadError, _Batch, _report
from r1h.harness.grading.fallback import grade_bounded, warn_once
from r1h.harness.grading.worker import (  # noqa: F401 - _REWARD_CACHE re-exported for tests and tools
    _REWARD_CACHE,
    WARMUP_COMPLETION,
    _safe_grade_one,
    _Worker,
    boot_config,
    memory_limit_mb,
)
from r1h.harness.system import settings

BUDGET_ENV = "R1H_GRADING_BUDGET"
WORKERS_ENV = "R1H_GRADING_WORKERS"

Progress = Callable[[int], Any]


# -- budgets ------------------------------------------------------------------------------------------------------
def resolve_budget(reward: Any, budget: float | None = None) -> float:
    """The per-item budget: ``budget`` if given, else the reward's own if it differs from the default, else
    ``$R1H_GRADING_BUDGET``, else 2 s."""
    if budget is None:
        own = getattr(reward, "budget", None)
        if own is not None and float(own) != DEFAULT_BUDGET_S:
            budget = float(own)
        else:
            budget = settings.get(BUDGET_ENV)
    budget = float(budget)
    if not budget > 0:
        raise ConfigError(f"grading budget must be a positive number of seconds, got {budget!r}")
    return budget


def default_workers() -> int:
    return settings.get(WORKERS_ENV)


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
    if getattr(reward, "isolate", False) and not _in_worker():
        return (pool or default_pool()).grade(reward, completions, prompts, rows, budget=budget, progress=progress)
    items = _items(completions, prompts, rows)
    return _grade_inline(reward, items, resolve_budget(reward, budget), progress)


def _in_worker() -> bool:
    """True only inside a grading worker (set when the pool starts it), never merely in a daemonic process."""
    return grading_worker.IN_WORKER


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
            result = _safe_grade_one(reward, completion, prompt, row)
            if time.monotonic() - start > budget:
                result = GradeResult(score=0.0, extracted=result.extracted, timed_out=True, error=result.error)
            results.append(result)
            _report(progress, done)
    except KeyboardInterrupt as exc:  # the caller may keep what was graded (see GradingPool.grade)
        exc.partial = results + [None] * (len(items) - len(results))  # type: ignore[attr-defined]
        raise
    return results


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
        # replacements fork from a warm zygote in milliseconds where the platform allows (grading_zygote)
        self.use_zygote = bool(zygote) and os.name == "posix" and grading_zygote.supported()
        self._zygote: grading_zygote.Zygote | None = None
        self._ctx = mp.get_context("spawn")  # used only where there is no POSIX subprocess worker
        self.memory_mb = memory_limit_mb()
        self._pool: list[_Worker] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self.restarts = 0  # workers replaced after a kill or a crash (for reports and tests)
        self.closed = False

    def __enter__(self) -> GradingPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers. A closed pool starts fresh workers if it is used again."""
        with self._lock:
            if os.getpid() == self._pid:
                for w in self._pool:
                    w.stop()
                if self._zygote is not None:
                    self._zygote.stop()
            self._pool, self._zygote = [], None
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
        if _in_worker():
            return _grade_inline(reward, items, budget, progress)
        if _from_main(reward):
            warn_once(f"reward {getattr(reward, '__name__', reward)!r} is defined in __main__, which grading workers "
                      f"never import (move it to a module to isolate it)")
            return grade_bounded(reward, items, budget, lambda k: _report(progress, k))
        try:
            blob = pickle.dumps(reward, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # an unpicklable reward cannot be isolated
            warn_once(f"reward {getattr(reward, '__name__', reward)!r} cannot be pickled for a grading worker "
                      f"({type(exc).__name__})")
            return grade_bounded(reward, items, budget, lambda k: _report(progress, k))
        key = hashlib.blake2b(blob, digest_size=16).hexdigest()
        with self._lock:
            if os.getpid() != self._pid:  # we were forked: the workers belong to our parent
                self._pool, self._pid, self._zygote = [], os.getpid(), None
            self.closed = False
            return _Batch(self, reward, key, blob, items, budget, progress).run()

    def warm(self, reward: Any, row: dict[str, Any] | None = None) -> None:
        """Start every worker and load ``reward`` into it now, so later batches pay no start-up cost."""
        self.grade(reward, [WARMUP_COMPLETION] * self.workers, rows=[row or {}] * self.workers,
                   budget=max(resolve_budget(reward), LOAD_TIMEOUT_S))

    # used by _Batch
    def _start_worker(self, key: str | None = None) -> _Worker:
        worker = self._zygote.fork(key) if self._zygote is not None and key is not None else None
        if worker is None:
            worker = _Worker(self._ctx, boot_config(self.memory_mb))  # sys.path as it is now
        self._pool.append(worker)
        return worker

    def _prepare_zygote(self, key: str, blob: bytes, warm_row: dict[str, Any] | None) -> None:
        if not self.use_zygote:
            return
        if self._zygote is not None and not self._zygote.alive:
            self._zygote = None
        try:
            if self._zygote is None:
                self._zygote = grading_zygote.Zygote(self._ctx, boot_config(self.memory_mb))
            self._zygote.ensure(key, blob, warm_row)
        except (OSError, ValueError):
            self._zygote = None

    def _replace(self, worker: _Worker) -> None:
        worker.kill()
        if worker in self._pool:
            self._pool.remove(worker)
        self.restarts += 1


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


__all__ = ["GradingPool", "Reward", "RewardLoadError", "default_pool", "grade", "resolve_budget"]
