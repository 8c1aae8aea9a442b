"""``count_accuracy`` (SuperCLEVR / R1-V counting): the last ``<answer>N</answer>`` outside ``<think>`` must equal N.

R1-V's evaluation takes the *first* ``<answer>\\s*(\\d+)\\s*</answer>`` anywhere in the output, so a number the model
writes inside its ``<think>`` block (a draft, or a quoted example) is credited. Here:

- every ``<think>…</think>`` span is removed first (an unclosed ``<think>`` hides the rest; a leading ``</think>``
  closes a prefilled think block; see :func:`r1h.plugins.rewards._text.outside_think`), and the prompt's ``<think>``
  prefill, if any, is taken into account;
- of what remains, the LAST block of the form ``<answer>\\s*(\\d+)\\s*</answer>`` is the prediction (R1-V's own
  pattern, so outputs without a think block extract exactly as R1-V's ``extracted_answer``);
- gold (column ``answer``) is an int, a numeric string, or R1-V's training solution ``<answer> N </answer>``;
  anything else is unreadable and scores None.
"""

from __future__ import annotations

import re
from typing import Any

from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.reward import Reward
from r1h.plugins.rewards._text import last_answer, outside_think, with_prefill

# R1-V's eval pattern. Linear: \s and \d are disjoint, and a match can only start at the literal "<answer>".
ANSWER_NUMBER = re.compile(r"<answer>\s*(\d+)\s*</answer>")
_GOLD_NUMBER = re.compile(r"\s*(\d{1,18})\s*")


def read_gold(gold: Any) -> int | None:
    """The gold count as an int, or None when it cannot be read."""
    if isinstance(gold, bool) or gold is None:
        return None
    if isinstance(gold, int):
        return gold
    if isinstance(gold, float):
        return int(gold) if gold.is_integer() else None
    if isinstance(gold, str):
        if len(gold) > 200:
            return None
        inner = last_answer(gold)
        match = _GOLD_NUMBER.fullmatch(inner if inner is not None else gold)
        return int(match.group(1)) if match else None
    return None


def extract_count(text: str) -> str | None:
    """The digits of the last ``<answer>N</answer>`` outside any think block, or None."""
    last = None
    for last in ANSWER_NUMBER.finditer(outside_think(text)):  # noqa: B007 - we want the final match
        pass
    return last.group(1) if last is not None else None


class CountAccuracy(Reward):
    """1.0 when the last <answer>N</answer> outside <think> equals the integer gold ``answer``."""

    name = "count_accuracy"
    version = "1"
    description = "SuperCLEVR counting: last <answer>N</answer> outside <think> equals the integer answer"
    columns = ("answer",)
    required_columns = ("answer",)
    isolate = False

    def extract(self, completion: str, prompt: Any = None, **row: Any) -> str | None:
        return extract_count(with_prefill(completion, prompt))

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float | None:
        gold = read_gold(row.get("answer"))
        if gold is None:
            return None
        predicted = self.extract(completion, prompt, **row)
        if predicted is None or len(predicted) > 18:
            return 0.0
        return 1.0 if int(predicted) == gold else 0.0

    def equivalent(self, a: str, b: str) -> bool:
        """ "007" and "7" are the same count."""
        try:
            return int(a) == int(b)
        except ValueError:
            return a.strip() == b.strip()


@hookimpl
def r1h_register_rewards(register):
    register(
        "count_accuracy",
        "r1h.plugins.rewards.counting:CountAccuracy",
        version=CountAccuracy.version,
        description=CountAccuracy.description,
    )
