"""Thinking and truncation: per-sample ``think_tokens`` / ``answer_tokens`` / ``think_closed``, and the per-benchmark
truncation metrics (truncated rate, pass@1 on finished and on truncated samples, length percentiles, accuracy at
budget). Standard library only.

**How tokens are counted.** The grader has no tokenizer, and a backend reports one figure per sample: ``num_tokens``,
the generated tokens (exact for vLLM and transformers, from ``usage`` for an OpenAI server, words for the gold backend).
The split is an approximation anchored on that figure:

- ``answer_tokens``: the text after the last ``</think>`` counted with :func:`approx_tokens` (one token per punctuation
  mark, one per 4 characters of a word or number run). Against SmolLM2's BPE tokenizer on the 1,000 labeled MATH-500
  completions' last 300 characters: 0.996x in total, per-text error median 10%, p90 24% (``perf/approx_tokens.py``).
  The answer is short, so its absolute error is small.
- ``think_tokens``: ``num_tokens - answer_tokens`` (the exact total less the estimate), so the two add up to the
  backend's count. Splitting ``num_tokens`` in proportion to the characters would give the long thinking part the
  error of the whole text instead.
- A backend that reports no count (``num_tokens`` 0) gets :func:`approx_tokens` for both parts.

**Which samples have a think section.** A sample whose completion holds ``<think>`` or ``</think>``, or whose prompt
ends with a ``<think>`` prefill (mini-r1's assistant turn), has one; ``think_closed`` says whether ``</think>`` came.
Chat templates that open ``<think>`` themselves (R1-Distill) leave no tag in a completion that never closed it, so
within a benchmark where any sample has a think section, a sample without tags counts as thinking that never closed.

**Budgets.** A sample is correct at budget B when it is correct, finished (``finish_reason`` is not ``length``) and
used at most B tokens. pass@1 at B is averaged per problem like pass@1, at B = 32, 64, ... below ``max_tokens``, and
at ``max_tokens`` itself. It tells, from one run, what a smaller ``--max-tokens`` would have scored.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from r1h.harness.core.types import prompt_tail

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
MIN_BUDGET = 32
_PIECE = re.compile(r"\w+|[^\w\s]")


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


def approx_tokens(text: str) -> int:
    """A tokenizer-free token estimate: each punctuation mark is one token, each run of word characters one token per
    4 characters (rounded up)."""
    return sum(1 + (len(p) - 1) // 4 for p in _PIECE.findall(text or ""))


def measure(completion: str, prompt: Any = None, num_tokens: int = 0) -> dict[str, Any]:
    """``think_tokens``, ``answer_tokens`` and ``think_closed`` of one sample (all None without a think section)."""
    text = completion or ""
    close = text.rfind(THINK_CLOSE)
    if close < 0 and THINK_OPEN not in text and not think_prefill(prompt):
        return {"think_tokens": None, "answer_tokens": None, "think_closed": None}
    answer_text = "" if close < 0 else text[close + len(THINK_CLOSE) :]
    answer = approx_tokens(answer_text)
    if num_tokens and num_tokens > 0:
        answer = min(answer, int(num_tokens))
        think = int(num_tokens) - answer
    else:
        think = approx_tokens(text if close < 0 else text[:close])
    return {"think_tokens": think, "answer_tokens": answer, "think_closed": close >= 0}


def sample_lengths(record: Mapping[str, Any]) -> dict[str, Any]:
    """The length fields of a stored sample record: ``tokens`` (``num_tokens``, or the estimate when the backend gave
    none) and the think fields (stored ones when the record has them, else measured now: older runs)."""
    completion = record.get("completion") or ""
    num = int(record.get("num_tokens") or 0)
    fields = ({k: record.get(k) for k in ("think_tokens", "answer_tokens", "think_closed")}
              if "think_closed" in record else measure(completion, record.get("prompt"), num))
    return {"tokens": num if num > 0 else approx_tokens(completion), **fields}


def _quantile(values: Sequence[float], q: float) -> float | None:
    """Linear-interpolated quantile (numpy's default) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _spread(values: Sequence[float]) -> dict[str, float | None]:
    return {"median": _quantile(values, 0.5), "p90": _quantile(values, 0.9)}


def budgets(max_tokens: int) -> list[int]:
    """32, 64, ... below ``max_tokens``, then ``max_tokens``."""
    out, b = [], MIN_BUDGET
    while b < max_tokens:
        out.append(b)
        b *= 2
    return [*out, max_tokens] if max_tokens > 0 else out


def _rate(flags: Sequence[bool]) -> float | None:
    return sum(flags) / len(flags) if flags else None


def truncation_summary(groups: Mapping[str, Sequence[Mapping[str, Any]]], max_tokens: int | None = None
                       ) -> dict[str, Any]:
    """Per-benchmark truncation metrics from records grouped by problem. Each record has ``correct``,
    ``finish_reason``, ``tokens`` and, where measured, ``think_tokens`` / ``answer_tokens`` / ``think_closed``."""
    records = [r for group in groups.values() for r in group]
    finished = [r for r in records if r.get("finish_reason") != "length"]
    truncated = [r for r in records if r.get("finish_reason") == "length"]
    has_think = any(r.get("think_closed") is not None for r in records)
    lengths = {"tokens": _spread([int(r.get("tokens") or 0) for r in records])}
    out: dict[str, Any] = {
        "truncated_rate": _rate([r.get("finish_reason") == "length" for r in records]),
        "pass@1_finished": _rate([bool(r.get("correct")) for r in finished]),
        "pass@1_truncated": _rate([bool(r.get("correct")) for r in truncated]),
        "n_finished": len(finished),
        "think_closed_rate": None,
        "lengths": lengths,
        "budget_curve": {},
    }
    if has_think:
        # a sample without tags in a thinking benchmark: the template opened <think> and it never closed
        think = [r.get("think_tokens") if r.get("think_closed") is not None else r.get("tokens") for r in records]
        answer = [r.get("answer_tokens") if r.get("think_closed") is not None else 0 for r in records]
        out["think_closed_rate"] = _rate([bool(r.get("think_closed")) for r in records])
        lengths["think_tokens"] = _spread([int(v or 0) for v in think])
        lengths["answer_tokens"] = _spread([int(v or 0) for v in answer])
    top = int(max_tokens or max((int(r.get("tokens") or 0) for r in records), default=0))
    if groups:
        for b in budgets(top):
            per_problem = [sum(1 for r in g if r.get("correct") and r.get("finish_reason") != "length"
                               and int(r.get("tokens") or 0) <= b) / len(g) for g in groups.values() if g]
            out["budget_curve"][str(b)] = sum(per_problem) / len(per_problem)
    return out
