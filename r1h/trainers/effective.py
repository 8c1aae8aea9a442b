"""A recipe's effective training numbers next to the original run's, and the batch layout that keeps them equal on
any number of processes.

TRL 0.14, which mini-deepseek-r1 and R1-V ran on, counted ``per_device_train_batch_size`` in *prompts*, each expanded
to ``num_generations`` completions (trl v0.14.0 ``trl/trainer/grpo_config.py:159-165``). TRL 1.x counts
*completions* and generates ``generation_batch_size`` completions every ``steps_per_generation`` micro-steps; the
default, ``steps_per_generation == gradient_accumulation_steps``, is one generation per optimizer step, i.e.
on-policy (installed ``trl/trainer/grpo_config.py``, ``GRPOConfig.__post_init__``). :func:`derive_layout` picks the
per-device batch and gradient accumulation from the process count so that every optimizer step sees the original's
prompts and completions; :func:`effective_rows` reads the numbers back from the built TRL config, the way TRL will
use them, and puts them next to the recipe's ``original:`` section.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

# Config keys that, when given on the command line, switch the automatic layout off (the table then flags the result).
LAYOUT_KEYS = ("per_device_train_batch_size", "gradient_accumulation_steps", "generation_batch_size",
               "steps_per_generation")


@dataclass
class Layout:
    per_device: int  # completions (GRPO) or sequences (SFT) per device forward pass
    grad_accum: int
    per_step: int  # completions (GRPO) or sequences (SFT) per optimizer step, all processes
    warning: str | None = None


def derive_layout(target: int, processes: int, group: int, micro: int) -> Layout:
    """Per-device batch and grad-accum for ``target`` units per optimizer step on ``processes`` processes.

    A step's units must split evenly over the processes and hold whole groups of ``group`` (``num_generations``; 1 for
    SFT). The per-device batch is the largest divisor of the per-process share that is at most ``micro`` (the
    original's per-device forward batch, so memory per forward pass stays the original's). When ``target`` cannot be
    split, the nearest splittable count is used and ``warning`` says so."""
    processes, group, micro = max(1, int(processes)), max(1, int(group)), max(1, int(micro))
    step = processes * group // math.gcd(processes, group)
    warning = None
    per_step = int(target)
    if per_step <= 0 or per_step % step:
        lower = per_step // step * step
        upper = lower + step
        # of the two nearest splittable counts, the one with the bigger per-device batch (faster), then the nearer
        candidates = [c for c in (lower, upper) if c > 0]
        per_step = max(candidates, key=lambda c: (_per_device(c // processes, micro), -abs(c - target), -c))
        unit = "prompts" if group > 1 else "sequences"
        times = f" (x{group} completions)" if group > 1 else ""
        warning = (f"the original's {target // group} {unit} per step{times} do not split over {processes} "
                   f"processes; using {per_step // group} {unit} per step instead. A process count that divides "
                   f"{target // group if group > 1 else target} trains exactly as the original")
    per_process = per_step // processes
    per_device = _per_device(per_process, micro)
    return Layout(per_device=per_device, grad_accum=per_process // per_device, per_step=per_step, warning=warning)


def _per_device(per_process: int, micro: int) -> int:
    return max(d for d in range(1, max(1, min(micro, per_process)) + 1) if per_process % d == 0)


def _epochs(epochs: Any) -> str:
    return f"{float(epochs):g} epoch" + ("" if float(epochs) == 1 else "s")


def original_numbers(workflow: str, original: dict[str, Any]) -> dict[str, Any]:
    """The original run's per-step numbers, computed from its process count, batch, grad-accum and generations."""
    processes = int(original.get("processes", 1))
    per_device = int(original.get("per_device_prompts", 1))
    accum = int(original.get("gradient_accumulation_steps", 1))
    units = processes * per_device * accum
    out: dict[str, Any] = {"processes": processes, "units_per_step": units}
    if workflow != "sft":
        generations = int(original.get("num_generations", 8))
        out["completions_per_step"] = units * generations
    steps = original.get("max_steps")
    out["total"] = steps * units if steps else _epochs(original.get("num_train_epochs", 1))
    return out


def _scheduler(value: Any) -> str:
    return str(getattr(value, "value", value))


def effective_numbers(workflow: str, config: Any, kwargs: dict[str, Any], processes: int) -> dict[str, Any]:
    """What TRL will do with ``config`` on ``processes`` processes (TRL 1.x semantics; see the module docstring)."""
    processes = max(1, int(processes))
    per_device = int(config.per_device_train_batch_size)
    accum = int(config.gradient_accumulation_steps)
    out: dict[str, Any] = {"processes": processes, "per_device": per_device, "grad_accum": accum}
    per_step = per_device * processes * accum
    steps = int(getattr(config, "max_steps", -1) or -1)
    epochs = getattr(config, "num_train_epochs", 1)
    if workflow == "sft":
        out["units_per_step"] = per_step
        out["total"] = steps * per_step if steps > 0 else _epochs(epochs)
        return out
    generations = int(config.num_generations)
    if kwargs.get("generation_batch_size"):
        per_generation = int(kwargs["generation_batch_size"])
        steps_per_generation = per_generation / (per_device * processes)
    elif kwargs.get("steps_per_generation"):
        steps_per_generation = int(kwargs["steps_per_generation"])
        per_generation = per_device * processes * steps_per_generation
    else:
        steps_per_generation, per_generation = accum, per_step
    prompts = per_step / generations
    out.update({
        "completions_per_step": per_step,
        "units_per_step": int(prompts) if prompts == int(prompts) else round(prompts, 2),
        "steps_per_generation": steps_per_generation,
        "completions_per_generation": per_generation,
        # one generation feeds steps_per_generation micro-steps; beyond grad-accum it spills into later optimizer steps
        "on_policy": steps_per_generation <= accum and int(getattr(config, "num_iterations", 1)) == 1,
    })
    out["total"] = steps * out["units_per_step"] if steps > 0 else _epochs(epochs)
    return out


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
    return str(a) == str(b)


def effective_rows(workflow: str, original: dict[str, Any], config: Any, kwargs: dict[str, Any],
                   processes: int) -> list[tuple[str, Any, Any, bool]]:
    """``(what, original, effective, differs)`` rows for the dry-run table. ``differs`` is False for rows that are
    expected to change with the machine (processes, per-device batch, grad-accum)."""
    orig = original_numbers(workflow, original)
    eff = effective_numbers(workflow, config, kwargs, processes)
    rows: list[tuple[str, Any, Any, bool]] = [
        ("processes", orig["processes"], eff["processes"], False),
        ("per-device batch x grad-accum",
         f"{original.get('per_device_prompts', 1)} {'prompt' if workflow != 'sft' else 'seq'} x "
         f"{original.get('gradient_accumulation_steps', 1)}",
         f"{eff['per_device']} {'completions' if workflow != 'sft' else 'seq'} x {eff['grad_accum']}", False),
    ]

    def add(what: str, a: Any, b: Any) -> None:
        rows.append((what, a, b, not _same(a, b)))

    if workflow == "sft":
        add("sequences per step", orig["units_per_step"], eff["units_per_step"])
        add("total sequences", orig["total"], eff["total"])
        add("max_length", original.get("max_length"), config.max_length)
        add("packing", original.get("packing"), config.packing_strategy if config.packing else False)
        loss = "assistant only" if config.assistant_only_loss else (
            "completion only" if config.completion_only_loss else "full sequence")
        add("loss", original.get("loss"), loss)
        add("eos_token", original.get("eos_token"), config.eos_token)
    else:
        add("prompts per step", orig["units_per_step"], eff["units_per_step"])
        add("completions per step", orig["completions_per_step"], eff["completions_per_step"])
        reuse = eff["steps_per_generation"] / eff["grad_accum"] * int(getattr(config, "num_iterations", 1))
        add("on-policy (no completion reuse)", "yes",
            "yes" if eff["on_policy"] else f"no: each generation feeds {reuse:g} optimizer steps")
        add("total prompts", orig["total"], eff["total"])
        add("num_generations", original.get("num_generations"), config.num_generations)
        add("loss_type", original.get("loss_type"), config.loss_type)
        add("temperature", original.get("temperature"), config.temperature)
        add("beta", original.get("beta"), config.beta)
        add("max_completion_length", original.get("max_completion_length"), config.max_completion_length)
    add("learning_rate", original.get("learning_rate"), config.learning_rate)
    add("lr schedule", original.get("lr_scheduler_type"), _scheduler(config.lr_scheduler_type))
    add("warmup", original.get("warmup", 0), config.warmup_steps)
    if original.get("max_steps"):
        add("max_steps", original["max_steps"], config.max_steps)
    else:
        add("epochs", original.get("num_train_epochs"), config.num_train_epochs if config.max_steps <= 0
            else f"max_steps {config.max_steps}")
    return rows


def render_table(rows: list[tuple[str, Any, Any, bool]], title: str, console: Any = None) -> int:
    """Print the rows with rich; return how many differ (flagged with "≠")."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, title_justify="left")
    table.add_column("")
    table.add_column("original")
    table.add_column("this run")
    table.add_column("")
    for what, a, b, differs in rows:
        table.add_row(what, _fmt(a), _fmt(b), "[bold red]≠[/bold red]" if differs else "")
    console = console or Console(stderr=True)
    console.print(table)
    return sum(1 for *_, d in rows if d)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    return "none" if value is None else str(value)
