"""A per-item time budget for the foreign grader scripts (standard library only; imported by them from this folder).

Why not SIGALRM: the foreign packages' math-verify arms its own ``signal.alarm`` timeouts inside parse/verify, which
would cancel or replace ours. Why not a process per item: lighteval imports torch, and forking per item costs more
than grading it. So a watchdog thread watches the item's deadline and, when it passes, sends ``SIGUSR1`` to the main
thread (``signal.pthread_kill``) whose handler raises :class:`ItemTimeout`, a ``BaseException`` so the foreign
code's ``except Exception`` does not swallow it. A real signal, unlike ``_thread.interrupt_main``, also breaks a
blocking call (``time.sleep``, a lock wait). Pure-Python work (sympy) stops at the next bytecode.

Where ``os.fork`` exists the scripts use :func:`run_forked` instead: each item runs in a child forked after the
imports and is SIGKILLed at its deadline, which stops anything (a regex or big-integer C loop that keeps the GIL too)
without restarting the interpreter. The thread watchdog below is the fallback without fork.

Some work never returns to the interpreter (a C loop in a big-integer power, a regex, OpenSSL), and some foreign code
catches ``BaseException``. The watchdog re-sends the signal every ``RESEND_S``; when the item is still running
``grace`` seconds after its deadline, the watchdog thread itself writes the item's timeout line and ends the process
with exit code ``HARD_EXIT``. The caller (``r1h.tools.foreign.run_foreign``) then starts the script again on the
items that have no line yet.
"""

from __future__ import annotations

import json
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

HARD_EXIT = 75  # the process ended itself on an item stuck past its grace period
RESEND_S = 0.5


class ItemTimeout(BaseException):
    """The item ran past its budget (raised in the main thread by the watchdog's signal)."""


class Watchdog:
    """Run one item at a time under a budget of ``budget`` seconds: ``run(key, fn, *args)`` -> ``(value, timed_out)``."""

    def __init__(self, budget: float, grace: float | None = None, out=None):
        self.budget = float(budget)
        self.grace = float(grace if grace is not None else max(2.0, self.budget / 2))
        self.out = out or sys.stdout
        self.write_lock = threading.Lock()  # the main thread and the watchdog both write result lines
        self._cond = threading.Condition()
        self._main = threading.main_thread().ident
        self._token = 0  # the item in progress (0: none)
        self._fire = -1  # the item the watchdog has fired at
        self._deadline: float | None = None
        self._key: str | None = None
        signal.signal(signal.SIGUSR1, self._on_signal)
        threading.Thread(target=self._watch, name="r1h-item-watchdog", daemon=True).start()

    def _on_signal(self, signum, frame):
        if self._token and self._token == self._fire:
            raise ItemTimeout()

    def run(self, key: str, fn: Callable[..., Any], *args: Any) -> tuple[Any, bool]:
        with self._cond:
            self._token += 1
            self._key = key
            self._deadline = time.monotonic() + self.budget
            token = self._token
            self._cond.notify()
        try:
            value = fn(*args)
            self._token = 0
            return value, False
        except ItemTimeout:
            self._token = 0
            return None, True
        finally:
            self._token = 0
            with self._cond:
                if self._deadline is not None and token == self._fire:
                    self._fire = -1
                self._deadline = None
                self._key = None
                self._cond.notify()

    def emit(self, result: dict) -> None:
        line = json.dumps(result, default=str) + "\n"
        with self.write_lock:
            self.out.write(line)
            self.out.flush()

    def _watch(self) -> None:
        first_fire = None
        while True:
            with self._cond:
                while self._deadline is None:
                    first_fire = None
                    self._cond.wait()
                now = time.monotonic()
                if now < self._deadline:
                    self._cond.wait(self._deadline - now)
                    continue
                token, key = self._token, self._key
                if first_fire is None or self._fire != token:
                    first_fire = now
                self._fire = token
                if now - first_fire >= self.grace:
                    self.write_lock.acquire(timeout=1.0)  # the main thread is stuck; do not wait on it for long
                    self.out.write(json.dumps(timeout_result(key, self.budget, hard=True)) + "\n")
                    self.out.flush()
                    os._exit(HARD_EXIT)
            try:
                signal.pthread_kill(self._main, signal.SIGUSR1)
            except (ProcessLookupError, OSError):
                return
            time.sleep(RESEND_S)


def read_items(stream) -> Iterator[tuple[str, dict]]:
    """The samples r1h sends, one JSON object per line: (key, item)."""
    for line in stream:
        if not line.strip():
            continue
        item = json.loads(line)
        yield item["key"], item


def timeout_result(key: str | None, budget: float, hard: bool = False) -> dict:
    how = "the process was ended" if hard else "interrupted"
    return {"key": key, "correct": None, "extracted": None, "metrics": {}, "timed_out": True,
            "error": f"timeout: the item ran past its {budget:g} s budget ({how})"}


def run_forked(budget: float, fn: Callable[..., Any], *args: Any) -> tuple[Any, bool]:
    """Run ``fn(*args)`` in a forked child (the imports are already done, so a fork costs milliseconds) and return
    ``(its JSON-able value, timed_out)``. The child is SIGKILLed at the deadline, whatever it is doing: a C call that
    keeps the GIL, a regex, a loop that swallows every exception. Nothing of the child's state comes back."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.close(read_fd)
        try:
            data = json.dumps({"value": fn(*args)}, default=str)
        except BaseException as exc:  # noqa: BLE001  the child reports everything, then exits
            data = json.dumps({"raised": f"{type(exc).__name__}: {exc}"})
        view = memoryview(data.encode("utf-8"))
        while view:
            view = view[os.write(write_fd, view):]
        os._exit(0)
    os.close(write_fd)
    deadline = time.monotonic() + budget
    chunks: list[bytes] = []
    timed_out = False
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                timed_out = True
                break
            ready, _, _ = select.select([read_fd], [], [], left)
            if not ready:
                continue
            chunk = os.read(read_fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    finally:
        os.close(read_fd)
        if timed_out:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        os.waitpid(pid, 0)
    if timed_out:
        return None, True
    try:
        out = json.loads(b"".join(chunks).decode("utf-8"))
    except ValueError:
        raise RuntimeError("the grading child died without a result") from None
    if "raised" in out:
        raise RuntimeError(out["raised"])
    return out["value"], False
