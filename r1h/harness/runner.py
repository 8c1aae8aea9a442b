"""``r1h eval``: resolve -> generate (in chunks) -> grade -> append -> aggregate -> write results, report and plot.

Every chunk of generations is graded and appended to ``samples/NAME.jsonl`` before the next one starts, so a run can be
killed at any moment and resumed with the same command: only the missing ``(id, sample_index)`` pairs are generated.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError, FlagError, RunError
from .metrics import aggregate, is_correct
from .naming import model_slug
from .resolve import load_all
from .reward import Reward
from .store import RunStore, SampleFile
from .types import GenerationConfig, Sample, sample_seed

SUITES: dict[str, tuple[str, ...]] = {
    "all": ("aime24", "math500", "gpqa_diamond", "countdown", "superclevr_counting"),
}
R1_DEFAULTS = {"temperature": 0.6, "top_p": 0.95, "max_tokens": 32768}
DEFAULT_BATCH_SIZE = 32


@dataclass
class EvalOptions:
    """What ``r1h eval`` was asked. ``None`` sampling fields mean: the benchmark's protocol value."""

    model: str | None = None
    bench: str = "all"
    backend: str = "transformers"
    backend_args: dict[str, str] = field(default_factory=dict)
    data: dict[str, str] = field(default_factory=dict)
    limit: int | None = None
    n: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int = 0
    greedy: bool = False
    output: str | None = None
    budget: float | None = None
    batch_size: int = DEFAULT_BATCH_SIZE
    progress: bool = True

    def validate(self) -> None:
        """One-line ConfigErrors naming the flag."""
        checks = [
            ("--limit", self.limit, lambda v: v >= 1, "must be >= 1"),
            ("-n", self.n, lambda v: v >= 1, "must be >= 1"),
            ("--temperature", self.temperature, lambda v: v >= 0, "must be >= 0"),
            ("--top-p", self.top_p, lambda v: 0 < v <= 1, "must be in (0, 1]"),
            ("--max-tokens", self.max_tokens, lambda v: v >= 1, "must be >= 1"),
            ("--budget", self.budget, lambda v: v > 0, "must be > 0 seconds"),
            ("--batch-size", self.batch_size, lambda v: v >= 1, "must be >= 1"),
        ]
        for flag, value, ok, why in checks:
            if value is not None and not ok(value):
                raise FlagError(f"{flag} {value}: {why}")
        if self.greedy and self.n not in (None, 1):
            raise FlagError(f"--greedy means n=1 and temperature 0; it conflicts with -n {self.n}")
        if self.greedy and self.temperature not in (None, 0, 0.0):
            raise FlagError(f"--greedy means temperature 0; it conflicts with --temperature {self.temperature}")


@dataclass
class BenchPlan:
    """One benchmark of a run: the plugin, its data, its reward and its sampling settings."""

    name: str
    benchmark: Any
    reward: Reward
    source: str | None
    generation: GenerationConfig
    samples: list[Sample] = field(default_factory=list)

    def fingerprint(self) -> dict[str, Any]:
        return {
            "version": str(self.benchmark.version),
            "reward": self.reward.__name__,
            "reward_version": str(getattr(self.reward, "version", "")),
            "source": self.source,
            "generation": self.generation.to_dict(),
        }


def resolve_benchmark_names(spec: str) -> list[str]:
    """``all`` / comma lists -> benchmark names in order, without duplicates."""
    names: list[str] = []
    for part in (p.strip() for p in (spec or "").split(",")):
        if not part:
            continue
        for name in SUITES.get(part, (part,)):
            if name not in names:
                names.append(name)
    if not names:
        raise ConfigError(f"--bench {spec!r}: no benchmark named (use 'all' or a comma list)")
    return names


def generation_config(benchmark: Any, opts: EvalOptions) -> GenerationConfig:
    """R1 defaults, then the benchmark's protocol overrides, then the user's flags."""
    values: dict[str, Any] = dict(R1_DEFAULTS, n=int(getattr(benchmark, "default_samples", 1) or 1), seed=opts.seed)
    known = {f.name for f in dataclasses.fields(GenerationConfig)}
    for key, value in (getattr(benchmark, "generation_overrides", None) or {}).items():
        if key not in known:
            raise ConfigError(f"benchmark {benchmark.name!r}: unknown generation override {key!r}")
        values[key] = value
    user = {"n": opts.n, "temperature": opts.temperature, "top_p": opts.top_p, "max_tokens": opts.max_tokens}
    values.update({k: v for k, v in user.items() if v is not None})
    if opts.greedy:
        values.update(n=1, temperature=0.0)
    values["stop"] = list(values.get("stop") or [])
    return GenerationConfig(**values)


def plan_benchmarks(opts: EvalOptions) -> list[BenchPlan]:
    import r1h

    from .plugins import get_plugins

    plugins = get_plugins()
    names = resolve_benchmark_names(opts.bench)
    canonical = [plugins.benchmarks.entry(n).name for n in names]
    for key in opts.data:
        if key not in names and key not in canonical:
            raise ConfigError(f"--data {key}=...: {key!r} is not among the benchmarks run ({', '.join(canonical)})")
    plans, sources = [], {}
    for given, name in zip(names, canonical, strict=True):
        if any(p.name == name for p in plans):
            continue
        benchmark = r1h.get_benchmark(name)
        source = sources[name] = opts.data.get(given, opts.data.get(name))
        reward = r1h.get_reward(benchmark.reward)
        if opts.budget is not None:
            reward.budget = float(opts.budget)
        source_label = source if source is not None else (benchmark.default_source or "builtin")
        plans.append(BenchPlan(name, benchmark, reward, source_label, generation_config(benchmark, opts)))
    # every benchmark's data before any backend or model, every failure in one error (resolve.py)
    loaded = load_all([(p.name, partial(_load, p.benchmark, p.name, sources[p.name], opts.limit)) for p in plans])
    for plan in plans:
        plan.samples = loaded[plan.name]
    return plans


def _load(benchmark: Any, name: str, source: str | None, limit: int | None) -> list[Sample]:
    samples = benchmark.load(source, limit=limit) if source is not None else benchmark.load(limit=limit)
    samples = list(samples)[:limit] if limit else list(samples)
    seen: set[str] = set()
    for s in samples:
        if s.id in seen:
            raise DataError(f"benchmark {name!r} ({source or benchmark.default_source}): duplicate problem id {s.id!r}")
        seen.add(s.id)
    if not samples:
        raise DataError(f"benchmark {name!r} ({source or benchmark.default_source}): no problems loaded")
    return samples


def run_config(opts: EvalOptions, plans: list[BenchPlan]) -> dict[str, Any]:
    """The fingerprint stored in run.json: resuming with a different one is refused."""
    return {
        "model": opts.model,
        "backend": opts.backend,
        "backend_args": dict(sorted(opts.backend_args.items())),
        "limit": opts.limit,
        "benchmarks": {p.name: p.fingerprint() for p in plans},
    }


def missing_pairs(plan: BenchPlan, stored: SampleFile) -> list[tuple[Sample, list[int]]]:
    """Per problem, the sample indices not on disk yet."""
    out = []
    for sample in plan.samples:
        wanted = [i for i in range(plan.generation.n) if (sample.id, i) not in stored.keys]
        if wanted:
            out.append((sample, wanted))
    return out


def chunked(pending: list[tuple[Sample, list[int]]], size: int):
    """Chunks of about ``size`` samples; a problem with more missing samples than ``size`` is split."""
    chunk: list[tuple[Sample, list[int]]] = []
    count = 0
    for sample, indices in pending:
        for start in range(0, len(indices), size):
            part = indices[start : start + size]
            if count and count + len(part) > size:
                yield chunk
                chunk, count = [], 0
            chunk.append((sample, part))
            count += len(part)
    if chunk:
        yield chunk


def generate_and_grade(plan: BenchPlan, backend: Any, chunk, budget: float | None) -> list[dict[str, Any]]:
    """Generate one chunk, grade it in bulk, return the sample records to append."""
    from .grading import grade

    bench, config = plan.benchmark, plan.generation
    requests = []
    for sample, indices in chunk:
        request = bench.request(sample, indices, [sample_seed(config.seed, sample.id, i) for i in indices])
        if getattr(backend, "needs_reference", False):
            request.reference = bench.reference_completion(sample)
        requests.append(request)
    outputs = backend.generate(requests, config)
    if len(outputs) != len(requests):
        raise RunError(f"backend {backend.name!r} returned {len(outputs)} results for {len(requests)} requests")
    texts, prompts, rows, meta = [], [], [], []
    for (sample, indices), request, completions in zip(chunk, requests, outputs, strict=True):
        if len(completions) != len(indices):
            raise RunError(
                f"backend {backend.name!r} returned {len(completions)} completions for {len(indices)} "
                f"wanted samples of problem {sample.id!r}"
            )
        for index, seed, completion in zip(indices, request.seeds, completions, strict=True):
            texts.append(completion.text)
            prompts.append(request.messages)
            rows.append(dict(sample.columns))
            meta.append((sample.id, index, seed, request.messages, completion))
    grades = grade(plan.reward, texts, prompts=prompts, rows=rows, budget=budget)
    if len(grades) != len(texts):
        raise RunError(f"grading returned {len(grades)} verdicts for {len(texts)} completions")
    records = []
    for (pid, index, seed, messages, completion), verdict in zip(meta, grades, strict=True):
        records.append({
            "id": pid,
            "sample_index": index,
            "prompt": messages,
            "completion": completion.text,
            "extracted": verdict.extracted,
            "reward": verdict.score,
            "correct": is_correct(verdict.score),
            "finish_reason": completion.finish_reason,
            "num_tokens": int(completion.num_tokens or 0),
            "timed_out": bool(verdict.timed_out),
            "seed": seed,
            **({"error": verdict.error} if verdict.error else {}),
        })
    return records


def benchmark_metrics(plan: BenchPlan, stored: SampleFile, seed: int = 0) -> dict[str, Any]:
    ids = {s.id for s in plan.samples}
    records = [r for r in stored.records if str(r["id"]) in ids and 0 <= int(r["sample_index"]) < plan.generation.n]
    reward = plan.reward
    cheap_equivalence = not reward.isolate and type(reward).equivalent is not Reward.equivalent
    metrics = aggregate(records, equivalent=reward.equivalent if cheap_equivalence else None, seed=seed)
    metrics.update(
        version=str(plan.benchmark.version), reward=reward.__name__, source=plan.source,
        complete=metrics["total_samples"] == len(plan.samples) * plan.generation.n,
    )
    return metrics


def default_output(model_id: str) -> Path:
    return Path("runs") / model_slug(model_id) / datetime.now().strftime("%Y%m%d-%H%M%S")


def run_eval(opts: EvalOptions, console: Any = None) -> dict[str, Any]:
    """Run (or resume) an evaluation and return results.json's content."""
    import r1h

    from . import report
    from .stack import collect as collect_stack

    opts.validate()
    plans = plan_benchmarks(opts)
    backend = r1h.get_backend(opts.backend, model=opts.model, **opts.backend_args)
    try:
        model_id = str(getattr(backend, "model_id", None) or opts.model or "default")
        out = Path(opts.output) if opts.output else default_output(model_id)
        store = RunStore(out)
        config = run_config(opts, plans)
        resumed = store.open(config)
        display = report.Display(console, enabled=opts.progress)
        display.note(f"{'resuming' if resumed else 'writing'} {out}")
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
        results["stack"] = collect_stack()  # versions, builds, accelerators (no new imports): r1h compare reads it
        for plan in plans:
            stored = store.samples(plan.name)
            if stored.report.torn_bytes or stored.report.duplicates:
                display.note(
                    f"{plan.name}: dropped a torn last line ({stored.report.torn_bytes} bytes) and "
                    f"{stored.report.duplicates} duplicate line(s) from {stored.path}"
                )
            pending = missing_pairs(plan, stored)
            total = len(plan.samples) * plan.generation.n
            with display.benchmark(plan.name, plan.samples, plan.generation.n, stored) as bar:
                for chunk in chunked(pending, opts.batch_size):
                    records = generate_and_grade(plan, backend, chunk, opts.budget)
                    stored.append(records)
                    bar.advance(records)
            results["benchmarks"][plan.name] = benchmark_metrics(plan, stored, seed=opts.seed)
            stored_total = results["benchmarks"][plan.name]["total_samples"]
            if stored_total != total:
                raise RunError(f"{plan.name}: {stored_total} of {total} samples stored in {stored.path}")
            store.write_results(results)
        report.write_report(store, results, console=display.console)
        display.table(results)
        return results
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()
