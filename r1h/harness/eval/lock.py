"""The ``--output`` lock: one ``r1h eval`` (or ``r1h distill generate``) per run directory (or one per shard of it).

``fcntl.flock`` on ``DIR/.lock``: a whole run holds it exclusively; each ``--shard I/N`` run holds it shared (so
shards run side by side) plus ``DIR/.lock.shard-I-of-N`` exclusively. The kernel drops a lock when its process dies,
so a lock left by a ``kill -9`` is simply taken over; the file's content (PID and host of the holder) only names the
holder in the refusal. ``filelock`` would do the locking, but not the shared/exclusive pair nor the holder's PID.
"""

from __future__ import annotations

import errno
import fcntl
import os
import socket
from pathlib import Path

from r1h.harness.core.errors import RunError
from r1h.harness.eval.store import io_error

MAIN = ".lock"
_NO_LOCKS = {errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL}


def _holder(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8").split()
    except OSError:
        text = []
    if not text:
        return "another process"
    return f"PID {text[0]}" + (f" on {text[1]}" if len(text) > 1 and text[1] != socket.gethostname() else "")


class RunLock:
    """Hold the locks of one run directory until :meth:`release` (or the process ends)."""

    def __init__(self, root: Path, shard: str | None = None, command: str = "r1h eval"):
        self.root, self.shard, self.command = Path(root), shard, command  # command: named in a refusal
        self._fds: list[int] = []
        self.warning: str | None = None

    def _take(self, path: Path, exclusive: bool, write_pid: bool) -> bool:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise io_error(path, exc, "cannot create the lock file") from exc
        try:
            fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except OSError as exc:
            os.close(fd)
            if exc.errno in _NO_LOCKS:  # a filesystem without flock (some Lustre/NFS mounts): run unlocked, say so
                self.warning = f"{path}: this filesystem cannot lock ({exc.strerror}); running without a lock"
                return True
            raise io_error(path, exc, "cannot lock") from exc
        if write_pid:
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
            except OSError:
                pass  # the lock holds; only the refusal message of a rival gets vaguer
        self._fds.append(fd)
        return True

    def acquire(self) -> RunLock:
        main = self.root / MAIN
        if self.shard is None:
            if not self._take(main, exclusive=True, write_pid=True):
                holders = [_holder(p) for p in sorted(self.root.glob(f"{MAIN}.shard-*")) if self._busy(p)]
                who = ", ".join(holders) if holders else _holder(main)
                self.release()
                raise RunError(f"{self.root} is in use by another {self.command} ({who}); wait for it or use another "
                               "--output")
            return self
        if not self._take(main, exclusive=False, write_pid=False):
            who = _holder(main)
            self.release()
            raise RunError(f"{self.root} is in use by another {self.command} ({who}); wait for it or use another --output")
        path = self.root / f"{MAIN}.{self.shard}"
        if not self._take(path, exclusive=True, write_pid=True):
            who = _holder(path)
            self.release()
            raise RunError(f"{self.root}: {self.shard} is already running ({who})")
        return self

    @staticmethod
    def _busy(path: Path) -> bool:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        finally:
            os.close(fd)
        return False

    def release(self) -> None:
        while self._fds:
            os.close(self._fds.pop())

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
