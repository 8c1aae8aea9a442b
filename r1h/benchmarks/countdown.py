"""Countdown (Jiayi-Pan/Countdown-Tasks-3to4) with the mini-deepseek-r1 prompt, graded by countdown_equation.

Data sources (``--data countdown=SOURCE``):

- none, ``builtin`` or ``builtin:N``: a built-in seeded generator of solvable puzzles (500 by default), so Countdown
  runs fully offline. Same ranges as the hub set: 3 or 4 numbers (equally often) in 1..99, targets 10..100, every
  number used; each puzzle is solvable by construction. Ids are ``gen-<i>``; the same N always gives the same puzzles.
- ``hub`` or a hub id (``Jiayi-Pan/Countdown-Tasks-3to4``), a local clone, or a .jsonl/.json/.parquet/.csv file with
  columns ``target`` and ``nums``. A source with at least 50,000 rows is cut to the guide's held-out rows
  49,500..49,999 (the last 500 of the first 50,000, which GRPO training leaves out); a smaller file is used as given.
  Ids are ``row-<index>`` with the row's index in the source.

The prompt (system, user, and the assistant prefill the model continues) is mini-deepseek-r1's, byte for byte. The
GRPO trainer imports :func:`countdown_messages` from here, so training and evaluation share one definition.
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any

from r1h.harness.core.benchmark import Benchmark
from r1h.harness.core.errors import ConfigError, DataError
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.types import Message, Sample
from r1h.harness.data import columns as typed
from r1h.harness.data.sources import Source, apply_limit, load_rows_with_source

HUB_ID = "Jiayi-Pan/Countdown-Tasks-3to4"
HUB_SPLIT = "train"
TRAIN_ROWS = 50_000  # the guide trains on the first 50,000 rows ...
HELDOUT_START = 49_500  # ... and evaluates on the last 500 of them
HELDOUT_END = 50_000
GENERATED_DEFAULT = 500
GENERATOR_SEED = 0
BUILTIN_SOURCES = ("builtin", "generated", "generator")

SYSTEM_PROMPT = (
    "You are a helpful assistant. You first thinks about the reasoning process in the mind and then provides the user "
    "with the answer."
)
USER_TEMPLATE = (
    "Using the numbers {numbers}, create an equation that equals {target}. You can use basic arithmetic operations "
    "(+, -, *, /) and each number can only be used once. Show your work in <think> </think> tags. And return the final "
    "equation and answer in <answer> </answer> tags, for example <answer> (1 + 2) / 3 = 1 </answer>."
)
ASSISTANT_PREFILL = "Let me solve this step by step.\n<think>"


def _ints(nums: Any) -> list[int]:
    """``nums`` as integers (a CSV cell such as "[44, 19, 35]" is read as JSON); anything else is a ColumnError."""
    return typed.integer_list(nums, "nums")


def _target(target: Any) -> int:
    return typed.integer(target, "target")


def countdown_messages(nums: Any, target: Any) -> list[Message]:
    """mini-deepseek-r1's Countdown chat: system, user, and the assistant prefill (render it with
    ``continue_final_message=True``). ``{numbers}`` is the Python list repr, e.g. ``[44, 19, 35]``.
    A ``nums`` or ``target`` of the wrong type raises :class:`~r1h.harness.data.columns.ColumnError`."""
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": USER_TEMPLATE.format(numbers=_ints(nums), target=_target(target))},
        {"role": "assistant", "content": ASSISTANT_PREFILL},
    ]


def heldout_range(n_rows: int) -> range | None:
    """Rows 49,500..49,999 when the source holds the first 50,000 rows (or more); None: use every row."""
    return range(HELDOUT_START, HELDOUT_END) if n_rows >= TRAIN_ROWS else None


def generate_puzzles(count: int = GENERATED_DEFAULT, seed: int = GENERATOR_SEED) -> list[dict[str, Any]]:
    """``count`` solvable puzzles ``{"target", "nums", "equation"}``, deterministic for (count, seed).

    Each puzzle draws 3 or 4 numbers in 1..99, then combines them in a random order with random operations (exact
    integer results only: divisions must be exact, no negative intermediates) until one value is left; the puzzle is
    kept when that value lies in 10..100. ``equation`` is the construction, which uses every number once.
    """
    rng = random.Random(f"r1h-countdown:{seed}")
    puzzles: list[dict[str, Any]] = []
    for _ in range(count):
        size = rng.choice((3, 4))  # drawn once per puzzle, so 3 and 4 numbers come equally often
        while True:
            nums = [rng.randint(1, 99) for _ in range(size)]
            value, expr = _combine(nums, rng)
            if value.denominator == 1 and 10 <= value <= 100:
                puzzles.append({"target": int(value), "nums": nums, "equation": expr[1:-1]})
                break
    return puzzles


def _combine(nums: list[int], rng: random.Random) -> tuple[Fraction, str]:
    items = [(Fraction(n), str(n)) for n in nums]
    while len(items) > 1:
        i, j = rng.sample(range(len(items)), 2)
        (a, ea), (b, eb) = items[i], items[j]
        op = rng.choice("+-*/")
        if op == "-" and a < b:
            (a, ea), (b, eb) = (b, eb), (a, ea)
        if op == "/" and (b == 0 or a % b != 0):
            op = "+"
        value = {"+": a + b, "-": a - b, "*": a * b, "/": a / b if b else a}[op]
        items = [it for k, it in enumerate(items) if k not in (i, j)] + [(value, f"({ea} {op} {eb})")]
    return items[0]


def _builtin_count(source: str) -> int | None:
    """N for ``builtin`` / ``builtin:N``; None when SOURCE is not a built-in source."""
    head, _, tail = source.partition(":")
    if head.strip().lower() not in BUILTIN_SOURCES:
        return None
    if not tail:
        return GENERATED_DEFAULT
    try:
        n = int(tail)
    except ValueError:
        n = 0
    if n < 1:
        raise ConfigError(f"--data countdown={source}: N in builtin:N must be a positive integer")
    return n


class Countdown(Benchmark):
    """Countdown puzzles with the mini-deepseek-r1 prompt and <think> prefill, graded by countdown_equation."""

    name = "countdown"
    version = "1"
    description = (
        "Countdown 3-4 numbers (mini-deepseek-r1 prompt), countdown_equation, n=4; held-out rows 49,500..49,999 of "
        "Jiayi-Pan/Countdown-Tasks-3to4 with --data countdown=hub, a seeded offline generator by default"
    )
    default_samples = 4
    reward = "countdown_equation"
    answer_cue = "\n<answer>"  # the prompt's answer tags; the reward reads the equation inside
    default_source = None  # None: the built-in generator (``--data countdown=hub`` for the guide's held-out rows)
    required_columns = ("target", "nums")

    def __init__(self, **params: Any):
        if params:
            raise ConfigError(f"benchmark 'countdown' takes no parameters; got {', '.join(sorted(params))}")
        self.source: Source | None = None
        self.source_label = ""

    def load(self, source: str | None = None, limit: int | None = None) -> list[Sample]:
        spec = "builtin" if source is None or not str(source).strip() else str(source).strip()
        count = _builtin_count(spec)
        if count is not None:
            self.source, self.source_label = None, f"builtin:{count} (seed {GENERATOR_SEED})"
            rows = generate_puzzles(count)
            return apply_limit([self._sample(f"gen-{i}", row) for i, row in enumerate(rows)], limit)
        picked: list[range | None] = [None]

        def select(n_rows: int) -> range | None:
            picked[0] = heldout_range(n_rows)
            return picked[0]

        rows, self.source = load_rows_with_source(
            HUB_ID if spec.lower() == "hub" else spec,
            default_hub_id=HUB_ID,
            split=HUB_SPLIT,
            required_columns=self.required_columns,
            name=self.name,
            select=select,
        )
        offset = picked[0].start if picked[0] is not None else 0
        self.source_label = self.source.label + (f" rows {HELDOUT_START}..{HELDOUT_END - 1}" if offset else "")
        samples = []
        for i, row in enumerate(rows):
            try:
                samples.append(self._sample(f"row-{offset + i}", row))
            except typed.ColumnError as exc:
                raise DataError(f"countdown: {self.source.locate(i)}: {exc}") from None
        return apply_limit(samples, limit)

    @staticmethod
    def _sample(sid: str, row: dict[str, Any]) -> Sample:
        target, nums = _target(row["target"]), _ints(row["nums"])
        return Sample(id=sid, columns={"target": target, "nums": nums}, raw=dict(row))

    def prompt(self, sample: Sample) -> list[Message]:
        return countdown_messages(sample.columns["nums"], sample.columns["target"])

    def reference_completion(self, sample: Sample) -> str:
        """A solver's equation (the completion continues the prefilled ``<think>``)."""
        from r1h.plugins.rewards.countdown import solve

        nums, target = sample.columns["nums"], sample.columns["target"]
        equation = solve(nums, target) or sample.raw.get("equation")
        if not equation:
            return f" No combination of {nums} reaches {target}.\n</think>\n<answer> none </answer>"
        return f" {equation} = {target}\n</think>\n<answer> {equation} = {target} </answer>"


@hookimpl
def r1h_register_benchmarks(register):
    register("countdown", "r1h.benchmarks.countdown:Countdown", aliases=("countdown_3to4",),
             version=Countdown.version, description=Countdown.description)
