"""``r1h eval``: resolve -> stream (generate while grading and appending) -> aggregate -> write results, report, plot.

Each benchmark is one stream (:mod:`r1h.harness.eval.pipeline`): every pending ``(problem, sample)`` is handed to the
backend at once, each finished sample is graded in a concurrent thread and appended to ``samples/NAME.jsonl`` as soon
as it is graded, so a run can be killed at any moment and resumed with the same command: only the missing
``(id, sample_index)`` pairs are generated. ``--shard I/N`` runs a deterministic share (:mod:`r1h.harness.eval.shards`);
the run directory is locked (:mod:`r1h.harness.eval.lock`).
"""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import R1HError, RunError
from r1h.harness.core.naming import model_slug
from r1h.harness.core.reward import Reward
from r1h.harness.eval.budget import budget_summary
from r1h.harness.eval.metrics import aggregate
from r1h.harness.eval.plan import BenchPlan, EvalOptions, missing_pairs, plan_benchmarks, plans_from_config, run_config
from r1h.harness.eval.store import SAMPLE_SCHEMA, RunStore, SampleFile
from r1h.harness.eval.thinking import sample_lengths

__all__ = ["BenchPlan", "EvalOptions", "benchmark_metrics", "run_eval"]

_METRIC_FIELDS = ("id", "sample_index", "correct", "extracted", "finish_reason", "timed_out", "budget")


def benchmark_metrics(plan: BenchPlan, stored: SampleFile, seed: int = 0) -> dict[str, Any]:
    """Metrics from the samples file, re-read line by line; only the fields metrics need are kept in memory.

    Records are put in the benchmark's problem order (then sample index) first, so the results (the bootstrap CI
    draws problems in order) do not depend on the order in which a streaming backend finished the samples."""
    position = {s.id: i for i, s in enumerate(plan.samples)}
    records = [{**{k: r.get(k) for k in _METRIC_FIELDS}, **sample_lengths(r)} for r in stored.iter_records()
               if str(r["id"]) in position and 0 <= int(r["sample_index"]) < plan.generation.n]
    records.sort(key=lambda r: (position[str(r["id"])], int(r["sample_index"])))
    reward = plan.reward
    cheap_equivalence = not reward.isolate and type(reward).equivalent is not Reward.equivalent
    n = plan.generation.n
    metrics = aggregate(records, equivalent=reward.equivalent if cheap_equivalence else None, seed=seed, n=n,
                        max_tokens=plan.generation.max_tokens)
    missing = len(plan.samples) - metrics["n_problems"]  # problems with no sample at all
    metrics.update(
        version=str(plan.benchmark.version), reward=reward.__name__, source=plan.source,
        complete=metrics["total_samples"] == len(plan.samples) * n,
        short_problems=metrics["short_problems"] + missing,
        expected_samples=len(plan.samples) * n,
    )
    if plan.thinking is not None:
        metrics["thinking_budget"] = budget_summary(plan.thinking, records)
    return metrics


def default_output(model_id: str) -> Path:
    return Path("runs") / model_slug(model_id) / datetime.now().strftime("%Y%m%d-%H%M%S")


def _describe(backend: Any) -> dict[str, Any]:
    try:
        described = backend.describe() if callable(getattr(backend, "describe", None)) else {}
        return json.loads(json.dumps(described, default=str))
    except Exception as exc:  # a record, never a reason to lose the run
        return {"backend": getattr(backend, "name", ""), "describe_error": f"{type(exc).__name__}: {exc}"}


class _LazyBackend:
    """``--merge`` loads the model only if something is still missing."""

    def __init__(self, opts: EvalOptions, eager: bool, shared: Any = None):
        self.opts, self.backend, self.shared = opts, shared, shared is not None
        if eager:
            self.get()

    def get(self) -> Any:
        if self.backend is None:
            import r1h

            self.backend = r1h.get_backend(self.opts.backend, model=self.opts.model, **self.opts.backend_args)
        return self.backend

    def close(self) -> None:
        if self.shared:  # the caller's (a --thinking-budget sweep runs several evals on one backend)
            return
        close = getattr(self.backend, "close", None)
        if callable(close):
            close()


def run_eval(opts: EvalOptions, console: Any = None, backend: Any = None) -> dict[str, Any]:
    """Run (or resume, or merge) an evaluation and return results.json's content (a shard's summary for a shard).
    ``backend``: one already made for these options, left open (a sweep's); by default one is made and closed."""
    import r1h
    from r1h.harness.eval import report
    from r1h.harness.eval.lock import RunLock
    from r1h.harness.eval.pipeline import Terminated, sigterm_as_interrupt, stream_benchmark
    from r1h.harness.eval.progress import Display
    from r1h.harness.eval.shards import fold_shards, parse_shard, shard_files, shard_summaries
    from r1h.harness.system.stack import collect as collect_stack

    opts.validate()
    shard = parse_shard(opts.shard)
    if opts.merge:
        try:
            config = RunStore(opts.output).read_config()
        except RunError as exc:
            raise RunError(f"--merge: {exc}") from exc
        opts = dataclasses.replace(
            opts, model=config.get("model"), backend=config.get("backend") or opts.backend,
            backend_args=dict(config.get("backend_args") or {}), limit=config.get("limit"), budget=config.get("budget"))
        plans = plans_from_config(config)
    else:
        plans = plan_benchmarks(opts)
    # With --output the lock is taken before the model loads (a refused second run loads nothing); without it the
    # backend's model id names the default directory, so the backend comes first.
    holder = _LazyBackend(opts, eager=not opts.merge and not opts.output, shared=backend)
    display = None
    out_text = str(opts.output or "")
    store, created, opened = None, False, False  # opened: run.json is there (the run is kept, eval.log says why)
    try:
        model_id = str(getattr(holder.backend, "model_id", None) or opts.model or "default")
        out = Path(opts.output) if opts.output else default_output(model_id)
        out_text = str(out)
        store = RunStore(out)
        foreign = store.foreign_entries()
        if foreign and not opts.force:
            shown = ", ".join(foreign[:3]) + (", ..." if len(foreign) > 3 else "")
            raise RunError(f"{out} exists and is not an r1h run (no run.json; it holds {shown}); pass --force to "
                           "write the run into it (its report.md, results.json and passk.png are replaced) or choose "
                           "another --output")
        created = not out.exists()
        store.ensure_root()
        with RunLock(out, shard.label if shard else None) as lock, sigterm_as_interrupt():
            if not opts.merge:  # before run.json is written: a backend that fails to load leaves no run behind
                model_id = str(getattr(holder.get(), "model_id", None) or opts.model or "default")
            config = run_config(opts, plans)
            stack = collect_stack()  # versions, builds, accelerators (no new imports): r1h compare reads it
            resumed = store.open(config, record={"stack": stack})
            opened = True
            display = Display(console, enabled=opts.progress, log_path=store.log_path)
            if lock.warning:
                display.note(lock.warning)
            if foreign:
                display.note(f"--force: writing into {out}, which is not an r1h run; its report.md, results.json and "
                             "passk.png are replaced")
            display.note(f"{'resuming' if resumed else 'writing'} {out}" + (f" ({shard.label})" if shard else ""))
            if opts.merge:
                earlier = shard_summaries(store.root)
                model_id = str(next((s.get("model") for s in earlier if s.get("model")), None) or model_id)
                engine = next((s.get("engine") for s in earlier if s.get("engine")), None)
            else:
                engine = None
            results: dict[str, Any] = {
                "model": model_id,
                "config": config,
                "versions": {
                    "r1h": r1h.__version__,
                    "benchmarks": {p.name: str(p.benchmark.version) for p in plans},
                    "rewards": {p.reward.__name__: str(getattr(p.reward, "version", "")) for p in plans},
                },
                "benchmarks": {},
            }
            results["stack"] = stack
            results["complete"] = False  # until every benchmark has all its samples: a killed run stays unfinished
            results["pending"] = [p.name for p in plans]
            if shard is None:
                store.write_results(results)
            summary: dict[str, Any] = {}
            started = False
            for plan in plans:
                main = store.samples(plan.name, schema=SAMPLE_SCHEMA)
                _report_load(display, main)
                if shard is None:
                    added, notes = fold_shards(store, plan.name, main, SAMPLE_SCHEMA)
                    for note in notes:
                        display.note(note)
                    if added:
                        display.note(f"{plan.name}: merged {added} samples from the shard files")
                    sink, have = main, main.keys
                else:
                    sink = store.samples(plan.name, shard.suffix, SAMPLE_SCHEMA)
                    _report_load(display, sink)
                    have = set(main.keys) | sink.keys
                    for path in shard_files(store.root / "samples", plan.name):
                        if path != sink.path:
                            other = SampleFile(path, schema=SAMPLE_SCHEMA)
                            have |= {(str(r["id"]), int(r["sample_index"])) for r in other.iter_records()}
                pending = missing_pairs(plan, have, shard)
                owned = [(s.id, i) for s in plan.samples for i in range(plan.generation.n)
                         if shard is None or shard.owns(s.id, i)]
                done = sum(1 for key in owned if key in have)
                if pending and not started:
                    _start_backend(display, holder.get())  # before the bar: rates start when generation does
                    started = True
                with display.benchmark(plan.name + (f" [{shard.index}/{shard.count}]" if shard else ""),
                                       len(owned), done, sink.correct) as bar:
                    if pending:
                        stream_benchmark(plan, holder.get(), sink, pending, budget=opts.budget,
                                         on_written=bar.advance)
                if holder.backend is not None and engine is None:
                    engine = _describe(holder.backend)  # after the first benchmark: the engine is up
                    model_id = str(getattr(holder.backend, "model_id", None) or model_id)
                    results["model"] = model_id
                if shard is not None:
                    stored = sum(1 for key in owned if key in sink.keys or key in have)
                    summary[plan.name] = {"owned": len(owned), "stored": stored}
                    continue
                metrics = results["benchmarks"][plan.name] = benchmark_metrics(plan, sink, seed=plan.generation.seed)
                results["engine"] = engine or {}
                if metrics["complete"]:
                    results["pending"].remove(plan.name)
                store.write_results(results)  # an incomplete benchmark is written as such, then the run stops
                if not metrics["complete"]:
                    raise RunError(f"{plan.name}: {metrics['total_samples']} of {metrics['expected_samples']} samples "
                                   f"stored in {sink.path}; the run is marked incomplete")
            if shard is not None:
                shard_summary = {"model": model_id, "shard": shard.label, "engine": engine or {},
                                 "config": config, "benchmarks": summary}
                store.write_json(store.root / f"results.{shard.label}.json", shard_summary)
                display.note(f"{shard.label} done; when every shard has finished: r1h eval --merge --output {out}")
                display.record(f"stopped: done ({shard.label})")
                return shard_summary
            results["engine"] = engine or {}
            results["complete"] = not results["pending"]
            store.write_results(results)
            try:
                report.write_report(store, results, console=display.console)
            except OSError as exc:
                from r1h.harness.eval.store import io_error

                raise io_error(store.root, exc, "cannot write the report") from exc
            display.record(f"stopped: done; results in {store.results_json}")
            display.close()
            display.table(results)
            return results
    except KeyboardInterrupt as exc:
        exc.output = out_text  # type: ignore[attr-defined]
        if display is not None:
            display.record(f"stopped: {'SIGTERM' if isinstance(exc, Terminated) else 'interrupt'}; the graded samples "
                           "are saved; rerun the same command to resume")
        raise
    except BaseException as exc:
        if display is not None:
            display.record(f"stopped: error: {exc}" if isinstance(exc, R1HError) else
                           f"stopped: error: {type(exc).__name__}: {exc}")
        if store is not None and not opened:  # stopped before run.json (a model that cannot load): no half-made run
            store.discard_unstarted(created)
        raise
    finally:
        if display is not None:
            display.close()
        holder.close()


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


def _report_load(display: Any, stored: SampleFile) -> None:
    report = stored.report
    if report.torn_bytes or report.duplicates:
        display.note(
            f"{stored.path.stem}: dropped a torn last line ({report.torn_bytes} bytes) and "
            f"{report.duplicates} duplicate line(s) from {stored.path}"
        )
    for message in report.bad:
        display.note(message)

