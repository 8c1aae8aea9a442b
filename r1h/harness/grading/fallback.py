"""The bounded fallback of the batch grader, for an isolated reward that cannot run in a worker process.

That happens when the reward cannot be pickled (a lambda, a local class), when it lives in the caller's ``__main__``
(workers never import a training script), or when this process cannot start a worker at all. Each such item runs in
a daemon thread; the caller waits at most the item's budget, then scores it 0.0 as a timeout and moves on. A thread
cannot be killed, so an overrunning item keeps its CPU until it ends: at most :data:`MAX_STUCK` such threads are
allowed at a time, after which further items score 0.0 as timeouts without running. The call still returns within
the budget. One C call that holds the GIL for long (a huge ``int`` power) can delay the return until it ends;
worker processes, the normal path, have no such gap. Each reason is reported once per process as a warning.
"""

from __future__ import annotations

import threading
import warnings
from typing import Any

from r1h.harness.core.types import GradeResult
from r1h.harness.grading.worker import safe_grade_one

MAX_STUCK = 4  # overrunning item threads allowed at once in this process

_STUCK: list[threading.Thread] = []
_SAID: set[str] = set()
_LOCK = threading.Lock()


def warn_once(reason: str) -> None:
    """A RuntimeWarning for ``reason``, the first time it is given in this process."""
    with _LOCK:
        if reason in _SAID:
            return
        _SAID.add(reason)
    warnings.warn(f"r1h grading: {reason}; grading in this process with a bounded wait per item "
                  f"(an overrunning item scores 0.0 as a timeout)", RuntimeWarning, stacklevel=3)


def stuck_threads() -> int:
    with _LOCK:
        _STUCK[:] = [t for t in _STUCK if t.is_alive()]
        return len(_STUCK)


def _run(box: list, reward: Any, completion: Any, prompt: Any, row: dict[str, Any]) -> None:
    box.append(safe_grade_one(reward, completion, prompt, row))


def grade_bounded(reward: Any, items: list, budget: float, report) -> list[GradeResult]:
    """Grade ``items`` one at a time, each in a thread waited on for at most ``budget`` seconds."""
    results: list[GradeResult] = []
    for done, (_, completion, prompt, row) in enumerate(items, 1):
        if stuck_threads() >= MAX_STUCK:
            results.append(GradeResult(score=0.0, timed_out=True,
                                       error=f"not run: {MAX_STUCK} earlier items still run past their budget"))
            report(done)
            continue
        box: list[GradeResult] = []
        thread = threading.Thread(target=_run, args=(box, reward, completion, prompt, row), daemon=True,
                                  name="r1h-grade-item")
        thread.start()
        thread.join(budget)
        if box:
            results.append(box[0])
        else:
            with _LOCK:
                _STUCK.append(thread)
            results.append(GradeResult(score=0.0, timed_out=True))
        report(done)
    return results
