"""Other packages' graders, run in their own virtualenvs: each script in ``foreign_graders/`` reads JSONL samples on
stdin and writes one verdict line per sample, with a per-item budget enforced inside the script and from here.

The env of a grader is built on first use under ``$R1H_GRADER_HOME`` (default ``~/.cache/r1h/graders``), with pinned
requirements (lighteval pins latex2sympy2_extended==1.0.6, math-verify needs 1.11, so neither can share r1h's env),
or given as a python.
"""

from __future__ import annotations

import collections
import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import ConfigError, RunError
from r1h.harness.system import settings

SCRIPTS = Path(__file__).with_name("foreign_graders")
DEFAULT_ITEM_TIMEOUT_S = 10.0  # per item in a foreign grader; lighteval's own math-verify allows 5 s per parse
HARD_EXIT = 75  # foreign_graders/_watchdog.py: the script ended itself on an item no signal could stop
STARTUP_TIMEOUT_S = 600.0  # a foreign grader's imports (lighteval imports torch) before its first line
KILL_MARGIN_S = 10.0  # past the script's own budget and grace, before r1h kills it


@dataclass(frozen=True)
class ForeignGrader:
    """A grader living in another package: the pinned requirements of its env and the script run inside it."""

    name: str
    env: str  # env directory name (shared by variants of one package)
    requirements: tuple[str, ...]
    script: str
    args: tuple[str, ...] = ()
    pin_host_torch: bool = False  # lighteval depends on torch: reuse the host's version instead of a CUDA download


FOREIGN: dict[str, ForeignGrader] = {
    "lighteval": ForeignGrader("lighteval", "lighteval-0.13.0", ("lighteval==0.13.0",), "lighteval_grader.py",
                               pin_host_torch=True),
    "lm-eval": ForeignGrader("lm-eval", "lm-eval-0.4.13", ("lm-eval[math]==0.4.13",), "lmeval_grader.py",
                             ("--metric", "minerva")),
    "lm-eval:math_verify": ForeignGrader("lm-eval:math_verify", "lm-eval-0.4.13", ("lm-eval[math]==0.4.13",),
                                         "lmeval_grader.py", ("--metric", "minerva_math_verify")),
    "lm-eval:hendrycks": ForeignGrader("lm-eval:hendrycks", "lm-eval-0.4.13", ("lm-eval[math]==0.4.13",),
                                       "lmeval_grader.py", ("--metric", "hendrycks")),
}
GRADER_NAMES = ("r1h", *FOREIGN)


@dataclass
class Verdict:
    correct: bool | None
    extracted: str | None = None
    error: str | None = None


@dataclass
class Item:
    """One saved sample to regrade."""

    benchmark: str
    id: str
    sample_index: int
    completion: str
    prompt: Any
    recorded: bool | None
    columns: dict[str, Any] = field(default_factory=dict)
    row: dict[str, Any] = field(default_factory=dict)
    verdicts: dict[str, Verdict] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.benchmark}\t{self.id}\t{self.sample_index}"


# -- environments -----------------------------------------------------------------------------------------------------
def grader_home() -> Path:
    return settings.get("R1H_GRADER_HOME")


def ensure_env(grader: ForeignGrader, python: str | None = None, log=print) -> str:
    """The python of the grader's env, building the env (venv + pinned pip install) on first use."""
    if python:
        if not Path(python).exists():
            raise ConfigError(f"--python for {grader.name}: {python} does not exist")
        return python
    env = grader_home() / grader.env
    py = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    requirements = list(grader.requirements)
    if grader.pin_host_torch:
        try:
            requirements.append(f"torch=={metadata.version('torch').split('+')[0]}")
        except metadata.PackageNotFoundError:
            pass
    marker = env / ".r1h-ready"
    if marker.is_file() and py.exists() and marker.read_text().split("\n") == requirements:
        return str(py)
    log(f"building the {grader.name} grader env at {env} (pip install {' '.join(requirements)}) ...")
    try:
        if not py.exists():
            _run_build([sys.executable, "-m", "venv", str(env)], grader, env)
        extra = settings.get("R1H_GRADER_PIP_ARGS")
        _run_build([str(py), "-m", "pip", "install", "-q", *extra, *requirements], grader, env)
    except OSError as exc:
        raise RunError(f"cannot build the {grader.name} grader env at {env}: {exc}") from exc
    marker.write_text("\n".join(requirements))
    return str(py)


def _run_build(cmd: list[str], grader: ForeignGrader, env: Path) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip() and "WARNING" not in ln]
        reason = lines[-1].strip() if lines else f"exit code {proc.returncode}"
        raise RunError(f"cannot build the {grader.name} grader env at {env}: {cmd[2] if len(cmd) > 2 else cmd[0]} "
                       f"failed: {reason}")


def _stream_script(cmd: list[str], payload: str, first_line_s: float, next_line_s: float,
                   deadline: float | None, on_line=None) -> tuple[list[str], int | None, str]:
    """Run a grader script, feeding ``payload`` and reading its lines as they come.

    The script is killed when its first line (the meta line, after its imports) takes over ``first_line_s``, or a
    later line over ``next_line_s``: an item held the interpreter where even the script's own watchdog thread
    cannot run (a C call that keeps the GIL). Returns (lines, exit code or None when killed, stderr tail).
    """
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            encoding="utf-8", errors="replace")
    lines: queue.Queue = queue.Queue()
    err: collections.deque = collections.deque(maxlen=20)

    def feed():
        try:
            proc.stdin.write(payload)
            proc.stdin.close()
        except (BrokenPipeError, OSError, ValueError):
            pass

    def read(stream, sink):
        for line in stream:
            sink(line)
        if stream is proc.stdout:
            lines.put(None)

    threads = [threading.Thread(target=feed, daemon=True),
               threading.Thread(target=read, args=(proc.stdout, lines.put), daemon=True),
               threading.Thread(target=read, args=(proc.stderr, err.append), daemon=True)]
    for thread in threads:
        thread.start()
    out: list[str] = []
    wait = first_line_s
    killed = False
    try:
        while True:
            limit = wait if deadline is None else min(wait, deadline - time.monotonic())
            try:
                line = lines.get(timeout=max(0.0, limit))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise
                killed = True
                break
            if line is None:
                break
            out.append(line)
            if line.startswith("{"):
                wait = next_line_s
                if on_line is not None:
                    on_line(line)
    finally:
        if killed or proc.poll() is None and (deadline is not None and time.monotonic() >= deadline):
            proc.kill()
    code = proc.wait()
    for thread in threads[1:]:
        thread.join(timeout=5)
    return out, (None if killed else code), "".join(err)


def run_foreign(grader: ForeignGrader, items: list[Item], python: str, timeout: float | None = None,
                item_timeout: float = DEFAULT_ITEM_TIMEOUT_S, startup_timeout: float = STARTUP_TIMEOUT_S,
                log=None, on_item=None) -> dict:
    """Send the items through the grader script; returns the meta line and fills ``item.verdicts[grader.name]``.
    ``on_item()`` is called as each verdict line arrives (live progress).

    Every item has a budget of ``item_timeout`` seconds, enforced twice:

    - inside the script (``foreign_graders/_watchdog.py``): the item is interrupted and reported as a timeout; when
      no signal stops it, the script writes the item's timeout line and exits with ``HARD_EXIT``;
    - here: when no line comes for ``item_timeout`` plus the script's grace period and a margin, the script is killed
      and the item in flight (the first without a verdict: the script answers in input order) is a timeout.

    After either exit the script starts again on the items that have no verdict yet.
    """
    if not item_timeout > 0:
        raise ConfigError(f"--item-timeout must be a positive number of seconds, got {item_timeout!r}")
    by_key = {it.key: it for it in items}
    meta: dict[str, Any] = {}
    pending = list(items)
    restarts = 0
    deadline = None if timeout is None else time.monotonic() + timeout
    next_line_s = item_timeout + max(2.0, item_timeout / 2) + KILL_MARGIN_S  # the script's own grace, then ours
    while pending:
        payload = "".join(
            json.dumps({"key": it.key, "benchmark": it.benchmark, "completion": it.completion, "row": it.row},
                       default=str) + "\n"
            for it in pending
        )
        cmd = [python, str(SCRIPTS / grader.script), *grader.args, "--item-timeout", f"{item_timeout:g}"]
        try:
            lines, code, stderr = _stream_script(
                cmd, payload, startup_timeout + next_line_s, next_line_s, deadline,
                on_line=None if on_item is None else lambda line: None if '"__meta__"' in line else on_item())
        except queue.Empty as exc:
            raise RunError(f"{grader.name} grader timed out after {timeout} s") from exc
        started = False
        for line in lines:
            if not line.strip().startswith("{"):
                continue  # a library printing to stdout
            try:
                out = json.loads(line)
            except ValueError:
                continue  # a line cut off when the script ended
            if out.get("key") == "__meta__":
                meta, started = out, True
            elif out.get("key") in by_key:
                by_key[out["key"]].verdicts[grader.name] = Verdict(out.get("correct"), out.get("extracted"),
                                                                    out.get("error"))
        left = [it for it in pending if grader.name not in it.verdicts]
        if code is None:  # killed: the first item without a verdict was in flight
            if not started:
                raise RunError(f"{grader.name} grader did not start within {startup_timeout + next_line_s:g} s")
            if left:
                left[0].verdicts[grader.name] = Verdict(
                    None, None, f"timeout: the item ran past its {item_timeout:g} s budget (r1h killed the grader)")
                left = left[1:]
        elif code == HARD_EXIT:
            if len(left) >= len(pending):
                raise RunError(f"{grader.name} grader ended itself without grading an item (exit {HARD_EXIT})")
        elif code != 0:
            last = [ln for ln in stderr.splitlines() if ln.strip()]
            raise RunError(f"{grader.name} grader failed (exit {code}): {last[-1] if last else ''}")
        else:
            break
        restarts += 1
        if log is not None:
            how = "killed" if code is None else f"exit {code}"
            log(f"{grader.name} grader: one sample past its {item_timeout:g} s budget ({how}); restarting on the "
                f"{len(left)} samples left")
        pending = left
    for it in items:
        it.verdicts.setdefault(grader.name, Verdict(None, None, "no answer from the grader"))
    meta["restarts"] = restarts
    return meta
