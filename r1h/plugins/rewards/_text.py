"""Tag handling shared by the format, countdown and counting rewards. Linear time, standard library only.

Everything here scans with ``str.find``/``str.count`` (no backtracking regexes), so a 1 MB completion costs a few
milliseconds.
"""

from __future__ import annotations

from typing import Any

from r1h.harness.eval.thinking import THINK_CLOSE, THINK_OPEN, think_prefill

__all__ = ["ANSWER_CLOSE", "ANSWER_OPEN", "THINK_CLOSE", "THINK_OPEN", "last_answer", "outside_think", "think_prefill",
           "with_prefill"]
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"


def with_prefill(text: str, prompt: Any) -> str:
    """The completion as if it began with the prompt's ``<think>`` prefill (unchanged when there is none)."""
    prefix = think_prefill(prompt)
    return prefix + text if prefix else text


def outside_think(text: str) -> str:
    """``text`` with every ``<think>…</think>`` span removed (the part a grader may read).

    - Spans are taken in order: a ``<think>`` runs to the next ``</think>``.
    - An unclosed ``<think>`` hides everything after it (the model never finished thinking).
    - A ``</think>`` that comes before any ``<think>`` closes a prefilled think block: everything before it is
      thinking (R1-Distill templates and mini-r1 put ``<think>`` in the prompt).
    """
    first_close = text.find(THINK_CLOSE)
    first_open = text.find(THINK_OPEN)
    pos = 0
    if first_close != -1 and (first_open == -1 or first_close < first_open):
        pos = first_close + len(THINK_CLOSE)
    parts: list[str] = []
    while True:
        start = text.find(THINK_OPEN, pos)
        if start == -1:
            parts.append(text[pos:])
            break
        parts.append(text[pos:start])
        end = text.find(THINK_CLOSE, start + len(THINK_OPEN))
        if end == -1:
            break
        pos = end + len(THINK_CLOSE)
    return "".join(parts)


def last_answer(text: str) -> str | None:
    """The contents of the last closed ``<answer>…</answer>`` block, or None."""
    end = text.rfind(ANSWER_CLOSE)
    if end == -1:
        return None
    start = text.rfind(ANSWER_OPEN, 0, end)
    if start == -1:
        return None
    start += len(ANSWER_OPEN)
    return text[start : text.find(ANSWER_CLOSE, start)]  # "<answer>1</answer> x </answer>" -> "1"
