"""How the pool starts a worker, and its handle on one: :class:`Worker`, implemented by a fresh interpreter
(:class:`Interpreter`) and by a child forked from the zygote (:class:`Forked`).

A fresh interpreter (POSIX) is ``python -I -c BOOT`` with an explicit ``sys.path`` sent by the parent, talking
multiprocessing's Connection protocol over a socketpair:

- ``-I`` (isolated mode) keeps the working directory off ``sys.path``: with plain ``python -c`` the cwd came first,
  so a folder named ``r1h`` there (a checkout's parent, an editable install) imported as a namespace package and
  every reward scored 0.0. ``-I`` also ignores ``PYTHON*`` variables and the user site; the parent's ``sys.path``
  (which already holds ``PYTHONPATH`` and the user site, if the parent used them) is sent instead, minus the ``''``
  (cwd) entry, with the directory the parent imported ``r1h`` from put first. The worker then checks that its
  ``r1h`` is the parent's file and refuses to start otherwise: a reward that cannot load is an error, never 0.0.
- multiprocessing's own spawn/forkserver start methods are not used on POSIX: they re-import the caller's
  ``__main__`` (a training script) and cannot start from a daemonic process; ``subprocess.Popen`` can.

A forked worker's parent is the zygote, not the pool, so the pool tracks it by a pidfd (``os.pidfd_open``): signals
go to that exact process even if its pid is reused, and the pidfd turns readable when it exits.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
from multiprocessing.connection import Connection
from typing import Any

from r1h.harness.grading import protocol as P

START_ERRORS = (OSError, AssertionError, ValueError)  # cannot start a worker: EAGAIN/ENOMEM, a daemonic spawn (Windows)
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
from r1h.harness.grading.worker import entry
entry(int(sys.argv[1]), cfg["r1h"], cfg["memory_mb"], cfg.get("zygote", False))
"""


def boot_config(memory_mb: int) -> dict[str, Any]:
    """What a worker needs to import exactly what this process imports (see the module docstring)."""
    import site

    r1h = sys.modules["r1h"]  # the r1h this process runs (importing it here would make a cycle)
    path: list[str] = []
    for entry in sys.path:
        if isinstance(entry, str) and entry and os.path.abspath(entry) not in path:
            path.append(os.path.abspath(entry))
    if "" in sys.path and os.getcwd() not in path:  # modules next to a notebook or `python -c`: last, never first
        path.append(os.getcwd())
    sites = [d for d in [*site.getsitepackages(), site.getusersitepackages()] if d in path]
    return {"path": path, "sites": sites, "r1h": os.path.realpath(r1h.__file__), "memory_mb": memory_mb}


class Worker:
    """A worker process seen from the pool: its pipe, what the pool knows it holds and does, and its life.

    ``loaded`` mirrors the worker's reward cache (same keys, same order); ``loading`` is ``(key, deadline)`` while
    it loads a reward; ``item`` is ``(index, deadline)`` while it grades one. Subclasses say how the process is
    watched and killed.
    """

    forked = False  # True for a child of the zygote

    def __init__(self, conn: Connection, pid: int, loaded: dict[str, None] | None = None):
        self.conn, self.pid = conn, pid
        self.loaded: dict[str, None] = dict(loaded or {})
        self.loading: tuple[str, float] | None = None
        self.item: tuple[int, float] | None = None

    # -- what a process kind provides ---------------------------------------------------------------------------
    def poll(self) -> int | None:
        """The exit code once the process has ended, else None."""
        raise NotImplementedError

    def _wait(self, timeout: float) -> None:
        """Wait up to ``timeout`` seconds for the process to end (may raise on timeout)."""
        raise NotImplementedError

    def _signal_kill(self) -> None:
        raise NotImplementedError

    # -- shared -------------------------------------------------------------------------------------------------
    def send(self, msg: P.Message) -> None:
        P.send(self.conn, msg)

    def join(self, timeout: float) -> bool:
        """Wait for the process to end; True when it has."""
        try:
            self._wait(timeout)
        except Exception:
            return False
        return self.poll() is not None

    def kill(self) -> None:
        """SIGKILL the process, reap it and close the pipe."""
        try:
            self._signal_kill()
        except Exception:
            pass
        self.join(5)
        try:
            self.conn.close()
        except Exception:
            pass

    def stop(self) -> None:
        """Ask the worker to exit; kill it if it has not within a second."""
        try:
            self.send(P.Stop())
        except Exception:
            pass
        if self.join(1):
            self.conn.close()
        else:
            self.kill()


class Interpreter(Worker):
    """A fresh ``python -I`` interpreter started with ``subprocess.Popen`` (POSIX)."""

    def __init__(self, boot: dict[str, Any]):
        ours, theirs = socket.socketpair()
        try:
            fd = theirs.fileno()
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, str(fd), json.dumps(boot)],
                pass_fds=(fd,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True,
            )
        finally:
            theirs.close()
        super().__init__(Connection(ours.detach()), self.proc.pid)

    def poll(self) -> int | None:
        return self.proc.poll()

    def _wait(self, timeout: float) -> None:
        self.proc.wait(timeout=timeout)

    def _signal_kill(self) -> None:
        self.proc.kill()


class Forked(Worker):
    """A worker forked by the zygote (:mod:`r1h.harness.grading.zygote`), already holding the zygote's rewards.
    Not our child: it is watched and killed through a pidfd, and its exit status belongs to the zygote (-1 here)."""

    forked = True

    def __init__(self, conn: Connection, pid: int, loaded: dict[str, None]):
        self._fd: int | None = os.pidfd_open(pid)  # OSError if it died already
        self._returncode: int | None = None
        super().__init__(conn, pid, loaded)

    def _exited(self, timeout: float) -> bool:
        if self._fd is None:
            return True
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if ready:
            os.close(self._fd)
            self._fd = None
            self._returncode = -1
        return bool(ready)

    def poll(self) -> int | None:
        self._exited(0)
        return self._returncode

    def _wait(self, timeout: float) -> None:
        if not self._exited(timeout):
            raise TimeoutError(f"worker {self.pid} still runs")

    def _signal_kill(self) -> None:
        if self._fd is not None:
            try:
                signal.pidfd_send_signal(self._fd, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Spawned(Worker):  # pragma: no cover - Windows
    """Where there is no POSIX subprocess worker: multiprocessing's "spawn"."""

    def __init__(self, boot: dict[str, Any]):
        import multiprocessing as mp

        from r1h.harness.grading.worker import serve

        ctx = mp.get_context("spawn")
        conn, child = ctx.Pipe(duplex=True)
        self.proc = ctx.Process(target=serve, args=(child,), daemon=True, name="r1h-grader")
        self.proc.start()
        child.close()
        super().__init__(conn, self.proc.pid)

    def poll(self) -> int | None:
        return self.proc.exitcode

    def _wait(self, timeout: float) -> None:
        self.proc.join(timeout=timeout)

    def _signal_kill(self) -> None:
        self.proc.kill()


def start_worker(boot: dict[str, Any], zygote: bool = False) -> Worker:
    """Start a fresh worker process (the zygote too, with ``zygote=True``); one of :data:`START_ERRORS` when this
    process cannot start one."""
    if os.name == "posix":
        return Interpreter({**boot, "zygote": True} if zygote else boot)
    return Spawned(boot)  # pragma: no cover - Windows
