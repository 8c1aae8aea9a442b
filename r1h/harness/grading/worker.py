"""The worker side of the batch grader: a fresh interpreter that loads rewards and grades one item at a time.

The parent (:mod:`r1h.harness.grading.pool`) owns deadlines and kills; this module only runs what it is sent.

How a worker starts (POSIX): ``python -I -c BOOT`` with an explicit ``sys.path`` sent by the parent.

- ``-I`` (isolated mode) keeps the working directory off ``sys.path``: with plain ``python -c`` the cwd came first,
  so a folder named ``r1h`` there (a checkout's parent, an editable install) imported as a namespace package and
  every reward scored 0.0. ``-I`` also ignores ``PYTHON*`` variables and the user site; the parent's ``sys.path``
  (which already holds ``PYTHONPATH`` and the user site, if the parent used them) is sent instead, minus the ``''``
  (cwd) entry, with the directory the parent imported ``r1h`` from put first. The worker then checks that its
  ``r1h`` is the parent's file and refuses to start otherwise: a reward that cannot load is an error, never 0.0.
- It is identified as a grading worker by :data:`IN_WORKER`, set here when the worker starts (never by
  ``multiprocessing``'s ``daemon`` flag: a user's Pool or dataloader worker is not a grading worker).
- Its address space is capped (``RLIMIT_AS``, ``$R1H_GRADING_MEMORY_MB``, default 4096; 0 = no cap). An item that
  hits the cap scores 0.0 with a ``MemoryError`` and the worker exits after replying, so the parent replaces it.

multiprocessing's own spawn/forkserver start methods are not used on POSIX: they re-import the caller's ``__main__``
(a training script) and cannot start from a daemonic process; ``subprocess.Popen`` can.
"""

from __future__ import annotations

import os
import pickle
import threading
import time
from typing import Any

from r1h.harness.core.types import GradeResult
from r1h.harness.system import settings

WARMUP_COMPLETION = "<think>\n1\n</think>\n<answer>1</answer> The answer is $\\boxed{1}$."
_REWARD_CACHE = 8  # rewards kept loaded per worker (a GRPO step alternates a few)
IN_WORKER = False  # True inside a grading worker: nested grading runs inline, never a nested pool
MEMORY_ENV = "R1H_GRADING_MEMORY_MB"
DEFAULT_MEMORY_MB = settings.default(MEMORY_ENV)


def memory_limit_mb() -> int:
    """The per-worker address-space cap in MB from ``$R1H_GRADING_MEMORY_MB`` (default 4096; 0 = no cap)."""
    return settings.get(MEMORY_ENV)


def _limit_memory(mb: int) -> None:
    if mb <= 0:
        return
    try:
        import resource

        cap = mb * 1024 * 1024
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        if hard != resource.RLIM_INFINITY:
            cap = min(cap, hard)
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ImportError, ValueError, OSError):  # pragma: no cover - no RLIMIT_AS on this platform
        pass


def _safe_grade_one(reward: Any, completion: Any, prompt: Any, row: dict[str, Any]) -> GradeResult:
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


def out_of_memory(result: GradeResult) -> bool:
    """Whether grading this item ran out of memory (the reward may have caught and reported the MemoryError)."""
    return bool(result.error) and "MemoryError" in result.error


# -- the worker process -------------------------------------------------------------------------------------------
def _worker_main(conn, rewards: dict[str, Any] | None = None, zygote: bool = False, memory_mb: int = 0) -> None:
    """Loop: ("reward", key, blob, warm_row) loads and warms a reward; ("item", key, i, c, p, row) grades one item;
    ("fork",) (a zygote only, see :mod:`r1h.harness.grading.zygote`) forks a warm worker; ("stop",) or a closed
    pipe ends the worker."""
    global IN_WORKER
    IN_WORKER = True
    try:
        import signal

        signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C belongs to the parent, which kills us
        if zygote:
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # the kernel reaps the workers we fork
    except Exception:
        pass
    rewards = {} if rewards is None else rewards
    while True:
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            return
        kind = msg[0]
        if kind == "stop":
            return
        if kind == "fork" and zygote:
            from r1h.harness.grading.zygote import serve_fork

            serve_fork(conn, rewards, memory_mb)
            continue
        if kind == "reward":
            _, key, blob, warm_row = msg
            try:
                reward = pickle.loads(blob)  # noqa: S301 - our own parent pickled it a moment ago
                if warm_row is not None:
                    warm = _safe_grade_one(reward, WARMUP_COMPLETION, None, warm_row)
                    if warm.error and ("ImportError" in warm.error or "ModuleNotFoundError" in warm.error
                                       or out_of_memory(warm)):
                        raise ImportError(warm.error)  # the reward cannot work here: the parent raises
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
            if out_of_memory(result):
                return  # the heap may be fragmented or half-built: the parent starts a fresh worker


# -- the pool -----------------------------------------------------------------------------------------------------
# Runs under ``python -I``: sys.path is the parent's (sent as JSON), r1h is loaded from the parent's own file.
_BOOT = """\
import importlib.util, json, os, sys
cfg = json.loads(sys.argv[2])
known = set(sys.path)
sys.path[:0] = [p for p in cfg["path"] if p not in known]
if cfg["sites"]:
    import site
    for d in cfg["sites"]:
        if d not in known:
            site.addsitedir(d)
spec = importlib.util.spec_from_file_location("r1h", cfg["r1h"], submodule_search_locations=[os.path.dirname(cfg["r1h"])])
r1h = importlib.util.module_from_spec(spec)
sys.modules["r1h"] = r1h
spec.loader.exec_module(r1h)
from r1h.harness.grading.worker import _worker_entry
_worker_entry(int(sys.argv[1]), cfg["r1h"], cfg["memory_mb"], cfg.get("zygote", False))
"""


def boot_config(memory_mb: int) -> dict[str, Any]:
    """What a worker needs to import exactly what this process imports (see the module docstring)."""
    import site
    import sys

    import r1h

    path: list[str] = []
    for entry in sys.path:
        if isinstance(entry, str) and entry and os.path.abspath(entry) not in path:
            path.append(os.path.abspath(entry))
    if "" in sys.path and os.getcwd() not in path:  # modules next to a notebook or `python -c`: last, never first
        path.append(os.getcwd())
    sites = [d for d in [*site.getsitepackages(), site.getusersitepackages()] if d in path]
    return {"path": path, "sites": sites, "r1h": os.path.realpath(r1h.__file__), "memory_mb": memory_mb}


def _worker_entry(fd: int, r1h_file: str | None = None, memory_mb: int = 0, zygote: bool = False) -> None:
    """Entry point of a worker started by :class:`_Worker` (a fresh interpreter that never imports ``__main__``)."""
    import sys
    from multiprocessing.connection import Connection

    conn = Connection(fd)
    here = os.path.realpath(getattr(sys.modules.get("r1h"), "__file__", None) or "?")
    if r1h_file is not None and here != r1h_file:  # cannot happen with the boot above; never grade with a stray r1h
        conn.send(("boot_error", f"grading worker imported r1h from {here}, not {r1h_file}"))
        os._exit(3)
    _limit_memory(memory_mb)
    parent = os.getppid()

    def watchdog() -> None:  # a worker outlives no parent, even one killed with SIGKILL
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True, name="r1h-grader-watchdog").start()
    _worker_main(conn, zygote=zygote, memory_mb=memory_mb)
    os._exit(0)  # skip interpreter teardown (slow with sympy loaded); nothing is left to flush


class _Worker:
    """One worker process. On POSIX a fresh interpreter (subprocess) speaking multiprocessing's Connection protocol
    over a socketpair: unlike multiprocessing's spawn/forkserver it never re-imports the caller's ``__main__`` (a
    training script), so it is safe inside torch/TRL processes and with unguarded scripts. Elsewhere: "spawn"."""

    def __init__(self, ctx, boot: dict[str, Any] | None = None) -> None:
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
                    [sys.executable, "-I", "-c", _BOOT, str(fd), json.dumps(boot or boot_config(0))],
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


