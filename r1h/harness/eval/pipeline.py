"""The eval pipeline: one benchmark as one stream, lazy requests -> backend -> bounded queue -> grader thread ->
samples file. (The run around it: :mod:`r1h.harness.eval.runner`; ``r1h distill generate`` runs on it too.)

- The requests for every pending ``(problem, sample indices)`` are built lazily and handed to the backend at once
  (:func:`~r1h.harness.core.backend.backend_stream`); the backend pulls them as fast as its own in-flight window allows.
- The backend runs in the calling (main) thread and yields each finished sample in any order. Each one goes into a
  bounded queue; a grading thread takes whatever is queued (up to ``MICRO_BATCH``), grades it through
  :func:`r1h.harness.grading.pool.grade` (the worker pool for isolated rewards) and appends the records with one write and
  an fsync. So CPU grading overlaps generation, and a slow reward only delays writing until the queue is full.
- Memory: the queue holds at most ``QUEUE_SIZE`` finished samples; nothing else keeps completion texts.
- A backend error drains the queue (everything generated is graded and written) and re-raises. An interrupt
  (Ctrl-C, SIGTERM) stops pulling requests, lets the grader finish its current micro-batch and re-raises.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from r1h.harness.core.backend import backend_stream
from r1h.harness.core.errors import RunError
from r1h.harness.core.types import Generated, GenerationRequest, Sample, sample_seed
from r1h.harness.eval.budget import budget_stream, record_fields
from r1h.harness.eval.metrics import is_correct
from r1h.harness.eval.thinking import measure

QUEUE_SIZE = 4096  # finished samples waiting to be graded; the backend blocks only when this many are waiting
MICRO_BATCH = 64  # most samples graded and written together
_DONE = object()
JOIN_TIMEOUT_S = 600.0


def build_requests(plan: Any, pending: list[tuple[Sample, list[int]]], needs_reference: bool,
                   stop: threading.Event) -> Iterator[GenerationRequest]:
    """One request per pending problem, built only when the backend asks for it."""
    bench, seed = plan.benchmark, plan.generation.seed
    for sample, indices in pending:
        if stop.is_set():
            return
        request = bench.request(sample, indices, [sample_seed(seed, sample.id, i) for i in indices])
        if needs_reference:
            request.reference = bench.reference_completion(sample)
        yield request


def make_record(g: Generated, verdict: Any) -> dict[str, Any]:
    completion = g.completion
    return {
        "id": g.request.id,
        "sample_index": g.sample_index,
        "prompt": g.request.messages,
        "completion": completion.text,
        "extracted": verdict.extracted,
        "reward": verdict.score,
        "correct": is_correct(verdict.score),
        "finish_reason": completion.finish_reason,
        "num_tokens": int(completion.num_tokens or 0),
        **measure(completion.text, g.request.messages, int(completion.num_tokens or 0)),
        **record_fields(completion),
        "timed_out": bool(verdict.timed_out),
        "seed": g.seed,
        **({"error": verdict.error} if verdict.error else {}),
    }


class _Grader(threading.Thread):
    """Grades micro-batches from the queue and appends them; the only writer of the samples file."""

    def __init__(self, plan: Any, sink: Any, q: queue.Queue, budget: float | None, columns: dict[str, dict],
                 on_written: Callable[[list[dict[str, Any]]], Any] | None, batch: int,
                 records: Callable[[list[Generated]], list[dict[str, Any]]] | None = None):
        super().__init__(name=f"r1h-grader-{plan.name}", daemon=True)
        self.plan, self.sink, self.q, self.budget, self.columns = plan, sink, q, budget, columns
        self.on_written, self.batch = on_written, batch
        self.records = records or self._graded
        self.abort = threading.Event()
        self.error: BaseException | None = None
        self.written = 0

    def run(self) -> None:
        try:
            done = False
            while not done and not self.abort.is_set():
                item = self.q.get()
                if item is _DONE:
                    break
                batch = [item]
                while len(batch) < self.batch:
                    try:
                        item = self.q.get_nowait()
                    except queue.Empty:
                        break
                    if item is _DONE:
                        done = True
                        break
                    batch.append(item)
                self._grade_and_write(batch)
        except BaseException as exc:  # handed to the main thread, which raises it
            self.error = exc

    def _graded(self, batch: list[Generated]) -> list[dict[str, Any]]:
        """The eval records: each sample graded by the plan's reward (the worker pool for isolated rewards)."""
        from r1h.harness.grading.pool import grade

        verdicts = grade(self.plan.reward, [g.completion.text for g in batch],
                         prompts=[g.request.messages for g in batch],
                         rows=[dict(self.columns[g.request.id]) for g in batch], budget=self.budget)
        if len(verdicts) != len(batch):
            raise RunError(f"grading returned {len(verdicts)} verdicts for {len(batch)} completions")
        return [make_record(g, v) for g, v in zip(batch, verdicts, strict=True)]

    def _grade_and_write(self, batch: list[Generated]) -> None:
        records = self.records(batch)
        self.written += self.sink.append(records)
        if self.on_written is not None:
            try:
                self.on_written(records)
            except Exception:  # a progress display must never stop a run
                pass


def stream_benchmark(plan: Any, backend: Any, sink: Any, pending: list[tuple[Sample, list[int]]], *,
                     budget: float | None = None, on_written: Callable[[list[dict[str, Any]]], Any] | None = None,
                     queue_size: int = QUEUE_SIZE, batch: int = MICRO_BATCH,
                     records: Callable[[list[Generated]], list[dict[str, Any]]] | None = None) -> int:
    """Generate, grade and store every pending sample of one benchmark. Returns how many records were written.

    ``records`` turns a micro-batch of finished samples into the lines to append, in the grading thread (default:
    graded by ``plan.reward``; ``r1h distill generate`` writes its traces ungraded)."""
    if not pending:
        return 0
    name = getattr(backend, "name", type(backend).__name__)
    columns = {sample.id: sample.columns for sample, _ in pending}
    wanted = sum(len(indices) for _, indices in pending)
    q: queue.Queue = queue.Queue(maxsize=max(1, queue_size))
    grader = _Grader(plan, sink, q, budget, columns, on_written, batch, records)
    stop = threading.Event()
    grader.start()
    received: set[tuple[str, int]] = set()
    requests = build_requests(plan, pending, bool(getattr(backend, "needs_reference", False)), stop)
    thinking = getattr(plan, "thinking", None)
    stream = (budget_stream(backend, requests, plan.generation, thinking) if thinking is not None
              else backend_stream(backend, requests, plan.generation))
    try:
        with contextlib.closing(stream) if hasattr(stream, "close") else contextlib.nullcontext():
            for g in stream:
                key = (str(g.request.id), int(g.sample_index))
                if g.request.id not in columns or g.sample_index not in g.request.sample_indices:
                    raise RunError(f"backend {name!r} yielded sample {g.sample_index} of problem {g.request.id!r}, "
                                   "which was not asked for")
                if key in received:
                    continue  # a backend that yields a sample twice: the first one counts
                received.add(key)
                _put(q, g, grader)
        _finish(q, grader)  # the backend is done: the grader drains the queue
    except BaseException as exc:
        stop.set()
        if isinstance(exc, KeyboardInterrupt):
            grader.abort.set()  # finish the micro-batch being graded, drop the rest (in flight)
        _finish(q, grader)
        if grader.error is not None and grader.error is not exc and not isinstance(exc, KeyboardInterrupt):
            raise grader.error from exc
        raise
    if grader.error is not None:
        raise grader.error
    if len(received) != wanted:
        raise RunError(f"backend {name!r} yielded {len(received)} of the {wanted} samples asked for {plan.name}")
    return grader.written


def _put(q: queue.Queue, item: Any, grader: _Grader) -> None:
    while True:
        if grader.error is not None:
            raise grader.error
        if not grader.is_alive():
            raise RunError("the grading thread stopped unexpectedly")
        try:
            q.put(item, timeout=0.2)
            return
        except queue.Full:
            continue


def _finish(q: queue.Queue, grader: _Grader) -> None:
    """Tell the grader no more samples come, and wait for it (it drains the queue unless aborted)."""
    while grader.is_alive():
        try:
            q.put(_DONE, timeout=0.2)
            break
        except queue.Full:
            continue
    grader.join(JOIN_TIMEOUT_S)
