"""A second hostile corpus, of kinds the first one (``adversarial_corpus.py``) does not hold: resource bombs sized to
hurt the *inline* rewards (tens of megabytes, millions of matches), arbitrary-precision bait hidden in gold values, odd
gold types, odd completion shapes, and Countdown puzzles that make a solver search forever.

Every case is ``Case(label, completion, gold)``: ``gold`` maps column names to values and is merged over the default
gold of the reward under test (so ``{"target": "1e99999999999"}`` attacks ``countdown_equation``'s gold parse while the
completion is harmless). ``big=True`` marks the cases that are expensive to move around (tens of MB); tests that cross
process boundaries many times sample around them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MB = 1_000_000

# the ten built-in rewards and a harmless gold for each
GOLD: dict[str, dict[str, Any]] = {
    "math_accuracy": {"answer": "42"},
    "cosine_length": {"answer": "42"},
    "think_format": {},
    "tag_count": {},
    "choice_accuracy": {"answer": "B"},
    "count_accuracy": {"answer": "3"},
    "countdown_equation": {"target": 24, "nums": [4, 6, 1]},
    "reasoning_steps": {},
    "repetition_penalty": {},
    "soft_overlong": {},
}


@dataclass(frozen=True)
class Case:
    label: str
    completion: Any
    gold: dict[str, Any] = field(default_factory=dict)
    big: bool = False


def _completions() -> list[Case]:
    words = "the cat sat on the mat "
    return [
        # the issue's cases
        Case("boxed-(10^9999)^9999", "<think>x</think> \\boxed{(10^{9999})^{9999}}"),
        Case("boxed-10^9999^9999-flat", "\\boxed{10^{9999^{9999}}}"),
        Case("boxed-(10^9999)!", "\\boxed{(10^{9999})!}"),
        Case("repeated-words-50MB", words * (50 * MB // len(words)), big=True),
        Case("steps-bullets-20MB", "\n-" * (10 * MB), big=True),
        Case("steps-nested-parens-5MB", "Step 1: " + "(" * (5 * MB) + ")" * (5 * MB), big=True),
        # many cheap matches for regex-driven rewards
        Case("answer-colon-x1M", "Answer: B " * (MB // 4), big=True),
        Case("answer-tags-x500k", "<answer>3</answer>" * 500_000, big=True),
        Case("open-answer-x1M", "<answer>" * MB, big=True),
        Case("think-tags-x1M", "<think></think>" * MB, big=True),
        Case("boxed-open-x1M", "\\boxed{" * MB, big=True),
        Case("first-comma-x1M", "First, " * MB, big=True),
        # long single tokens and odd text
        Case("one-word-20MB", "a" * (20 * MB), big=True),
        Case("digits-5MB-in-answer", "<answer>" + "7" * (5 * MB) + "</answer>", big=True),
        Case("combining-marks-2MB", "e" + "\u0301" * (2 * MB), big=True),
        Case("rtl-override", "\u202e<answer>B</answer>\u202c \\boxed{42}"),
        Case("zero-width-answer", "<answer>\u200b4\u200b2</answer> \\boxed{4\u200b2}"),
        Case("fullwidth-digits", "<answer>（４＋６）×１＋１４</answer>"),
        Case("arabic-indic-digits", "<answer>٤ * ٦ * ١</answer>"),
        Case("countdown-bigint-answer", "<answer>" + "*".join(["99999"] * 50) + "</answer>"),
        Case("countdown-division-chain", "<answer>" + "/".join(["7"] * 140) + "</answer>"),
        # completion shapes
        Case("messages-200k", [{"role": "assistant", "content": "x"}] * 200_000, big=True),
        Case("content-parts-200k", [{"role": "assistant", "content": [{"type": "text", "text": "y"}] * 200_000}],
             big=True),
        Case("message-no-content", [{"role": "assistant"}]),
        Case("message-content-int", [{"role": "assistant", "content": 12345}]),
        Case("message-content-nested", [{"role": "assistant", "content": [[["deep"]]]}]),
        Case("empty-list", []),
        Case("none-completion", None),
        Case("int-completion", 42),
    ]


def _golds() -> list[Case]:
    ok = "<think>x</think><answer>(4 + 6) * 1 + 14 = 24</answer> \\boxed{42}"
    return [
        # Countdown gold: arbitrary precision and odd types
        Case("target-1e99999999999", ok, {"target": "1e99999999999"}),
        Case("target-1e999999", ok, {"target": "1e999999"}),
        Case("target-neg-exp", ok, {"target": "1e-99999999999"}),
        Case("target-Infinity", ok, {"target": "Infinity"}),
        Case("target-float-inf", ok, {"target": float("inf")}),
        Case("target-nan", ok, {"target": float("nan")}),
        Case("target-5000-digits", ok, {"target": "9" * 5000}),
        Case("target-int-5000-digits", ok, {"target": 10**5000}),
        Case("target-true", ok, {"target": True}),
        Case("target-list", ok, {"target": [24]}),
        Case("target-dict", ok, {"target": {"v": 24}}),
        Case("target-underscored", ok, {"target": "2_4"}),
        Case("target-arabic", ok, {"target": "٢٤"}),
        Case("target-fraction-text", ok, {"target": "48/2"}),
        Case("target-huge-fraction-text", ok, {"target": "1/" + "9" * 39}),
        Case("nums-1e400", ok, {"nums": [1, 1e400]}),
        Case("nums-text-1e400", ok, {"nums": "[1, 1e400]"}),
        Case("nums-dict", ok, {"nums": {"1": 1}}),
        Case("nums-huge-int", ok, {"nums": [10**5000, 1]}),
        Case("nums-float-1e300", ok, {"nums": [1e300, 4, 6]}),
        Case("nums-superscript", ok, {"nums": ["²", "4"]}),
        Case("nums-deep-json", ok, {"nums": "[" * 499 + "]" * 499}),
        Case("nums-100k", ok, {"nums": list(range(100_000))}),
        Case("nums-none-items", ok, {"nums": [None, 4]}),
        # math gold
        Case("gold-boxed-power-tower", ok, {"answer": "(10^{9999})^{9999}"}),
        Case("gold-sci-1e99999999999", ok, {"answer": "1e99999999999"}),
        Case("gold-10MB", ok, {"answer": "1" * (10 * MB)}, big=True),
        Case("gold-list", ok, {"answer": [1, 2]}),
        Case("gold-none", ok, {"answer": None}),
        Case("gold-nan-float", ok, {"answer": float("nan")}),
        Case("gold-int-5000-digits", ok, {"answer": 10**5000}),
        Case("solution-deep-frac", ok, {"answer": None, "solution": "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}" * 301}),
        # count / choice gold
        Case("count-gold-1e99999", ok, {"answer": "1e99999"}),
        Case("choice-gold-huge", ok, {"answer": "B" * MB}, big=True),
        # length columns
        Case("completion-ids-huge-int", ok, {"completion_ids": 10**5000}),
        Case("completion-ids-generator-like", ok, {"completion_ids": "x" * MB}, big=True),
    ]


# Countdown puzzles for the gold backend's solver: none is solvable
UNSOLVABLE = [
    ([1, 1, 1, 1, 1, 1], 1_000_003),
    ([97, 89, 83, 79, 73, 71], 10**12 + 39),
    ([2, 3, 5, 7, 11, 13], 999_983),
    ([1, 1, 1, 1, 1, 2], 997),
    ([7, 7, 7, 7], 10**6),
]


def build() -> list[Case]:
    return _completions() + _golds()


def small() -> list[Case]:
    """The cases cheap to move across processes (used where each one crosses a pipe)."""
    return [c for c in build() if not c.big]


def gold_for(reward: str, case: Case, columns: tuple[str, ...]) -> dict[str, Any]:
    """The reward's default gold, overridden by the case's gold columns the reward reads."""
    row = dict(GOLD.get(reward, {}))
    row.update({k: v for k, v in case.gold.items() if k in columns})
    return {k: v for k, v in row.items() if k in columns}
