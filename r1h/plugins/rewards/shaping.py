"""open-r1's shaping rewards: ``reasoning_steps``, ``cosine_length``, ``repetition_penalty``, ``soft_overlong``.

Defaults are open-r1's documented ones (``src/open_r1/rewards.py`` and ``configs.py``); every parameter can be set
by keyword: ``r1h.get_reward("cosine_length", max_len=4096)``.

Length, where a reward needs one (``cosine_length``, ``soft_overlong``), is counted in tokens when TRL passes
``completion_ids`` (it always does in GRPO), else in characters of the completion text (open-r1's cosine reward used
``len(content)``). ``length_unit`` forces ``"tokens"``, ``"chars"`` or ``"words"`` (whitespace-separated);
``"tokens"`` without ``completion_ids`` falls back to characters.

Defects of open-r1 fixed here:

- ``cosine_scaled_reward`` called ``verify(answer, gold)``; math-verify's order is ``verify(gold, answer)`` and the
  two are not symmetric. Correctness here is the ``math_accuracy`` reward (or any reward named by ``correctness``),
  which calls it the right way round.
- Its cosine schedule took ``cos(pi * len / max_len)`` unclamped, so past ``max_len`` the reward climbed back up and a
  2,000-character wrong answer scored like an empty one. Length is clamped at ``max_len``.
- An unparseable gold scored 1.0 ("skip"); it scores None here, which TRL treats as "no reward" for that item.
- Bounded work on any input (they run inline in the batch grader). A completion longer than ``max_chars``
  (400,000 characters, 3x the longest any recipe generates; 2,000,000 for ``soft_overlong``) is graded on its
  first ``max_chars`` characters:
  ``repetition_penalty`` measures repetition there (open-r1 built every n-gram of the whole text: a 50 MB completion
  took 26 s and 2.5 GB), ``reasoning_steps`` counts steps there and stops at ``min_steps`` matches, and
  ``soft_overlong`` counts it as at least ``max_chars`` long (past any sane ``max_completion_len``).
- ``reasoning_steps``'s ``^\\d+\\.`` was meant to match numbered lists at the start of *each line* (its docstring) but
  ran without MULTILINE, so it matched only at the very start of the text. MULTILINE is on here.
"""

from __future__ import annotations

import math
import re
from typing import Any

from r1h.harness.core.errors import ConfigError
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.reward import MAX_CHARS, Reward

LENGTH_UNITS = ("auto", "tokens", "chars", "words")
SHAPING_MAX_CHARS = 400_000  # n-gram sets and step scans cost ~0.3 s per MB: capped tighter than MAX_CHARS

# Linear: each alternative is a literal or a literal followed by one digit run.
STEP_PATTERN = re.compile(r"(Step \d+:|^\d+\.|\n-|\n\*|First,|Second,|Next,|Finally,)", re.MULTILINE)


def completion_length(text: str, completion_ids: Any = None, unit: str = "auto") -> int:
    """Length of a completion in ``unit`` (see the module docstring)."""
    if unit in ("auto", "tokens") and completion_ids is not None:
        try:
            return len(completion_ids)
        except TypeError:
            pass
    if unit == "words":
        return len(text.split())
    return len(text)


def _check_unit(reward: Reward) -> None:
    if reward.length_unit not in LENGTH_UNITS:
        raise ConfigError(
            f"reward {reward.__name__!r}: length_unit must be one of {', '.join(LENGTH_UNITS)}, not {reward.length_unit!r}"
        )


class ReasoningSteps(Reward):
    """open-r1's step-by-step reward: min(1, matches / 3) over "Step N:", numbered lines, bullets, transitions."""

    name = "reasoning_steps"
    version = "1"
    description = "open-r1: min(1, n/3) for 'Step N:', numbered lines, '-'/'*' bullets, First,/Second,/Next,/Finally,"
    columns = ()
    required_columns = ()
    isolate = False
    max_chars = SHAPING_MAX_CHARS
    min_steps: int = 3

    def param_names(self) -> tuple[str, ...]:
        return ("min_steps",)

    def __init__(self, name: str | None = None, **params: Any):
        super().__init__(name, **params)
        if not isinstance(self.min_steps, int) or self.min_steps < 1:
            raise ConfigError(f"reward {self.__name__!r}: min_steps must be a positive integer, not {self.min_steps!r}")

    def clip(self, text: str) -> str:
        return text[: self.max_chars or MAX_CHARS]

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float:
        count = 0
        for _ in STEP_PATTERN.finditer(completion[: self.max_chars or MAX_CHARS]):
            count += 1
            if count >= self.min_steps:
                return 1.0
        return min(1.0, count / self.min_steps)


class CosineLength(Reward):
    """open-r1's cosine-scaled reward: short correct answers earn most, short wrong answers lose most."""

    name = "cosine_length"
    version = "1"
    description = "open-r1 cosine-scaled correctness by length (clamped at max_len; gold first; bad gold -> None)"
    columns = ("answer", "solution", "completion_ids")
    required_columns = (("answer", "solution"),)  # completion_ids (TRL passes it) is optional
    isolate = True  # correctness runs math-verify

    min_value_wrong: float = -1.0
    max_value_wrong: float = -0.5
    min_value_correct: float = 0.5
    max_value_correct: float = 1.0
    max_len: int = 1000
    length_unit: str = "auto"
    correctness: Any = "math_accuracy"  # a reward name, or a Reward instance

    def param_names(self) -> tuple[str, ...]:
        return (
            "min_value_wrong",
            "max_value_wrong",
            "min_value_correct",
            "max_value_correct",
            "max_len",
            "length_unit",
            "correctness",
        )

    def __init__(self, name: str | None = None, **params: Any):
        super().__init__(name, **params)
        _check_unit(self)
        if not isinstance(self.max_len, (int, float)) or self.max_len <= 0:
            raise ConfigError(f"reward {self.__name__!r}: max_len must be positive, not {self.max_len!r}")
        self._judge: Reward | None = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_judge"] = None  # resolved again on first use in the receiving process
        return state

    def judge(self) -> Reward:
        """The correctness reward (resolved lazily, so importing this module never imports math-verify)."""
        if self._judge is None:
            if isinstance(self.correctness, str):
                import r1h

                self._judge = r1h.get_reward(self.correctness)
            else:
                self._judge = self.correctness
        return self._judge

    def scale(self, length: int, correct: bool) -> float:
        """The cosine schedule: length 0 gives the max value, ``max_len`` and beyond give the min value."""
        progress = min(max(length, 0) / self.max_len, 1.0)
        cosine = math.cos(progress * math.pi)
        if correct:
            low, high = self.min_value_correct, self.max_value_correct
        else:  # wrong: the shortest is punished most (min_value_wrong), the longest least (max_value_wrong)
            low, high = self.max_value_wrong, self.min_value_wrong
        return float(low + 0.5 * (high - low) * (1.0 + cosine))

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float | None:
        gold = {k: row[k] for k in ("answer", "solution") if k in row}
        verdict = self.judge().score(completion, prompt, **gold)
        if verdict is None:
            return None
        length = completion_length(completion, row.get("completion_ids"), self.length_unit)
        return self.scale(length, float(verdict) >= 1.0)

    def extract(self, completion: str, prompt: Any = None, **row: Any) -> str | None:
        gold = {k: row[k] for k in ("answer", "solution") if k in row}
        return self.judge().extract(completion, prompt, **gold)


class RepetitionPenalty(Reward):
    """open-r1's n-gram repetition penalty: max_penalty * (1 - distinct n-grams / n-grams), on lowercased words."""

    name = "repetition_penalty"
    version = "1"
    description = "open-r1: max_penalty * share of repeated word 3-grams (0.0 for none, -1.0 for all)"
    columns = ()
    required_columns = ()
    isolate = False
    max_chars = SHAPING_MAX_CHARS
    ngram_size: int = 3
    max_penalty: float = -1.0

    def param_names(self) -> tuple[str, ...]:
        return ("ngram_size", "max_penalty")

    def __init__(self, name: str | None = None, **params: Any):
        super().__init__(name, **params)
        if self.max_penalty > 0:
            raise ConfigError(f"reward {self.__name__!r}: max_penalty {self.max_penalty} should not be positive")
        if not isinstance(self.ngram_size, int) or self.ngram_size < 1:
            raise ConfigError(f"reward {self.__name__!r}: ngram_size must be a positive integer")

    def clip(self, text: str) -> str:
        return text[: self.max_chars or MAX_CHARS]

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float:
        words = completion[: self.max_chars or MAX_CHARS].lower().split()
        n = self.ngram_size
        if len(words) < n:
            return 0.0
        total = len(words) - n + 1  # open-r1 listed every n-gram first; the set alone is 3x faster, same value
        scaling = 1.0 - len(set(zip(*[words[i:] for i in range(n)], strict=False))) / total
        return float(scaling * self.max_penalty) if scaling else 0.0


class SoftOverlong(Reward):
    """DAPO's soft overlong punishment (open-r1/TRL): 0 up to max-cache, linear to -1 at max, -1 beyond."""

    name = "soft_overlong"
    version = "1"
    description = (
        "DAPO soft overlong punishment: 0 below max_completion_len - soft_punish_cache, ramps to -1 at the max"
    )
    columns = ("completion_ids",)
    required_columns = ()  # without completion_ids the length is counted on the text
    isolate = False
    max_completion_len: int = 16384
    soft_punish_cache: int = 4096
    length_unit: str = "auto"

    def param_names(self) -> tuple[str, ...]:
        return ("max_completion_len", "soft_punish_cache", "length_unit")

    def __init__(self, name: str | None = None, **params: Any):
        super().__init__(name, **params)
        _check_unit(self)
        if not 0 <= self.soft_punish_cache <= self.max_completion_len:
            raise ConfigError(
                f"reward {self.__name__!r}: need 0 <= soft_punish_cache ({self.soft_punish_cache}) "
                f"<= max_completion_len ({self.max_completion_len})"
            )

    def clip(self, text: str) -> str:
        return text[: self.max_chars or MAX_CHARS]

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float:
        length = completion_length(completion, row.get("completion_ids"), self.length_unit)
        free = self.max_completion_len - self.soft_punish_cache
        if length <= free:
            return 0.0
        if length <= self.max_completion_len:
            return (free - length) / self.soft_punish_cache
        return -1.0


@hookimpl
def r1h_register_rewards(register):
    for cls in (ReasoningSteps, CosineLength, RepetitionPenalty, SoftOverlong):
        register(
            cls.name,
            f"r1h.plugins.rewards.shaping:{cls.__name__}",
            version=cls.version,
            description=cls.description,
        )
