"""Fast replacement of killed grading workers: a warm "zygote" process that forks new workers on request (Linux).

A fresh worker interpreter needs seconds to import sympy and math-verify (2-3 s idle, 5-10 s on a loaded machine),
and after a kill the next items wait for it. The zygote is started like any worker (``python -I``, the parent's
``sys.path``, r1h pinned to the parent's file) and loads every reward the pool grades with, but grades nothing; it
only forks: the pool sends it one end of a new socketpair (``socket.send_fds``), the zygote forks
(:func:`r1h.harness.grading.worker.serve_fork`), and the child is a warm worker with the rewards already loaded, in a
few milliseconds.

- The child's parent is the zygote, not the pool, so the pool tracks it by a pidfd
  (:class:`r1h.harness.grading.launch.Forked`). The zygote ignores SIGCHLD, so the kernel reaps its children.
- A child exits when the zygote does (its watchdog checks ``getppid``), and the zygote exits with the pool process
  (its own watchdog), so nothing outlives the pool, even one killed with SIGKILL.
- Only where all of this exists (Linux: ``os.fork``, ``os.pidfd_open``, ``signal.pidfd_send_signal``,
  ``socket.send_fds``); elsewhere, or while the zygote has not loaded the batch's reward yet, or if it fails, the
  pool starts a fresh interpreter as before.

This module is the pool's side; the zygote's side is :mod:`r1h.harness.grading.worker`.
"""

from __future__ import annotations

import os
import signal
import socket
import time
from multiprocessing.connection import Connection
from typing import Any

from r1h.harness.grading import launch
from r1h.harness.grading import protocol as P

FORK_TIMEOUT_S = 5.0


def supported() -> bool:
    """Whether this platform can run a zygote (Linux)."""
    return all((hasattr(os, "fork"), hasattr(os, "pidfd_open"), hasattr(signal, "pidfd_send_signal"),
                hasattr(socket, "send_fds")))


class Zygote:
    """The pool's handle on its zygote process."""

    def __init__(self, boot: dict[str, Any]):
        self.process = launch.start_worker(boot, zygote=True)
        self.loaded: dict[str, None] = {}  # mirrors the zygote's reward cache
        self.loading: set[str] = set()

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def alive(self) -> bool:
        return self.process.poll() is None and not self.process.conn.closed

    def _pump(self, timeout: float = 0.0, until: tuple[type, ...] = (P.Forked, P.ForkError, P.BootError)
              ) -> P.Message | None:
        """Read the zygote's pending replies; return the first of a type in ``until`` if it came in time."""
        conn = self.process.conn
        deadline = time.monotonic() + timeout
        while True:
            try:
                if not conn.poll(max(0.0, deadline - time.monotonic())):
                    return None
                msg = P.recv(conn)
            except (EOFError, OSError):
                self.stop()
                return None
            if isinstance(msg, P.Ready):
                self.loading.discard(msg.key)
                P.remember(self.loaded, msg.key)
            elif isinstance(msg, P.LoadError):
                self.loading.discard(msg.key)
            if isinstance(msg, until):
                return msg

    def ensure(self, key: str, blob: bytes, warm_row: dict[str, Any] | None) -> None:
        """Start loading ``key`` in the zygote (without waiting), unless it has it or is loading it."""
        self._pump()
        if key in self.loaded or key in self.loading or not self.alive:
            return
        try:
            self.process.send(P.Load(key, blob, warm_row))
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
            reply = self._pump(left, until=(P.Ready, P.LoadError, P.BootError))
            if isinstance(reply, P.BootError):
                self.stop()
        return key in self.loaded

    def fork(self, key: str) -> launch.Forked | None:
        """A new warm worker holding ``key`` (and the zygote's other rewards), or None if the zygote cannot."""
        self._pump()
        if key not in self.loaded or not self.alive:
            return None
        ours, theirs = socket.socketpair()
        try:
            self.process.send(P.Fork())
            sock = socket.socket(fileno=os.dup(self.process.conn.fileno()))
            try:
                socket.send_fds(sock, [b"f"], [theirs.fileno()])
            finally:
                sock.close()
            reply = self._pump(FORK_TIMEOUT_S)
        except OSError:
            reply = None
        finally:
            theirs.close()
        if not isinstance(reply, P.Forked):
            ours.close()
            self.stop()
            return None
        conn = Connection(ours.detach())
        try:
            return launch.Forked(conn, reply.pid, self.loaded)
        except OSError:  # it died already
            conn.close()
            return None

    def stop(self) -> None:
        try:
            self.process.stop()
        except Exception:
            pass
