"""``choice_accuracy``: 1.0 when the letter of the final answer (A-D) equals the gold letter, else 0.0.

The predicted letter comes only from explicit final-answer statements: "Answer: X", "the answer is (X)",
``\\boxed{X}``, ``<answer>X</answer>``, or a last line that holds a lone letter. The last such statement wins; a letter
merely mentioned in the reasoning ("option B looks wrong") does not count, and text inside ``<think>...</think>`` is
ignored when ``</think>`` is present. Every regex here uses bounded quantifiers only, so grading is linear in the
length of the completion (``isolate = False``: it runs inline in the batch grader).
"""

from __future__ import annotations

import re
from typing import Any

from r1h.harness.hookspecs import hookimpl
from r1h.harness.reward import Reward

LETTERS = "ABCD"
_L = r"([A-D])(?![A-Za-z0-9_])"  # a capital letter standing alone ("A" in "Answer" does not count)

_STATEMENTS = (
    # "Answer: B", "The final answer is (C)", "the correct answer is **D**", "answer is option A", "Answer = $B$"
    re.compile(
        r"(?i:answer)(?:\s{0,3}(?i:is|would be|should be|will be|=|:)){0,1}"
        r"[\s:*(\[{$]{0,8}(?:\\text(?:bf)?\{)?(?:(?i:option|choice)\s{0,3})?[(\[]{0,1}" + _L
    ),
    # \boxed{B}, \boxed{\text{B}}, \boxed{(B)}
    re.compile(r"\\boxed\s{0,3}\{\s{0,3}(?:\\text(?:bf)?\{\s{0,3})?[(\[]{0,1}\s{0,3}" + _L),
    # <answer>B</answer>, <answer> (C) </answer>
    re.compile(r"<answer>[\s*(\[$]{0,8}" + _L),
)
_LONE_LINE = re.compile(r"[\s*_#>$(\[{]{0,12}" + r"([A-D])" + r"[\s*_$.)\]}:]{0,12}")
_GOLD = re.compile(r"\s{0,8}\(?([A-Da-d])\)?[.\s]{0,8}")


def graded_text(text: str) -> str:
    at = text.rfind("</think>")
    return text if at < 0 else text[at + len("</think>") :]


def gold_letter(answer: Any) -> str | None:
    """The gold letter A-D from the ``answer`` column ("B", "b", "(B)"), else None."""
    if not isinstance(answer, str) or len(answer) > 32:
        return None
    m = _GOLD.fullmatch(answer)
    return m.group(1).upper() if m else None


def predicted_letter(completion: str) -> str | None:
    """The letter of the last explicit final-answer statement (or of a lone-letter last line), else None."""
    text = graded_text(completion or "")
    best, best_at = None, -1
    for pattern in _STATEMENTS:
        for m in pattern.finditer(text):
            if m.start(1) > best_at:
                best, best_at = m.group(1), m.start(1)
    lines = text.rstrip().rsplit("\n", 1)
    last = lines[-1] if lines else ""
    if len(last) <= 40:
        m = _LONE_LINE.fullmatch(last)
        if m is not None:
            at = len(text.rstrip()) - len(last) + m.start(1)
            if at > best_at:
                best = m.group(1)
    return best


class ChoiceAccuracy(Reward):
    """1.0 when the final answer's letter (Answer: X, answer is (X), \\boxed{X}, a lone last line) equals the gold."""

    name = "choice_accuracy"
    version = "1"
    description = "1.0 when the final answer's letter (Answer: X, \\boxed{X}, lone last line) equals the gold A-D"
    columns = ("answer",)
    required_columns = ("answer",)
    isolate = False

    def extract(self, completion: str, prompt: Any = None, **row: Any) -> str | None:
        return predicted_letter(completion)

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float | None:
        gold = gold_letter(row.get("answer"))
        if gold is None:
            return None
        return 1.0 if predicted_letter(completion) == gold else 0.0

    def equivalent(self, a: str, b: str) -> bool:
        return a.strip().upper() == b.strip().upper()


@hookimpl
def r1h_register_rewards(register):
    register(
        "choice_accuracy",
        "r1h.plugins.rewards.choice:ChoiceAccuracy",
        version=ChoiceAccuracy.version,
        description=ChoiceAccuracy.description,
    )
