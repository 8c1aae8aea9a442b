"""``r1h eval``, the application in layers: a session, a run per benchmark, then the results.

    run_eval(opts)
      plan_run            plan.py     options checked, benchmarks resolved, data loaded, run.json's fingerprint
                                      (--merge: all of it from the run's run.json)
      eval_session        session.py  the run directory: foreign-folder check, lock, SIGTERM, run.json, display,
                                      the backend (made lazily, closed at the end)
      per benchmark
        resume_benchmark  resume.py   what is stored (shard files folded in) and which pairs are missing
        run_benchmark     (here)      the backend started once, the bar, the stream (pipeline.py: generate ->
                                      grade -> append)
      RunResults          results.py  results.json after each benchmark, then report.md and the table

A run can be killed at any moment and resumed with the same command: only the missing ``(id, sample_index)`` pairs
are generated. ``--shard I/N`` runs a deterministic share (:mod:`r1h.harness.eval.shards`).
"""

from __future__ import annotations

import time
from typing import Any

from r1h.harness.core.backend import describe_backend
from r1h.harness.eval.plan import BenchPlan, EvalOptions, plan_run
from r1h.harness.eval.results import RunResults, benchmark_metrics
from r1h.harness.eval.resume import BenchResume, resume_benchmark
from r1h.harness.eval.session import RunSession, eval_session

__all__ = ["BenchPlan", "EvalOptions", "benchmark_metrics", "run_benchmark", "run_eval"]


def run_eval(opts: EvalOptions, console: Any = None, backend: Any = None) -> dict[str, Any]:
    """Run (or resume, or merge) an evaluation and return results.json's content (a shard's summary for a shard).
    ``backend``: one already made for these options, left open (a --thinking-budget sweep's); by default the session
    makes one and closes it."""
    run = plan_run(opts)
    with eval_session(run, console, backend=backend) as session:
        results = RunResults(session, run)
        for plan in run.plans:
            state = resume_benchmark(session.store, plan, run.shard, session.display.note)
            engine = run_benchmark(session, plan, state, budget=run.opts.budget)
            results.add(plan, state, engine)
        return results.finish()


def run_benchmark(session: RunSession, plan: BenchPlan, state: BenchResume, budget: float | None = None) -> Any:
    """Generate, grade and append the missing samples of one benchmark (the backend is started on the first
    benchmark with something missing). Returns the backend's description once, after the first benchmark that made a
    backend (the engine is up then), else None."""
    from r1h.harness.eval.pipeline import stream_benchmark

    shard, display, holder = session.shard, session.display, session.backend
    if state.pending and not holder.started:
        _start_backend(display, holder.get())  # before the bar: rates start when generation does
        holder.started = True
    label = plan.name + (f" [{shard.index}/{shard.count}]" if shard else "")
    with display.benchmark(label, len(state.owned), state.done, state.sink.correct) as bar:
        if state.pending:
            stream_benchmark(plan, holder.get(), state.sink, state.pending, budget=budget, on_written=bar.advance)
    if holder.backend is None or holder.described:
        return None
    holder.described = True
    return describe_backend(holder.backend)


def _start_backend(display: Any, backend: Any) -> None:
    """Load the model or start the engine, with a line before and after (a cold vLLM start takes minutes)."""
    load = getattr(backend, "load", None)
    if not callable(load):
        return
    if hasattr(backend, "note"):
        backend.note = display.note
    name = getattr(backend, "name", type(backend).__name__)
    display.note(f"loading the model ({name} backend) ...")
    start = time.monotonic()
    load()
    display.note(f"model ready in {time.monotonic() - start:.1f} s")
