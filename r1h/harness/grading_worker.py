"""The worker side of the batch grader: a fresh interpreter that loads rewards and grades one item at a time.

The parent (:mod:`r1h.harness.grading`) owns deadlines and kills; this module only runs what it is sent.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from typing import Any

from .types import GradeResult

WARMUP_COMPLETION = "<think>\n1\n</think>\n<answer>1</answer> The answer is $\\boxed{1}$."
_REWARD_CACHE = 8  # rewards kept loaded per worker (a GRPO step alternates a few)
IN_WORKER = False  # True inside a grading worker: nested grading runs inline, never a nested pool


def _safe_grade_one(reward: Any, completion: Any, prompt: Any, row: dict[str, Any]) -> GradeResult:
    try:
        result = reward.grade_one(completion, prompt, row)
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


# -- the worker process -------------------------------------------------------------------------------------------
def _worker_main(conn) -> None:
    """Loop: ("reward", key, blob, warm_row) loads and warms a reward; ("item", key, i, c, p, row) grades one item;
    ("stop",) or a closed pipe ends the worker."""
    global IN_WORKER
    IN_WORKER = True
    try:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which kills us
    except Exception:
        pass
    rewards: dict[str, Any] = {}
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        kind = msg[0]
        if kind == "stop":
            return
        if kind == "reward":
            _, key, blob, warm_row = msg
            try:
                reward = pickle.loads(blob)  # noqa: S301 - our own parent pickled it a moment ago
                if warm_row is not None:
                    _safe_grade_one(reward, WARMUP_COMPLETION, None, warm_row)
            except BaseException as exc:
                conn.send(("load_error", key, f"{type(exc).__name__}: {exc}"))
                continue
            rewards[key] = reward
            while len(rewards) > _REWARD_CACHE:
                rewards.pop(next(iter(rewards)))
            conn.send(("ready", key))
        elif kind == "item":
            _, key, index, completion, prompt, row = msg
            if key not in rewards:  # cannot happen while the parent mirrors our cache; never crash on it
                conn.send(("done", index, 0.0, None, "grading worker lost the reward"))
                continue
            result = _safe_grade_one(rewards[key], completion, prompt, row)
            conn.send(("done", index, result.score, result.extracted, result.error))


# -- the pool -----------------------------------------------------------------------------------------------------
_BOOT = (
    "import sys, json\n"
    "sys.path[:0] = [p for p in json.loads(sys.argv[2]) if p not in sys.path]\n"
    "from r1h.harness.grading_worker import _worker_entry\n"
    "_worker_entry(int(sys.argv[1]))\n"
)


def _worker_entry(fd: int) -> None:
    """Entry point of a worker started by :class:`_Worker` (a fresh interpreter that never imports ``__main__``)."""
    from multiprocessing.connection import Connection

    parent = os.getppid()

    def watchdog() -> None:  # a worker outlives no parent, even one killed with SIGKILL
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True, name="r1h-grader-watchdog").start()
    _worker_main(Connection(fd))
    os._exit(0)  # skip interpreter teardown (slow with sympy loaded); nothing is left to flush


class _Worker:
    """One worker process. On POSIX a fresh interpreter (subprocess) speaking multiprocessing's Connection protocol
    over a socketpair: unlike multiprocessing's spawn/forkserver it never re-imports the caller's ``__main__`` (a
    training script), so it is safe inside torch/TRL processes and with unguarded scripts. Elsewhere: "spawn"."""

    def __init__(self, ctx) -> None:
        self.loaded: dict[str, None] = {}  # mirrors the worker's reward cache, in the same insertion order
        self.loading: tuple[str, float] | None = None  # (key, deadline)
        self.item: tuple[int, float] | None = None  # (index, deadline)
        if os.name == "posix":
            import json
            import socket
            import subprocess
            import sys
            from multiprocessing.connection import Connection

            ours, theirs = socket.socketpair()
            try:
                fd = theirs.fileno()
                self.proc = subprocess.Popen(
                    [sys.executable, "-c", _BOOT, str(fd), json.dumps([p for p in sys.path if isinstance(p, str)])],
                    pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True,
                )
            finally:
                theirs.close()
            self.conn = Connection(ours.detach())
        else:  # pragma: no cover - Windows
            self.conn, child = ctx.Pipe(duplex=True)
            self.proc = ctx.Process(target=_worker_main, args=(child,), daemon=True, name="r1h-grader")
            self.proc.start()
            child.close()

    @property
    def exitcode(self) -> int | None:
        proc = self.proc
        return proc.poll() if hasattr(proc, "poll") else proc.exitcode

    def send(self, msg: tuple) -> None:
        self.conn.send(msg)

    def _join(self, timeout: float) -> bool:
        """Wait for the process to end; True when it has."""
        proc = self.proc
        try:
            if hasattr(proc, "wait"):
                proc.wait(timeout=timeout)
            else:  # pragma: no cover
                proc.join(timeout=timeout)
        except Exception:
            return False
        return self.exitcode is not None

    def kill(self) -> None:
        try:
            self.proc.kill()
        except Exception:
            pass
        self._join(5)
        try:
            self.conn.close()
        except Exception:
            pass

    def stop(self) -> None:
        try:
            self.conn.send(("stop",))
        except Exception:
            pass
        if self._join(1):
            self.conn.close()
        else:
            self.kill()


