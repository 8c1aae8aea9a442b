"""Tag handling shared by the format, countdown and counting rewards. Linear time, standard library only.

Everything here scans with ``str.find``/``str.count`` (no backtracking regexes), so a 1 MB completion costs a few
milliseconds.
"""

from __future__ import annotations

from typing import Any

from r1h.harness.types import prompt_tail

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"


def think_prefill(prompt: Any) -> str:
    """The ``<think>`` prefill the model continues from, or "" when the prompt has none.

    A prompt is prefilled when the text it ends with (``prompt_tail``: the string itself, or the last message of a
    chat) ends with ``<think>`` followed only by whitespace, as in mini-r1's assistant turn
    ``"Let me solve this step by step.\\n<think>"`` or an R1-Distill chat template rendered to a string
    (``...<｜Assistant｜><think>\\n``). For a chat, only an *assistant* last message is a prefill: a user turn that
    happens to end with ``<think>`` is not continued by the model. The return value is the tail from ``<think>`` on
    (e.g. ``"<think>\\n"``), so prepending it to the completion rebuilds the text the model actually produced.
    """
    if prompt is None:
        return ""
    if isinstance(prompt, (list, tuple)) and prompt:
        last = prompt[-1]
        if isinstance(last, dict) and last.get("role", "assistant") != "assistant":
            return ""
    try:
        tail = prompt_tail(prompt)
    except Exception:  # an odd prompt object is simply not a prefill
        return ""
    if not isinstance(tail, str):
        return ""
    at = tail.rfind(THINK_OPEN)
    if at == -1 or tail[at + len(THINK_OPEN) :].strip():
        return ""
    return tail[at:]


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
