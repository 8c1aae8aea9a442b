"""``r1h eval``: resolve -> stream (generate while grading and appending) -> aggregate -> write results, report, plot.

Each benchmark is one stream (:mod:`r1h.harness.pipeline`): every pending ``(problem, sample)`` is handed to the
backend at once, each finished sample is graded in a concurrent thread and appended to ``samples/NAME.jsonl`` as soon
as it is graded, so a run can be killed at any moment and resumed with the same command: only the missing
``(id, sample_index)`` pairs are generated. ``--shard I/N`` runs a deterministic share (:mod:`r1h.harness.shards`);
the run directory is locked (:mod:`r1h.harness.lock`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

from .errors import ConfigError, DataError, FlagError, RunError
from .metrics import aggregate
from .naming import model_slug
from .resolve import load_all
from .reward import Reward
from .store import SAMPLE_SCHEMA, RunStore, SampleFile
from .types import GenerationConfig, Sample

SUITES: dict[str, tuple[str, ...]] = {
    "all": ("aime24", "math500", "gpqa_diamond", "countdown", "superclevr_counting"),
}
R1_DEFAULTS = {"temperature": 0.6, "top_p": 0.95, "max_tokens": 32768}
POLICIES = ("neutral", "model")


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
    progress: bool = True
    generation_policy: str = "neutral"  # --generation-config neutral|model
    shard: str | None = None  # --shard I/N
    merge: bool = False  # --merge: settings from DIR/run.json, fold the shard files, generate what is missing

    def validate(self) -> None:
        """One-line ConfigErrors naming the flag."""
        checks = [
            ("--limit", self.limit, lambda v: v >= 1, "must be >= 1"),
            ("-n", self.n, lambda v: v >= 1, "must be >= 1"),
            ("--temperature", self.temperature, lambda v: v >= 0, "must be >= 0"),
            ("--top-p", self.top_p, lambda v: 0 < v <= 1, "must be in (0, 1]"),
            ("--max-tokens", self.max_tokens, lambda v: v >= 1, "must be >= 1"),
            ("--budget", self.budget, lambda v: v > 0, "must be > 0 seconds"),
        ]
        for flag, value, ok, why in checks:
            if value is not None and not ok(value):
                raise FlagError(f"{flag} {value}: {why}")
        if self.greedy and self.n not in (None, 1):
            raise FlagError(f"--greedy means n=1 and temperature 0; it conflicts with -n {self.n}")
        if self.greedy and self.temperature not in (None, 0, 0.0):
            raise FlagError(f"--greedy means temperature 0; it conflicts with --temperature {self.temperature}")
        if self.generation_policy not in POLICIES:
            raise FlagError(f"--generation-config {self.generation_policy!r}: expected one of {', '.join(POLICIES)}")
        if self.merge and self.shard is not None:
            raise FlagError("--merge folds every shard into the whole run; it conflicts with --shard")
        if self.merge and not self.output:
            raise FlagError("--merge needs --output DIR (the run directory the shards wrote)")


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
    values["policy"] = opts.generation_policy
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
    """The fingerprint stored in run.json: resuming with a different one is refused. The same for every shard."""
    return {
        "model": opts.model,
        "backend": opts.backend,
        "backend_args": dict(sorted(opts.backend_args.items())),
        "limit": opts.limit,
        "budget": opts.budget,
        "benchmarks": {p.name: p.fingerprint() for p in plans},
    }


def plans_from_config(config: dict[str, Any]) -> list[BenchPlan]:
    """``--merge``: the benchmarks of a run rebuilt from its run.json (same data, reward and sampling settings)."""
    import r1h

    plans = []
    for name, fp in (config.get("benchmarks") or {}).items():
        benchmark = r1h.get_benchmark(name)
        reward = r1h.get_reward(benchmark.reward)
        if config.get("budget") is not None:
            reward.budget = float(config["budget"])
        try:
            generation = GenerationConfig(**fp["generation"])
        except (KeyError, TypeError) as exc:
            raise RunError(f"run.json: benchmarks.{name}.generation is not a generation config ({exc})") from exc
        label = fp.get("source")
        source = None if label in (None, "builtin", benchmark.default_source) else label
        plan = BenchPlan(name, benchmark, reward, label, generation)
        plan.samples = _load(benchmark, name, source, config.get("limit"))
        plans.append(plan)
    return plans


def missing_pairs(plan: BenchPlan, stored: Any, shard: Any = None) -> list[tuple[Sample, list[int]]]:
    """Per problem, the sample indices not on disk yet (only those of ``shard`` when given)."""
    keys = getattr(stored, "keys", stored)  # a SampleFile or a set of keys
    out = []
    for sample in plan.samples:
        wanted = [i for i in range(plan.generation.n) if (sample.id, i) not in keys
                  and (shard is None or shard.owns(sample.id, i))]
        if wanted:
            out.append((sample, wanted))
    return out


_METRIC_FIELDS = ("id", "sample_index", "correct", "extracted", "finish_reason", "timed_out")


def benchmark_metrics(plan: BenchPlan, stored: SampleFile, seed: int = 0) -> dict[str, Any]:
    """Metrics from the samples file, re-read line by line; only the fields metrics need are kept in memory.

    Records are put in the benchmark's problem order (then sample index) first, so the results (the bootstrap CI
    draws problems in order) do not depend on the order in which a streaming backend finished the samples."""
    position = {s.id: i for i, s in enumerate(plan.samples)}
    records = [{k: r.get(k) for k in _METRIC_FIELDS} for r in stored.iter_records()
               if str(r["id"]) in position and 0 <= int(r["sample_index"]) < plan.generation.n]
    records.sort(key=lambda r: (position[str(r["id"])], int(r["sample_index"])))
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


def _describe(backend: Any) -> dict[str, Any]:
    try:
        described = backend.describe() if callable(getattr(backend, "describe", None)) else {}
        return json.loads(json.dumps(described, default=str))
    except Exception as exc:  # a record, never a reason to lose the run
        return {"backend": getattr(backend, "name", ""), "describe_error": f"{type(exc).__name__}: {exc}"}


class _LazyBackend:
    """``--merge`` loads the model only if something is still missing."""

    def __init__(self, opts: EvalOptions, eager: bool):
        self.opts, self.backend = opts, None
        if eager:
            self.get()

    def get(self) -> Any:
        if self.backend is None:
            import r1h

            self.backend = r1h.get_backend(self.opts.backend, model=self.opts.model, **self.opts.backend_args)
        return self.backend

    def close(self) -> None:
        close = getattr(self.backend, "close", None)
        if callable(close):
            close()


def run_eval(opts: EvalOptions, console: Any = None) -> dict[str, Any]:
    """Run (or resume, or merge) an evaluation and return results.json's content (a shard's summary for a shard)."""
    import r1h

    from . import report
    from .lock import RunLock
    from .pipeline import sigterm_as_interrupt, stream_benchmark
    from .progress import Display
    from .shards import fold_shards, parse_shard, shard_files, shard_summaries
    from .stack import collect as collect_stack

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
    holder = _LazyBackend(opts, eager=not opts.merge and not opts.output)
    display = None
    out_text = str(opts.output or "")
    try:
        model_id = str(getattr(holder.backend, "model_id", None) or opts.model or "default")
        out = Path(opts.output) if opts.output else default_output(model_id)
        out_text = str(out)
        store = RunStore(out)
        store.ensure_root()
        with RunLock(out, shard.label if shard else None) as lock, sigterm_as_interrupt():
            if not opts.merge:  # before run.json is written: a backend that fails to load leaves no run behind
                model_id = str(getattr(holder.get(), "model_id", None) or opts.model or "default")
            config = run_config(opts, plans)
            stack = collect_stack()  # versions, builds, accelerators (no new imports): r1h compare reads it
            resumed = store.open(config, record={"stack": stack})
            display = Display(console, enabled=opts.progress, log_path=store.log_path)
            if lock.warning:
                display.note(lock.warning)
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
            summary: dict[str, Any] = {}
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
                results["benchmarks"][plan.name] = benchmark_metrics(plan, sink, seed=plan.generation.seed)
                total = len(plan.samples) * plan.generation.n
                stored_total = results["benchmarks"][plan.name]["total_samples"]
                if stored_total != total:
                    raise RunError(f"{plan.name}: {stored_total} of {total} samples stored in {sink.path}")
                results["engine"] = engine or {}
                store.write_results(results)
            if shard is not None:
                shard_summary = {"model": model_id, "shard": shard.label, "engine": engine or {},
                                 "config": config, "benchmarks": summary}
                store.write_json(store.root / f"results.{shard.label}.json", shard_summary)
                display.note(f"{shard.label} done; when every shard has finished: r1h eval --merge --output {out}")
                return shard_summary
            results["engine"] = engine or {}
            store.write_results(results)
            try:
                report.write_report(store, results, console=display.console)
            except OSError as exc:
                from .store import io_error

                raise io_error(store.root, exc, "cannot write the report") from exc
            display.close()
            display.table(results)
            return results
    except KeyboardInterrupt as exc:
        exc.output = out_text  # type: ignore[attr-defined]
        raise
    finally:
        if display is not None:
            display.close()
        holder.close()


def _report_load(display: Any, stored: SampleFile) -> None:
    report = stored.report
    if report.torn_bytes or report.duplicates:
        display.note(
            f"{stored.path.stem}: dropped a torn last line ({report.torn_bytes} bytes) and "
            f"{report.duplicates} duplicate line(s) from {stored.path}"
        )
    for message in report.bad:
        display.note(message)

