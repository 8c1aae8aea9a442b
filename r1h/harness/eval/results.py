"""The results of a run: results.json as the run goes, each benchmark's metrics, then report.md and the table.

results.json is written before the first benchmark (``complete: false``, every benchmark ``pending``) and again after
each benchmark, so a killed run stays marked unfinished. A benchmark that ends short of its samples is written as
such, then the run stops with a one-line error. A ``--shard`` run writes only ``results.shard-I-of-N.json`` (its
counts, model id and engine); ``r1h eval --merge`` takes the model id and engine from those.
"""

from __future__ import annotations

from typing import Any

from r1h.harness.core.errors import RunError
from r1h.harness.core.reward import Reward
from r1h.harness.eval.budget import budget_summary
from r1h.harness.eval.metrics import aggregate
from r1h.harness.eval.shards import shard_summaries
from r1h.harness.eval.store import SampleFile, io_error
from r1h.harness.eval.thinking import sample_lengths

_METRIC_FIELDS = ("id", "sample_index", "correct", "extracted", "finish_reason", "timed_out", "budget")


def benchmark_metrics(plan: Any, stored: SampleFile, seed: int = 0) -> dict[str, Any]:
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
    if getattr(plan, "thinking", None) is not None:  # --thinking-budget
        metrics["thinking_budget"] = budget_summary(plan.thinking, records)
    return metrics


class RunResults:
    """results.json of one run (or a shard's summary), built as the benchmarks finish."""

    def __init__(self, session: Any, run: Any):
        import r1h

        plans, config = run.plans, run.config
        self.session, self.store, self.shard = session, session.store, session.shard
        self.model_id, self.config, self.engine = session.model_id, config, None
        if run.opts.merge:  # the shards' model id and engine (the model may never load when nothing is missing)
            earlier = shard_summaries(self.store.root)
            self.model_id = str(next((s.get("model") for s in earlier if s.get("model")), None) or self.model_id)
            self.engine = next((s.get("engine") for s in earlier if s.get("engine")), None)
        self.results: dict[str, Any] = {
            "model": self.model_id,
            "config": config,
            "versions": {
                "r1h": r1h.__version__,
                "benchmarks": {p.name: str(p.benchmark.version) for p in plans},
                "rewards": {p.reward.__name__: str(getattr(p.reward, "version", "")) for p in plans},
            },
            "benchmarks": {},
        }
        self.results["stack"] = session.stack
        self.results["complete"] = False  # until every benchmark has all its samples: a killed run stays unfinished
        self.results["pending"] = [p.name for p in plans]
        self.summary: dict[str, Any] = {}  # a shard's counts per benchmark
        if self.shard is None:
            self.store.write_results(self.results)

    def add(self, plan: Any, state: Any, engine: dict[str, Any] | None = None) -> None:
        """One benchmark done (``state``: its :class:`~r1h.harness.eval.resume.BenchResume`; ``engine``: the
        backend's description, after the first benchmark that made one): a shard counts its pairs; a whole run
        writes the benchmark's metrics, and stops when the benchmark is short of samples."""
        if engine is not None and self.engine is None:
            self.engine = engine
            backend = self.session.backend.backend
            self.model_id = str(getattr(backend, "model_id", None) or self.model_id)
            self.results["model"] = self.model_id
        if self.shard is not None:
            self.summary[plan.name] = {"owned": len(state.owned), "stored": state.stored()}
            return
        metrics = self.results["benchmarks"][plan.name] = benchmark_metrics(plan, state.sink, seed=plan.generation.seed)
        self.results["engine"] = self.engine or {}
        if metrics["complete"]:
            self.results["pending"].remove(plan.name)
        self.store.write_results(self.results)  # an incomplete benchmark is written as such, then the run stops
        if not metrics["complete"]:
            raise RunError(f"{plan.name}: {metrics['total_samples']} of {metrics['expected_samples']} samples "
                           f"stored in {state.sink.path}; the run is marked incomplete")

    def finish(self) -> dict[str, Any]:
        """The shard summary, or results.json complete, report.md and the table on the console."""
        display = self.session.display
        if self.shard is not None:
            label = self.shard.label
            shard_summary = {"model": self.model_id, "shard": label, "engine": self.engine or {},
                             "config": self.config, "benchmarks": self.summary}
            self.store.write_json(self.store.root / f"results.{label}.json", shard_summary)
            display.note(f"{label} done; when every shard has finished: r1h eval --merge --output {self.store.root}")
            display.record(f"stopped: done ({label})")
            return shard_summary
        from r1h.harness.eval import report

        results = self.results
        results["engine"] = self.engine or {}
        results["complete"] = not results["pending"]
        self.store.write_results(results)
        try:
            report.write_report(self.store, results, console=display.console)
        except OSError as exc:
            raise io_error(self.store.root, exc, "cannot write the report") from exc
        display.record(f"stopped: done; results in {self.store.results_json}")
        display.close()
        display.table(results)
        return results
