"""CPU thread defaults for torch generation on a machine that other work shares.

torch starts one intra-op thread per physical core. Generation of a small model is a long run of tiny matmuls, each
ending in an OpenMP barrier; when another process holds one of the cores, every barrier waits for the descheduled
thread, and the whole run slows down many times over. Measured on the 2-core box this project runs on (README main
job, ``perf/main_job.py``): torch's default 2 threads was 1.85-6x slower than ``threads=1`` while other work ran.

The rule (:func:`default_threads`): the CPUs this process may run on (``sched_getaffinity``, which honours taskset,
cgroups' cpusets and SLURM's binding), minus one left for the grader pool, the tokenizer and everything else, capped by
torch's own default (physical cores), and at least 1. So 1 thread on a 1- or 2-core box, 7 on an 8-core one, torch's
default on a big server. ``--backend-arg threads=N`` overrides it. Inter-op threads (used only by graph-level
parallelism that eager generation never does) are set to 1 where torch still allows it.
"""

from __future__ import annotations

import os


def available_cpus() -> int:
    """The CPUs this process may run on (affinity-aware), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def default_threads(cpus: int | None = None, torch_default: int | None = None) -> int:
    """Intra-op threads for generation: ``available CPUs - 1``, capped by torch's default, at least 1."""
    cpus = available_cpus() if cpus is None else max(1, int(cpus))
    wanted = max(1, cpus - 1)
    if torch_default is not None and torch_default >= 1:
        wanted = min(wanted, int(torch_default))
    return wanted


def apply_threads(threads: int | None) -> dict[str, object]:
    """Set torch's intra-op threads (``threads`` or :func:`default_threads`) and, where still possible, 1 inter-op
    thread. Returns what was set and why, for ``describe()``."""
    import torch

    chosen = int(threads) if threads else default_threads(torch_default=torch.get_num_threads())
    torch.set_num_threads(chosen)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # torch allows it only before the first inter-op work; then it keeps its own
        pass
    return {
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "threads_source": "--backend-arg threads" if threads else f"default: {available_cpus()} CPUs available - 1",
    }
