"""What the three workflows share: resolve a recipe into a validated TRL config, the reward objects and the options,
all before any model loads; then save a checkpoint that ``r1h eval --model`` can read."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from typing import Any

from ..harness.errors import ConfigError
from .recipes import Recipe, apply_overrides, load_recipe, parse_reward_spec, validate

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
    eval_data: str | None = None
    eval_max_tokens: int | None = None


@dataclass
class Plan:
    """A resolved run: recipe, validated config kwargs and reward objects. Nothing heavy loaded yet."""

    options: TrainOptions
    recipe: Recipe
    config_kwargs: dict[str, Any]
    rewards: list[Any]
    notes: list[str] = field(default_factory=list)

    @property
    def output_dir(self) -> str:
        return self.config_kwargs["output_dir"]


def has_gpu() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # pragma: no cover - torch missing
        return False


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

    from ..harness.errors import DataError
    from .data import looks_like_file

    source = str(recipe.data["source"])
    if looks_like_file(source) and not Path(source).expanduser().exists():
        raise DataError(f"data file {source} does not exist")
    kwargs = validate(recipe)
    kwargs.setdefault("output_dir", os.path.join("runs", "train", recipe.name))
    kwargs.setdefault("report_to", "none")
    notes: list[str] = []
    if not has_gpu():
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
    return Plan(options=options, recipe=recipe, config_kwargs=kwargs, rewards=rewards, notes=notes)


def resolve_rewards(names: list[str]) -> list[Any]:
    """The registered reward objects, exactly as ``r1h.get_reward`` returns them (TRL gets these unchanged)."""
    import r1h

    return [r1h.get_reward(name) for name in names]


def build_config(plan_: Plan):
    """The TRL config object. Its own consistency checks (``__post_init__``) become one-line ConfigErrors."""
    from .recipes import config_class

    cls = config_class(plan_.recipe.workflow)
    try:
        return cls(**plan_.config_kwargs)
    except (ValueError, TypeError) as exc:
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
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
        from .evaluation import BenchmarkEvalCallback

        trainer.add_callback(BenchmarkEvalCallback(options.eval_bench, options.eval_every, limit=options.eval_limit,
                                                   source=options.eval_data, max_tokens=options.eval_max_tokens)
                             .attach(trainer))
    trainer.train()
    save_final(trainer, output_dir)
    return trainer
