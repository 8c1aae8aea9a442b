"""The batch grader's limits, in one place: the per-item time budget, the pool size and each worker's memory cap.

- Time: :func:`resolve_budget` (an explicit ``budget``, else the reward's own, else ``$R1H_GRADING_BUDGET``, else
  :data:`DEFAULT_BUDGET_S`). A fresh worker gets :func:`load_timeout` to unpickle and warm a reward up, never billed
  to an item.
- Workers: :func:`default_workers` (``$R1H_GRADING_WORKERS``, else every core).
- Memory: :func:`memory_limit_mb` (``$R1H_GRADING_MEMORY_MB``, default 4096, 0 = no cap), applied in each worker by
  :func:`limit_memory` (``RLIMIT_AS``).
"""

from __future__ import annotations

from typing import Any

from r1h.harness.core.errors import ConfigError
from r1h.harness.system import settings

DEFAULT_BUDGET_S = 2.0  # seconds per item, for a reward built without its own budget
LOAD_TIMEOUT_S = 60.0  # unpickling + warming up a reward in a fresh worker (imports), never counted against items
BUDGET_ENV = "R1H_GRADING_BUDGET"
WORKERS_ENV = "R1H_GRADING_WORKERS"
MEMORY_ENV = "R1H_GRADING_MEMORY_MB"
DEFAULT_MEMORY_MB = settings.default(MEMORY_ENV)


def resolve_budget(reward: Any, budget: float | None = None) -> float:
    """The per-item budget: ``budget`` if given, else the reward's own if it differs from the default, else
    ``$R1H_GRADING_BUDGET``, else 2 s."""
    if budget is None:
        own = getattr(reward, "budget", None)
        if own is not None and float(own) != DEFAULT_BUDGET_S:
            budget = float(own)
        else:
            budget = settings.get(BUDGET_ENV)
    budget = float(budget)
    if not budget > 0:
        raise ConfigError(f"grading budget must be a positive number of seconds, got {budget!r}")
    return budget


def load_timeout(budget: float) -> float:
    """How long a worker may take to load and warm a reward up whose items get ``budget`` seconds each."""
    return max(LOAD_TIMEOUT_S, 10 * budget)


def default_workers() -> int:
    """The pool size: ``$R1H_GRADING_WORKERS``, else every core."""
    return settings.get(WORKERS_ENV)


def memory_limit_mb() -> int:
    """The per-worker address-space cap in MB from ``$R1H_GRADING_MEMORY_MB`` (default 4096; 0 = no cap)."""
    return settings.get(MEMORY_ENV)


def limit_memory(mb: int) -> None:
    """Cap this process's address space at ``mb`` MB (a worker calls it on start; 0 = no cap). An item that hits the
    cap raises ``MemoryError`` in the reward, scores 0.0 and the worker is replaced."""
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
