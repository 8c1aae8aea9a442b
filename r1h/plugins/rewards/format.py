"""Format rewards: ``think_format`` (strict, all-or-nothing) and ``tag_count`` (open-r1's 0.25-per-tag credit).

Both read the completion as if it began with the prompt's ``<think>`` prefill when there is one (mini-r1 and the
R1-Distill chat templates put ``<think>`` in the prompt, so the model never writes it). Both are linear-time string
scans: no regex at all.

Differences from open-r1's ``format_reward`` (``^<think>\\n.*?\\n</think>\\n<answer>\\n.*?\\n</answer>$`` with
``re.DOTALL | re.MULTILINE``):

- open-r1's ``$`` under MULTILINE matches at any line end and its lazy ``.*?`` may run across tags, so
  ``<think>…</think>\\n<answer>\\na\\n</answer>\\n<answer>\\nb\\n</answer>`` scores 1.0 there: two answer blocks.
  Here every tag must occur exactly once.
- Older copies of that regex lacked DOTALL, so a multi-line think block failed. Here any content (newlines included)
  is allowed inside the tags.
- open-r1 insists on newlines right inside each tag; here the tags may be separated by any whitespace (or none).
"""

from __future__ import annotations

from typing import Any

from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.reward import Reward
from r1h.plugins.rewards._text import ANSWER_CLOSE, ANSWER_OPEN, THINK_CLOSE, THINK_OPEN, with_prefill


def well_formed(text: str) -> bool:
    """Exactly one ``<think>…</think>`` then exactly one ``<answer>…</answer>``, only whitespace around and between.

    The answer must hold something other than whitespace; the think block may be empty.
    """
    body = text.strip()
    if not (body.startswith(THINK_OPEN) and body.endswith(ANSWER_CLOSE)):
        return False
    if any(body.count(tag) != 1 for tag in (THINK_OPEN, THINK_CLOSE, ANSWER_OPEN, ANSWER_CLOSE)):
        return False
    think_end = body.find(THINK_CLOSE)
    answer_start = body.find(ANSWER_OPEN)
    if answer_start < think_end:  # <think><answer>…</think>… or </think> inside the answer
        return False
    if body[think_end + len(THINK_CLOSE) : answer_start].strip():
        return False
    answer = body[answer_start + len(ANSWER_OPEN) : -len(ANSWER_CLOSE)]
    return bool(answer.strip())


class ThinkFormat(Reward):
    """1.0 for exactly one <think>…</think> followed by exactly one <answer>…</answer> and nothing else."""

    name = "think_format"
    version = "1"
    description = "1.0 for exactly one <think>...</think> then exactly one <answer>...</answer>, nothing else"
    columns = ()
    required_columns = ()
    isolate = False

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float:
        return 1.0 if well_formed(with_prefill(completion, prompt)) else 0.0


# open-r1's tag_count_reward counts these four strings; each present exactly once earns 0.25.
TAGS = ("<think>\n", "\n</think>\n", "\n<answer>\n", "\n</answer>")


class TagCount(Reward):
    """open-r1's partial format credit: 0.25 for each of four newline-wrapped tags that occurs exactly once."""

    name = "tag_count"
    version = "1"
    description = (
        "open-r1 partial credit: 0.25 per '<think>\\n', '\\n</think>\\n', '\\n<answer>\\n', '\\n</answer>' seen once"
    )
    columns = ()
    required_columns = ()
    isolate = False

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float:
        text = with_prefill(completion, prompt)
        return 0.25 * sum(1 for tag in TAGS if text.count(tag) == 1)


@hookimpl
def r1h_register_rewards(register):
    register(
        "think_format",
        "r1h.plugins.rewards.format:ThinkFormat",
        version=ThinkFormat.version,
        description=ThinkFormat.description,
    )
    register(
        "tag_count",
        "r1h.plugins.rewards.format:TagCount",
        version=TagCount.version,
        description=TagCount.description,
    )
