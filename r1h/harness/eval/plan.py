"""What ``r1h eval`` runs: the options as given, and per benchmark its plugin, data, reward and sampling settings
(``BenchPlan``) and the run's fingerprint (run.json): what is run, before anything runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from r1h.harness.core.errors import ConfigError, DataError, FlagError, RunError
from r1h.harness.core.reward import Reward
from r1h.harness.core.sampling import POLICIES
from r1h.harness.core.types import GenerationConfig, Sample
from r1h.harness.data.resolve import load_all
from r1h.harness.eval.budget import DEFAULT_ANSWER_CAP, DEFAULT_CUE, ThinkingBudget

SUITES: dict[str, tuple[str, ...]] = {
    "all": ("aime24", "math500", "gpqa_diamond", "countdown", "superclevr_counting"),
}
R1_DEFAULTS = {"temperature": 0.6, "top_p": 0.95, "max_tokens": 32768}


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
    force: bool = False  # --force: write into an existing folder that is not an r1h run
    thinking_budget: int | None = None  # --thinking-budget B: s1 budget forcing (budget.py); a sweep runs one each
    answer_cap: int | None = None  # --answer-cap: tokens after a forced </think> (default budget.DEFAULT_ANSWER_CAP)
    answer_cue: str | None = None  # --answer-cue: the text after a forced </think> (default: the benchmark's)

    def validate(self) -> None:
        """One-line ConfigErrors naming the flag."""
        checks = [
            ("--limit", self.limit, lambda v: v >= 1, "must be >= 1"),
            ("-n", self.n, lambda v: v >= 1, "must be >= 1"),
            ("--temperature", self.temperature, lambda v: v >= 0, "must be >= 0"),
            ("--top-p", self.top_p, lambda v: 0 < v <= 1, "must be in (0, 1]"),
            ("--max-tokens", self.max_tokens, lambda v: v >= 1, "must be >= 1"),
            ("--budget", self.budget, lambda v: v > 0, "must be > 0 seconds"),
            ("--thinking-budget", self.thinking_budget, lambda v: v >= 1, "must be >= 1 token"),
            ("--answer-cap", self.answer_cap, lambda v: v >= 1, "must be >= 1 token"),
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
        if self.thinking_budget is not None and self.max_tokens is not None and self.thinking_budget > self.max_tokens:
            raise FlagError(f"--thinking-budget {self.thinking_budget}: larger than --max-tokens {self.max_tokens}")
        if self.thinking_budget is None and (self.answer_cap is not None or self.answer_cue is not None):
            raise FlagError("--answer-cap and --answer-cue go with --thinking-budget")
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
    thinking: ThinkingBudget | None = None  # --thinking-budget: budget forcing (budget.py)

    def fingerprint(self) -> dict[str, Any]:
        out = {
            "version": str(self.benchmark.version),
            "reward": self.reward.__name__,
            "reward_version": str(getattr(self.reward, "version", "")),
            "source": self.source,
            "generation": self.generation.to_dict(),
        }
        if self.thinking is not None:  # absent without one: runs made before the flag still resume
            out["thinking_budget"] = self.thinking.to_dict()
        return out


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
    from r1h.harness.core.plugins import get_plugins

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
        generation = generation_config(benchmark, opts)
        plans.append(BenchPlan(name, benchmark, reward, source_label, generation,
                               thinking=thinking_budget(benchmark, generation, opts)))
    # every benchmark's data before any backend or model, every failure in one error (resolve.py)
    loaded = load_all([(p.name, partial(_load, p.benchmark, p.name, sources[p.name], opts.limit)) for p in plans])
    for plan in plans:
        plan.samples = loaded[plan.name]
    return plans


def check_budget(budget: ThinkingBudget, max_tokens: int, where: str = "") -> None:
    """A budget larger than the benchmark's max_tokens is a usage error naming the flag."""
    if budget.budget > int(max_tokens):
        raise FlagError(f"--thinking-budget {budget.budget}: larger than --max-tokens {max_tokens}{where}")
    if budget.answer_cap < 1:
        raise FlagError(f"--answer-cap {budget.answer_cap}: must be >= 1")


def thinking_budget(benchmark: Any, generation: GenerationConfig, opts: Any) -> ThinkingBudget | None:
    """A benchmark's budget settings (eval/budget.py) from the eval options (None without ``--thinking-budget``): the cue is
    ``--answer-cue``, else the benchmark's ``answer_cue``, else :data:`DEFAULT_CUE`."""
    if getattr(opts, "thinking_budget", None) is None:
        return None
    cue = opts.answer_cue if opts.answer_cue is not None else getattr(benchmark, "answer_cue", None)
    cap = DEFAULT_ANSWER_CAP if opts.answer_cap is None else int(opts.answer_cap)
    budget = ThinkingBudget(int(opts.thinking_budget), cap,
                            DEFAULT_CUE if cue is None else str(cue))
    check_budget(budget, generation.max_tokens, f" ({benchmark.name}'s max_tokens)")
    return budget


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
        plan = BenchPlan(name, benchmark, reward, label, generation,
                         thinking=ThinkingBudget(**fp["thinking_budget"]) if fp.get("thinking_budget") else None)
        plan.samples = _load(benchmark, name, source, config.get("limit"))
        plans.append(plan)
    return plans


@dataclass
class RunPlan:
    """Everything a run is decided by before it starts: the options (``--merge``: as run.json recorded them), the
    shard, the benchmarks' plans and the fingerprint for run.json."""

    opts: EvalOptions
    shard: Any
    plans: list[BenchPlan]
    config: dict[str, Any]


def plan_run(opts: EvalOptions) -> RunPlan:
    """The options checked, the shard and the plans. ``--merge`` takes the model, backend, limit, budget and every
    benchmark's settings from the run's run.json instead of the flags."""
    from r1h.harness.eval.shards import parse_shard
    from r1h.harness.eval.store import RunStore

    opts.validate()
    shard = parse_shard(opts.shard)
    if not opts.merge:
        plans = plan_benchmarks(opts)
        return RunPlan(opts, shard, plans, run_config(opts, plans))
    try:
        config = RunStore(opts.output).read_config()
    except RunError as exc:
        raise RunError(f"--merge: {exc}") from exc
    opts = dataclasses.replace(
        opts, model=config.get("model"), backend=config.get("backend") or opts.backend,
        backend_args=dict(config.get("backend_args") or {}), limit=config.get("limit"), budget=config.get("budget"))
    plans = plans_from_config(config)
    return RunPlan(opts, shard, plans, run_config(opts, plans))
