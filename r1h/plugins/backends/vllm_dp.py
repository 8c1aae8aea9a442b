"""Data parallel offline vLLM: N engine processes, one per GPU group, fed from one parent that writes.

``vllm.LLM`` refuses ``data_parallel_size > 1`` in one process (vllm/entrypoints/llm.py); vLLM's offline recipe is
one process per rank (examples/offline_inference/data_parallel.py, which sets each rank's device variables before
importing vLLM). We start ``data_parallel_size`` independent engines with ``multiprocessing`` (spawn: CUDA cannot be
forked), each seeing only its ``tensor_parallel_size x pipeline_parallel_size`` devices through the device
variable:

- NVIDIA CUDA: ``CUDA_VISIBLE_DEVICES`` (the default);
- MetaX MACA (the guide's C500): ``MACA_VISIBLE_DEVICES``, when it is set or MACA is found (``$MACA_PATH`` or
  /opt/maca). MetaX tooling selects cards with it (e.g. FlagCX's and Ray-on-MetaX's launchers, which note that
  MetaX's runtime reads ``MACA_VISIBLE_DEVICES``); we could not run a C500 here, so check a rank's cards with
  ``mx-smi`` and pass ``device_env=CUDA_VISIBLE_DEVICES`` if your build reads that instead;
- AMD ROCm: ``HIP_VISIBLE_DEVICES`` when it (or ``ROCR_VISIBLE_DEVICES``) is set in the environment;
- Huawei Ascend (vllm-ascend): ``ASCEND_RT_VISIBLE_DEVICES`` when set;
- any other: ``--backend-arg device_env=NAME``.

The devices split are the parent's visible list (that variable, or 0..N-1). Independent engines suit dense models;
MoE expert parallelism across ranks (vLLM's ``VLLM_DP_*`` variables) is not set up here.

Work stealing: the parent keeps up to ``window`` requests in flight on each rank and hands the next request to the
rank with the fewest in flight, so a rank that drew short completions gets more. Each finished sample comes back on
one result queue and the parent yields it. A rank that dies is a one-line :class:`RunError` naming the rank and its
exit code; samples yielded before stay yielded (the runner has stored them), the ones in flight are lost and a resumed
run regenerates them. ``multiprocessing`` queues pickle only our own messages between our own processes.
"""

from __future__ import annotations

import os
import queue
import time
from collections.abc import Iterator
from typing import Any

from r1h.harness.errors import ConfigError, RunError

from .vllm_engine import EngineStream, WorkItem, engine_window, output_fields

VENDOR_ENVS = ("ASCEND_RT_VISIBLE_DEVICES", "HIP_VISIBLE_DEVICES", "ROCR_VISIBLE_DEVICES", "MACA_VISIBLE_DEVICES")
POLL_S = 0.25


def device_env_name(explicit: str | None = None, environ: dict[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    if explicit:
        return explicit
    for name in VENDOR_ENVS:
        if environ.get(name):
            return "HIP_VISIBLE_DEVICES" if name == "ROCR_VISIBLE_DEVICES" else name
    if environ.get("MACA_PATH") or (environ is os.environ and os.path.isdir("/opt/maca")):
        return "MACA_VISIBLE_DEVICES"
    return "CUDA_VISIBLE_DEVICES"


def device_groups(ranks: int, per_rank: int, env_name: str, environ: dict[str, str] | None = None) -> list[str]:
    """The device list each rank sees, split from the parent's visible devices."""
    environ = os.environ if environ is None else environ
    raw = environ.get(env_name) or (environ.get("ROCR_VISIBLE_DEVICES") if env_name == "HIP_VISIBLE_DEVICES" else "")
    visible = [d.strip() for d in raw.split(",") if d.strip()] if raw else [str(i) for i in range(ranks * per_rank)]
    if len(visible) < ranks * per_rank:
        raise ConfigError(
            f"--backend-arg data_parallel_size={ranks} with {per_rank} device(s) per rank needs {ranks * per_rank} "
            f"devices, but {env_name}={raw} lists {len(visible)}"
        )
    return [",".join(visible[r * per_rank:(r + 1) * per_rank]) for r in range(ranks)]


def worker_main(rank: int, env_name: str, devices: str, llm_kwargs: dict[str, Any], window: int | None,
                tasks: Any, results: Any) -> None:
    """A data-parallel rank: one engine, fed from ``tasks``, finished samples to ``results``."""
    os.environ[env_name] = devices  # before vLLM (and the device runtime) is imported
    try:
        import vllm

        llm = vllm.LLM(**llm_kwargs)
        stream = EngineStream(llm, vllm, window or engine_window(llm))
        results.put(("ready", rank, stream.window))
        cancelled = -1

        def pull(block: bool) -> WorkItem | None:
            nonlocal cancelled
            while True:
                try:
                    msg = tasks.get() if block else tasks.get_nowait()
                except queue.Empty:
                    return None
                if msg[0] == "stop":
                    raise StopIteration
                if msg[0] == "cancel":
                    cancelled = max(cancelled, msg[1])
                    continue
                _, epoch, item = msg
                if epoch > cancelled:
                    return item

        for key, output in stream.run(pull):
            results.put(("done", rank, (key, *output_fields(output))))
    except BaseException as exc:  # noqa: BLE001 - reported to the parent as one line
        results.put(("error", rank, f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"))
        raise SystemExit(1) from None


class DataParallelPool:
    """The parent side: starts the ranks once (reused across streams), spreads requests, collects results."""

    def __init__(self, llm_kwargs: dict[str, Any], ranks: int, per_rank: int, env_name: str, window: int | None):
        import multiprocessing

        self.ranks = ranks
        self.window = window
        self.env_name = env_name
        self.groups = device_groups(ranks, per_rank, env_name)
        ctx = multiprocessing.get_context("spawn")
        self.results = ctx.Queue()
        self.tasks = [ctx.Queue() for _ in range(ranks)]
        self.procs = []
        self.epoch = 0
        self.limits = [window or 512] * ranks  # until each rank reports its engine's window
        for rank in range(ranks):
            proc = ctx.Process(
                target=worker_main, name=f"r1h-vllm-dp{rank}", daemon=True,
                args=(rank, env_name, self.groups[rank], llm_kwargs, window, self.tasks[rank], self.results),
            )
            proc.start()
            self.procs.append(proc)

    def _check_alive(self, in_flight: list[int]) -> None:
        for rank, proc in enumerate(self.procs):
            if not proc.is_alive():
                self._fail(rank, f"exited with code {proc.exitcode}", in_flight[rank])

    def _fail(self, rank: int, why: str, lost: int) -> None:
        self.close(force=True)
        raise RunError(
            f"vllm data-parallel rank {rank} ({self.env_name}={self.groups[rank]}) {why}; {lost} sample(s) in flight "
            f"on it were lost, the finished ones are kept (rerun the same command to resume)"
        )

    def stream(self, items: Iterator[WorkItem]) -> Iterator[tuple[Any, str, str, int]]:
        """Yield ``(key, text, finish_reason, tokens)`` per finished item."""
        self.epoch += 1
        epoch = self.epoch
        in_flight = [0] * self.ranks
        keys: dict[int, Any] = {}
        ids = 0
        exhausted = False
        checked = time.monotonic()
        try:
            while True:
                if time.monotonic() - checked > POLL_S:  # a dead rank never answers: look, even while others do
                    self._check_alive(in_flight)
                    checked = time.monotonic()
                while not exhausted:
                    rank = min(range(self.ranks), key=in_flight.__getitem__)
                    if in_flight[rank] >= self.limits[rank]:
                        break
                    item = next(items, None)
                    if item is None:
                        exhausted = True
                        break
                    keys[ids] = item.key
                    item.key = (epoch, ids)
                    ids += 1
                    self.tasks[rank].put(("task", epoch, item))
                    in_flight[rank] += 1
                if exhausted and not keys:
                    return
                try:
                    kind, rank, payload = self.results.get(timeout=POLL_S)
                except queue.Empty:
                    self._check_alive(in_flight)
                    continue
                if kind == "error":
                    self._fail(rank, f"failed: {payload}", in_flight[rank])
                if kind == "ready":
                    self.limits[rank] = int(payload)
                if kind != "done":
                    continue
                (got_epoch, got_id), text, reason, tokens = payload
                if got_epoch != epoch:
                    continue  # a result of a stream that was closed early
                in_flight[rank] -= 1
                yield keys.pop(got_id), text, reason, tokens
        finally:
            if keys and self.procs:  # closed early: the ranks drop what is queued for this stream
                for q in self.tasks:
                    q.put(("cancel", epoch))

    def close(self, force: bool = False) -> None:
        procs, self.procs = self.procs, []
        for q in self.tasks:
            try:
                q.put(("stop",))
            except (ValueError, OSError):
                pass
        for proc in procs:
            if force and proc.is_alive():
                proc.terminate()
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()
                proc.join(timeout=5)
