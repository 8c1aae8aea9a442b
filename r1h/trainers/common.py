"""What the three workflows share: resolve a recipe into a validated TRL config, the reward objects and the options,
all before any model loads; then save a checkpoint that ``r1h eval --model`` can read."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from r1h.harness.core.errors import ConfigError, first_line
from r1h.trainers.recipes import Recipe, apply_overrides, load_recipe, parse_reward_spec, validate

DEFAULT_RECIPES = {
    "sft": "stratos-qwen2.5-math-1.5b",
    "grpo": "countdown-qwen2.5",
    "grpo-vl": "r1v-clevr-qwen2-vl-2b",
}


@dataclass
class TrainOptions:
    """Everything the command line can say about one training run."""

    workflow: str
    recipe: str | None = None
    model: str | None = None
    data: str | None = None
    output_dir: str | None = None
    sets: list[str] = field(default_factory=list)
    rewards: list[str] = field(default_factory=list)
    limit: int | None = None  # use only the first N training rows (smoke runs)
    eval_bench: str | None = None
    eval_every: int = 0
    eval_limit: int = 8
    eval_n: int | None = None  # samples per problem; None: the benchmark's protocol n
    eval_data: str | None = None
    eval_max_tokens: int | None = None
    num_processes: int | None = None  # training processes; None: WORLD_SIZE (set by accelerate/torchrun) or 1
    progress: bool = True  # live rich progress for data preparation


@dataclass
class Plan:
    """A resolved run: recipe, validated config kwargs and reward objects. Nothing heavy loaded yet."""

    options: TrainOptions
    recipe: Recipe
    config_kwargs: dict[str, Any]
    rewards: list[Any]
    notes: list[str] = field(default_factory=list)
    processes: int = 1
    warnings: list[str] = field(default_factory=list)  # where the run cannot match the original

    @property
    def output_dir(self) -> str:
        return self.config_kwargs["output_dir"]


def has_gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - torch missing
        return False


def process_count(options: TrainOptions) -> int:
    """The launcher's WORLD_SIZE inside a training process, else ``--num-processes``, else 1."""
    if os.environ.get("WORLD_SIZE"):
        try:
            return max(1, int(os.environ["WORLD_SIZE"]))
        except ValueError:
            pass
    if options.num_processes:
        if options.num_processes < 1:
            raise ConfigError("--num-processes must be >= 1")
        return int(options.num_processes)
    return 1


def apply_layout(recipe: Recipe, kwargs: dict[str, Any], processes: int, warnings: list[str]) -> None:
    """Per-device batch and grad-accum that give the original's prompts (and completions) per optimizer step on
    ``processes`` processes, one generation per step. A value given on the command line is kept; when only one of
    the two is given, the other is derived from it where the step allows."""
    from r1h.trainers.effective import LAYOUT_KEYS, derive_layout

    original = recipe.original
    if not original:
        return
    given = sorted(k for k in LAYOUT_KEYS if k in recipe.explicit)
    if given:
        warnings.append(f"{', '.join(given)} given on the command line: kept as given (see the table)")
    for key in ("generation_batch_size", "steps_per_generation"):  # TRL's default: one generation per step
        if key not in recipe.explicit:
            kwargs.pop(key, None)
    units = int(original.get("processes", 1)) * int(original.get("per_device_prompts", 1)) * int(
        original.get("gradient_accumulation_steps", 1))
    group = 1 if recipe.workflow == "sft" else int(kwargs.get("num_generations") or original.get("num_generations", 8))
    target = units * group
    fixed = {k: int(kwargs[k]) for k in ("per_device_train_batch_size", "gradient_accumulation_steps")
             if k in recipe.explicit and kwargs.get(k)}
    if len(fixed) == 2:
        return
    if len(fixed) == 1:
        (key, value), = fixed.items()
        other = ("gradient_accumulation_steps" if key == "per_device_train_batch_size"
                 else "per_device_train_batch_size")
        kwargs[other] = max(1, round(target / (value * processes)))
        if value * processes * kwargs[other] != target:
            warnings.append(f"{key}={value} on {processes} process(es) cannot give the original's {target} "
                            f"{'completions' if group > 1 else 'sequences'} per step; {other}={kwargs[other]}")
        return
    micro = int(original.get("micro_batch") or int(original.get("per_device_prompts", 1)) * group)
    layout = derive_layout(target, processes, group, micro)
    kwargs["per_device_train_batch_size"] = layout.per_device
    kwargs["gradient_accumulation_steps"] = layout.grad_accum
    if layout.warning:
        warnings.append(layout.warning)


SPEED_KEYS = ("attn_implementation", "use_vllm")


def apply_speed(recipe: Recipe, kwargs: dict[str, Any], notes: list[str], gpu: bool) -> None:
    """The original's speed settings (flash-attention 2, vLLM generation), on a GPU only and only when the library
    imports; a value given on the command line wins. Nothing changes on CPU."""
    import importlib.util

    unknown = sorted(set(recipe.speed) - set(SPEED_KEYS))
    if unknown:
        raise ConfigError(f"recipe {recipe.name}: unknown speed key(s) {', '.join(unknown)}; known: "
                          f"{', '.join(SPEED_KEYS)}")
    if not gpu:
        return
    attn = recipe.speed.get("attn_implementation")
    mik = kwargs.get("model_init_kwargs")
    mik = dict(mik) if isinstance(mik, dict) else {}
    if attn and "attn_implementation" not in mik and "model_init_kwargs" not in recipe.explicit:
        if attn != "flash_attention_2" or importlib.util.find_spec("flash_attn") is not None:
            kwargs["model_init_kwargs"] = {**mik, "attn_implementation": attn}
            notes.append(f"attn_implementation {attn} (as the original)")
        else:
            notes.append("flash_attn is not installed: default attention (the original used flash_attention_2; "
                         "pip install flash-attn, or --set model_init_kwargs='{\"attn_implementation\": ...}')")
    if recipe.speed.get("use_vllm") and "use_vllm" not in recipe.explicit and recipe.workflow != "sft":
        if importlib.util.find_spec("vllm") is not None:
            kwargs["use_vllm"] = True
            notes.append(f"use_vllm on (vllm_mode {kwargs.get('vllm_mode', 'colocate')}); --no-vllm to turn it off")
        else:
            notes.append("vllm is not installed: generating with transformers (the original used vLLM)")


def plan(options: TrainOptions) -> Plan:
    """Load, override and validate the recipe and resolve the rewards. Raises R1HError subclasses (one line)."""
    recipe = load_recipe(options.recipe or DEFAULT_RECIPES[options.workflow])
    if recipe.workflow != options.workflow:
        raise ConfigError(
            f"recipe {recipe.name!r} is a {recipe.workflow!r} recipe; run it with `r1h train {recipe.workflow}`"
        )
    apply_overrides(recipe, options.sets)
    if options.model:
        recipe.model = options.model
    if options.data:
        recipe.data["source"] = options.data
    if options.rewards:
        recipe.rewards = list(options.rewards)
    if options.output_dir:
        recipe.config["output_dir"] = options.output_dir
        recipe.explicit.add("output_dir")
    if not recipe.data.get("source"):
        raise ConfigError(f"recipe {recipe.name}: no data source (set data.source in the recipe or pass --data)")

    from pathlib import Path

    from r1h.harness.core.errors import DataError
    from r1h.trainers.data import looks_like_file

    source = str(recipe.data["source"])
    if looks_like_file(source) and not Path(source).expanduser().exists():
        raise DataError(f"data file {source} does not exist")
    kwargs = validate(recipe)
    kwargs.setdefault("output_dir", os.path.join("runs", "train", recipe.name))
    kwargs.setdefault("report_to", "none")
    notes: list[str] = []
    warnings: list[str] = []
    processes = process_count(options)
    apply_layout(recipe, kwargs, processes, warnings)
    gpu = has_gpu()
    apply_speed(recipe, kwargs, notes, gpu)
    from r1h.trainers.vllm_sync import server_mode_refusal

    refusal = server_mode_refusal(kwargs, gpu)
    if refusal:  # a dry run may plan a GPU job from a CPU box; a real run refuses (grpo.run)
        warnings.append(f"not on this machine: {refusal}")
    if not gpu:
        # CPU runs train in float32: bf16 autocast on CPU is slow and changes the numerics of tiny test models.
        if kwargs.get("bf16", True) and "bf16" not in recipe.explicit:
            kwargs["bf16"] = False
            notes.append("no GPU: bf16 off (float32); pass --set bf16=true to force it")
        mik = kwargs.get("model_init_kwargs")
        if isinstance(mik, dict) and mik.get("dtype") in ("bfloat16", "float16") and "model_init_kwargs" not in recipe.explicit:
            kwargs["model_init_kwargs"] = {**mik, "dtype": "float32"}
        if "use_cpu" not in recipe.explicit:
            kwargs["use_cpu"] = True

    rewards: list[Any] = []
    if options.workflow != "sft":
        if not recipe.rewards:
            raise ConfigError(f"recipe {recipe.name}: no rewards (add rewards to the recipe or pass --reward)")
        specs = [parse_reward_spec(r) for r in recipe.rewards]
        rewards = resolve_rewards([name for name, _ in specs])
        if "reward_weights" not in recipe.explicit:
            kwargs["reward_weights"] = [w for _, w in specs]
        elif len(kwargs["reward_weights"] or []) not in (0, len(rewards)):
            raise ConfigError(f"reward_weights has {len(kwargs['reward_weights'])} values for {len(rewards)} rewards")
    if options.eval_bench:
        import r1h

        r1h.get_benchmark(options.eval_bench)  # unknown names fail here, before any model loads
        if options.eval_every < 0:
            raise ConfigError("--eval-every must be >= 0")
        if options.eval_n is not None and options.eval_n < 1:
            raise ConfigError(f"--eval-n {options.eval_n}: must be >= 1")
    return Plan(options=options, recipe=recipe, config_kwargs=kwargs, rewards=rewards, notes=notes,
                processes=processes, warnings=warnings)


def resolve_rewards(names: list[str]) -> list[Any]:
    """The registered reward objects, exactly as ``r1h.get_reward`` returns them (TRL gets these unchanged)."""
    import r1h

    return [r1h.get_reward(name) for name in names]


def build_config(plan_: Plan):
    """The TRL config object. Its own consistency checks (``__post_init__``) become one-line ConfigErrors."""
    from r1h.trainers.recipes import config_class

    cls = config_class(plan_.recipe.workflow)
    try:
        return cls(**plan_.config_kwargs)
    except (ValueError, TypeError) as exc:
        message = first_line(exc)
        raise ConfigError(f"recipe {plan_.recipe.name}: {cls.__name__}: {message}") from exc


def announce(plan_: Plan) -> None:
    if is_main_process():
        r = plan_.recipe
        print(f"r1h train {r.workflow}: recipe {r.name}, model {r.model}, data {r.data.get('source')}, "
              f"processes {os.environ.get('WORLD_SIZE', '1')}", file=sys.stderr)
        if plan_.rewards:
            names = ", ".join(f"{getattr(f, '__name__', f)}:{w:g}" for f, w in
                              zip(plan_.rewards, plan_.config_kwargs.get("reward_weights") or [], strict=False))
            print(f"r1h train: rewards {names}", file=sys.stderr)
        for note in plan_.notes:
            print(f"r1h train: {note}", file=sys.stderr)
        summary = effective_summary(plan_)
        if summary:
            print(f"r1h train: {summary}", file=sys.stderr)
        for warning in plan_.warnings:
            print(f"r1h train: WARNING: {warning}", file=sys.stderr)


def effective_rows(plan_: Plan, config=None):
    """The dry-run table's rows for this plan (empty when the recipe names no original)."""
    from r1h.trainers.effective import effective_rows as rows

    if not plan_.recipe.original:
        return []
    config = config if config is not None else build_config(plan_)
    return rows(plan_.recipe.workflow, plan_.recipe.original, config, plan_.config_kwargs, plan_.processes)


def effective_summary(plan_: Plan) -> str:
    """One line: per-step numbers of this run next to the original's, and how many settings differ."""
    rows = effective_rows(plan_)
    if not rows:
        return ""
    table = {what: (a, b) for what, a, b, _ in rows}
    key = "sequences per step" if plan_.recipe.workflow == "sft" else "prompts per step"
    differ = [what for what, *_, d in rows if d]
    line = (f"{key} {table[key][1]} on {plan_.processes} process(es) (original {table[key][0]} on "
            f"{table['processes'][0]})")
    return line + (f"; differs from the original in: {', '.join(differ)}" if differ else "; matches the original")


def preparing(plan_: Plan):
    """Live progress (rich, stderr) for the data preparation, on the main process unless ``--no-progress``."""
    from r1h.trainers.progress import data_progress

    return data_progress(enabled=plan_.options.progress and is_main_process())


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") in ("", "0")


def save_final(trainer, output_dir: str) -> None:
    """Weights, config, generation config and tokenizer/processor in ``output_dir`` (loadable by ``r1h eval``)."""
    trainer.save_model(output_dir)
    if trainer.accelerator.is_main_process and trainer.processing_class is not None:
        trainer.processing_class.save_pretrained(output_dir)
    trainer.accelerator.wait_for_everyone()


def train_and_save(trainer, options, output_dir: str):
    """Attach the ``--eval-bench`` callback if asked, train, and save the final checkpoint (shared by SFT and GRPO)."""
    if options.eval_bench and options.eval_every:
        from r1h.trainers.evaluation import BenchmarkEvalCallback

        trainer.add_callback(BenchmarkEvalCallback(options.eval_bench, options.eval_every, limit=options.eval_limit,
                                                   n=options.eval_n, source=options.eval_data,
                                                   max_tokens=options.eval_max_tokens)
                             .attach(trainer))
    trainer.train()
    save_final(trainer, output_dir)
    return trainer
