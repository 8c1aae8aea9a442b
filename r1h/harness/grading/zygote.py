"""Fast replacement of killed grading workers: a warm "zygote" process that forks new workers on request (Linux).

A fresh worker interpreter needs seconds to import sympy and math-verify (2-3 s idle, 5-10 s on a loaded machine),
and after a kill the next items wait for it. The zygote is started like any worker (``python -I``, the parent's
``sys.path``, r1h pinned to the parent's file) and loads every reward the pool grades with, but grades nothing; it
only forks: the pool sends it one end of a new socketpair (``socket.send_fds``), the zygote forks, and the child is
a warm worker with the rewards already loaded, in a few milliseconds.

- The child's parent is the zygote, not the pool, so the pool tracks it by a pidfd (``os.pidfd_open``): signals go
  to that exact process even if its pid is reused, and the pidfd turns readable when it exits. The zygote ignores
  SIGCHLD, so the kernel reaps its children.
- A child exits when the zygote does (its watchdog checks ``getppid``), and the zygote exits with the pool process
  (its own watchdog), so nothing outlives the pool, even one killed with SIGKILL.
- Only where all of this exists (Linux: ``os.fork``, ``os.pidfd_open``, ``signal.pidfd_send_signal``,
  ``socket.send_fds``); elsewhere, or while the zygote has not loaded the batch's reward yet, or if it fails, the
  pool starts a fresh interpreter as before.
"""

from __future__ import annotations

import gc
import os
import select
import signal
import socket
import threading
import time
from typing import Any

from r1h.harness.grading import worker as gw

FORK_TIMEOUT_S = 5.0


def supported() -> bool:
    return all((hasattr(os, "fork"), hasattr(os, "pidfd_open"), hasattr(signal, "pidfd_send_signal"),
                hasattr(socket, "send_fds")))


# -- the zygote side ------------------------------------------------------------------------------------------------
def serve_fork(conn, rewards: dict[str, Any], memory_mb: int) -> None:
    """Handle one ("fork",) message: receive a socket fd, fork a worker on it, reply ("forked", pid)."""
    sock = socket.socket(fileno=os.dup(conn.fileno()))
    try:
        _, fds, _, _ = socket.recv_fds(sock, 1, 1)
    finally:
        sock.close()
    if not fds:
        conn.send(("fork_error", "no socket received"))
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
            _child(fds[0], rewards, memory_mb)
        finally:
            os._exit(0)
    for fd in fds:
        os.close(fd)
    conn.send(("forked", pid))


def _child(fd: int, rewards: dict[str, Any], memory_mb: int) -> None:
    from multiprocessing.connection import Connection

    gw._limit_memory(memory_mb)
    zygote = os.getppid()

    def watchdog() -> None:
        while os.getppid() == zygote:
            time.sleep(0.5)
        os._exit(0)

    threading.Thread(target=watchdog, daemon=True, name="r1h-grader-watchdog").start()
    gw._worker_main(Connection(fd), dict(rewards))


# -- the pool side --------------------------------------------------------------------------------------------------
class _ForkedProc:
    """A forked worker seen from the pool, with the bits of ``subprocess.Popen`` that ``_Worker`` uses."""

    def __init__(self, pid: int):
        self.pid = pid
        self._fd: int | None = os.pidfd_open(pid)
        self.returncode: int | None = None

    def _exited(self, timeout: float) -> bool:
        if self._fd is None:
            return True
        ready, _, _ = select.select([self._fd], [], [], timeout)
        if ready:
            os.close(self._fd)
            self._fd = None
            self.returncode = -1  # not our child: its exit status belongs to the zygote
        return bool(ready)

    def poll(self) -> int | None:
        self._exited(0)
        return self.returncode

    def wait(self, timeout: float | None = None) -> int | None:
        if not self._exited(timeout if timeout is not None else 3600.0):
            raise TimeoutError(f"worker {self.pid} still runs")
        return self.returncode

    def kill(self) -> None:
        if self._fd is not None:
            try:
                signal.pidfd_send_signal(self._fd, signal.SIGKILL)
            except ProcessLookupError:
                pass


class Zygote:
    """The pool's handle on its zygote process."""

    def __init__(self, ctx, boot: dict[str, Any]):
        self.worker = gw._Worker(ctx, {**boot, "zygote": True})
        self.loaded: dict[str, None] = {}
        self.loading: set[str] = set()

    @property
    def alive(self) -> bool:
        return self.worker.exitcode is None and not self.worker.conn.closed

    def _pump(self, timeout: float = 0.0, until: tuple[str, ...] = ("forked", "fork_error", "boot_error")
              ) -> tuple | None:
        """Read the zygote's pending replies; return the first whose kind is in ``until`` if it came in time."""
        conn = self.worker.conn
        deadline = time.monotonic() + timeout
        while True:
            try:
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    return None
                msg = conn.recv()
            except (EOFError, OSError):
                self.stop()
                return None
            if msg[0] == "ready":
                self.loading.discard(msg[1])
                self.loaded[msg[1]] = None
                while len(self.loaded) > gw._REWARD_CACHE:
                    self.loaded.pop(next(iter(self.loaded)))
            elif msg[0] == "load_error":
                self.loading.discard(msg[1])
            if msg[0] in until:
                return msg

    def ensure(self, key: str, blob: bytes, warm_row: dict[str, Any] | None) -> None:
        """Start loading ``key`` in the zygote (without waiting), unless it has it or is loading it."""
        self._pump()
        if key in self.loaded or key in self.loading or not self.alive:
            return
        try:
            self.worker.send(("reward", key, blob, warm_row))
            self.loading.add(key)
        except (OSError, ValueError):
            self.stop()

    def wait_loaded(self, key: str, timeout: float) -> bool:
        """Wait until the zygote has loaded ``key`` (True), failed to, died, or ``timeout`` passed (False)."""
        deadline = time.monotonic() + timeout
        while key in self.loading and self.alive:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            reply = self._pump(left, until=("ready", "load_error", "boot_error"))
            if reply is not None and reply[0] == "boot_error":
                self.stop()
        return key in self.loaded

    def fork(self, key: str) -> gw._Worker | None:
        """A new warm worker holding ``key`` (and the zygote's other rewards), or None if the zygote cannot."""
        self._pump()
        if key not in self.loaded or not self.alive:
            return None
        from multiprocessing.connection import Connection

        ours, theirs = socket.socketpair()
        try:
            self.worker.send(("fork",))
            sock = socket.socket(fileno=os.dup(self.worker.conn.fileno()))
            try:
                socket.send_fds(sock, [b"f"], [theirs.fileno()])
            finally:
                sock.close()
            reply = self._pump(FORK_TIMEOUT_S)
        except OSError:
            reply = None
        finally:
            theirs.close()
        if reply is None or reply[0] != "forked":
            ours.close()
            self.stop()
            return None
        try:
            proc = _ForkedProc(reply[1])
        except OSError:  # it died already
            ours.close()
            return None
        worker = gw._Worker.__new__(gw._Worker)
        worker.loaded, worker.loading, worker.item = dict(self.loaded), None, None
        worker.proc = proc
        worker.conn = Connection(ours.detach())
        return worker

    def stop(self) -> None:
        try:
            self.worker.stop()
        except Exception:
            pass
