"""The worker side of the batch grader: what runs inside a worker process (and inside the zygote that forks them).

A worker loads rewards and grades one item at a time; the pool (:mod:`r1h.harness.grading.pool`) owns deadlines and
kills, and :mod:`r1h.harness.grading.launch` starts the processes. How a worker comes to run this module:

- a fresh interpreter (``python -I -c BOOT``, see :mod:`~r1h.harness.grading.launch`) calls :func:`entry`, which
  checks that its ``r1h`` is the parent's file, caps its memory, starts a watchdog and runs :func:`serve`;
- the zygote is such an interpreter with ``zygote=True``: it loads rewards like a worker but only answers
  :class:`~r1h.harness.grading.protocol.Fork`, by forking a child (:func:`serve_fork`) that runs :func:`serve` with
  the rewards already loaded.

It is identified as a grading worker by :func:`in_worker` (never by ``multiprocessing``'s ``daemon`` flag: a user's
Pool or dataloader worker is not a grading worker); nested grading there runs inline, under the parent's deadline.
"""

from __future__ import annotations

import gc
import os
import pickle
import signal
import socket
import threading
import time
from typing import Any

from r1h.harness.core.types import GradeResult
from r1h.harness.grading import protocol as P
from r1h.harness.grading.budget import limit_memory

_IN_WORKER = False  # True inside a grading worker: nested grading runs inline, never a nested pool


def in_worker() -> bool:
    """True only inside a grading worker (set when it starts serving), never merely in a daemonic process."""
    return _IN_WORKER


def safe_grade_one(reward: Any, completion: Any, prompt: Any, row: dict[str, Any]) -> GradeResult:
    """Grade one item in this process as a worker does, never raising; the inline and fallback paths use it too."""
    try:
        result = reward.grade_one(completion, prompt, row)
    except MemoryError:
        return GradeResult(score=0.0, error="MemoryError: the reward ran out of memory on this item")
    except BaseException as exc:  # grade_one never raises by contract; a broken plugin still must not take us down
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        return GradeResult(score=0.0, error=f"{type(exc).__name__}: {exc}")
    score = result.score
    if score is not None and not isinstance(score, float):
        try:
            score = float(score)
        except (TypeError, ValueError):
            return GradeResult(score=0.0, error=f"reward returned a non-number: {score!r:.100}")
    result.score = score
    return result


def _load(msg: P.Load) -> Any:
    """Unpickle and warm up a reward; raise if it cannot work here (the pool then raises RewardLoadError)."""
    reward = pickle.loads(msg.blob)  # noqa: S301 - our own parent pickled it a moment ago
    if msg.warm_row is not None:
        warm = safe_grade_one(reward, P.WARMUP_COMPLETION, None, msg.warm_row)
        if warm.error and ("ImportError" in warm.error or "ModuleNotFoundError" in warm.error
                           or P.out_of_memory(warm.error)):
            raise ImportError(warm.error)
    return reward


def serve(conn, rewards: dict[str, Any] | None = None, zygote: bool = False, memory_mb: int = 0) -> None:
    """Answer the pool's messages until :class:`~r1h.harness.grading.protocol.Stop` or a closed pipe."""
    global _IN_WORKER
    _IN_WORKER = True
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which kills us
        if zygote:
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers we fork
    except Exception:
        pass
    rewards = {} if rewards is None else rewards
    while True:
        try:
            msg = P.recv(conn)
        except (EOFError, OSError):
            return
        if isinstance(msg, P.Grade):
            if msg.key not in rewards:  # cannot happen while the pool mirrors our cache; never crash on it
                P.send(conn, P.Done(msg.index, 0.0, None, "grading worker lost the reward"))
                continue
            result = safe_grade_one(rewards[msg.key], msg.completion, msg.prompt, msg.row)
            done = P.Done(msg.index, result.score, result.extracted, result.error)
            P.send(conn, done)
            if done.out_of_memory:
                return  # the heap may be fragmented or half-built: the pool starts a fresh worker
        elif isinstance(msg, P.Load):
            try:
                reward = _load(msg)
            except BaseException as exc:
                P.send(conn, P.LoadError(msg.key, f"{type(exc).__name__}: {exc}"))
                continue
            P.remember(rewards, msg.key, reward)
            P.send(conn, P.Ready(msg.key))
        elif isinstance(msg, P.Fork) and zygote:
            serve_fork(conn, rewards, memory_mb)
        elif isinstance(msg, P.Stop):
            return


def _watch_parent(parent: int) -> None:
    """Exit when ``parent`` is gone (even one killed with SIGKILL): a worker outlives no pool, no zygote."""

    def watchdog() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True, name="r1h-grader-watchdog").start()


def entry(fd: int, r1h_file: str | None = None, memory_mb: int = 0, zygote: bool = False) -> None:
    """Entry point of a fresh worker interpreter (see ``launch``), which never imports the caller's ``__main__``."""
    import sys
    from multiprocessing.connection import Connection

    conn = Connection(fd)
    here = os.path.realpath(getattr(sys.modules.get("r1h"), "__file__", None) or "?")
    if r1h_file is not None and here != r1h_file:  # cannot happen with the boot; never grade with a stray r1h
        P.send(conn, P.BootError(f"grading worker imported r1h from {here}, not {r1h_file}"))
        os._exit(3)
    limit_memory(memory_mb)
    _watch_parent(os.getppid())
    serve(conn, zygote=zygote, memory_mb=memory_mb)
    os._exit(0)  # skip interpreter teardown (slow with sympy loaded); nothing is left to flush


# -- the zygote's side of a fork (the pool's side is r1h.harness.grading.zygote) -----------------------------------
def serve_fork(conn, rewards: dict[str, Any], memory_mb: int) -> None:
    """Answer one :class:`~r1h.harness.grading.protocol.Fork`: receive a socket fd, fork a worker serving on it,
    reply :class:`~r1h.harness.grading.protocol.Forked` with its pid."""
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        _, fds, _, _ = socket.recv_fds(sock, 1, 1)
    finally:
        sock.close()
    if not fds:
        P.send(conn, P.ForkError("no socket received"))
        return
    # Python's gc docs (gc.freeze): freeze right before fork() so that the child's collections never scan (or
    # copy-on-write) the zygote's long-lived objects: sympy and math-verify's modules and caches. A forked worker
    # then spends ~0.05 s instead of ~0.17 s in the collector per 500 MATH-500 items.
    gc.freeze()
    pid = os.fork()
    if pid == 0:  # the new worker
        try:
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            conn.close()
            _forked_worker(fds[0], rewards, memory_mb)
        finally:
            os._exit(0)
    for fd in fds:
        os.close(fd)
    P.send(conn, P.Forked(pid))


def _forked_worker(fd: int, rewards: dict[str, Any], memory_mb: int) -> None:
    from multiprocessing.connection import Connection

    limit_memory(memory_mb)
    _watch_parent(os.getppid())  # the zygote, which itself exits with the pool
    serve(Connection(fd), dict(rewards))
