"""``math_accuracy``: 1.0 when the final answer equals the gold (math-verify), else 0.0.

The final answer is found *before* anything is parsed: the last balanced ``\\boxed{...}`` of the graded text (the text
after the last ``</think>``) is cut out in linear time and only that short string goes to math-verify. Text without a
box falls back to math-verify's own extraction over a bounded tail. This is what keeps degenerate completions (thousands
of repeated ``\\boxed{}``) at a few milliseconds instead of math-verify's 5 s timeout. A boxed answer is parsed only
when its text differs from the gold's (up to spacing and sizing macros) and the two are not both plain integers;
latex2sympy's ANTLR parse is most of the cost of grading (``perf/grade_labeled.py``).

math-verify is called with its SIGALRM timeouts off (``parsing_timeout=None``, ``timeout_seconds=None``); budgets are
enforced by the batch grader (``r1h.harness.grading.pool``), which runs this reward in killable worker processes
(``isolate = True``). Inputs that could still blow sympy up (power towers, huge exponents or factorials, absurd
nesting, overlong answers) are rejected before sympy sees them and score 0.0.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.reward import Reward
from r1h.plugins.rewards import _boxes, _latex2sympy, _numbers
from r1h.plugins.rewards._boxes import BOX_OPENERS, MAX_BOX_CANDIDATES

__all__ = ["BOX_OPENERS", "MAX_BOX_CANDIDATES", "MathAccuracy", "final_answer", "gold_answer", "last_boxed"]

MAX_ANSWER_CHARS = 400  # the longest MATH-500 gold is 53 characters
FALLBACK_TAIL_CHARS = 3000  # without a box, math-verify extracts from this much of the end of the text
MAX_NESTING = 8  # brackets of any kind in an answer; MATH-500 golds nest at most 2 deep, boxed answers 3
MAX_TEXT_NESTING = 10  # in a free-text tail; latex2sympy is exponential in nested \frac depth (20 deep: 25 s)
MAX_EXPONENT_DIGITS = 4  # 10^{9999} is fine for sympy, 9^{99999999} is not
MAX_FACTORIAL_DIGITS = 4

_ZERO_PADDED = re.compile(r"^\s*\$?\s*0+(\d+)\s*\$?\s*$")
_POWER = re.compile(r"\^|\*\*")  # in an answer
# in free text: ** only between operands (9**9, x ** 2), since "**Final Answer**" is markdown bold
_TEXT_POWER = re.compile(r"\^|(?<=[\w)])[ \t]?\*\*[ \t]?(?=[\w(])")
_SIMPLE_EXPONENT = re.compile(r"[-+]?[ \t]{0,3}[0-9a-zA-Z.]+")
_SPACES = re.compile(r"[ \t]*")
_LONG_DIGITS = re.compile(r"\d{" + str(MAX_EXPONENT_DIGITS + 1) + r",}")
_BIG_FACTORIAL = re.compile(r"(?<!\d)\d{" + str(MAX_FACTORIAL_DIGITS + 1) + r",}\s*!")


def graded_text(text: str) -> str:
    """The part of a completion that is graded: what follows the last ``</think>``, or everything."""
    at = text.rfind("</think>")
    return text if at < 0 else text[at + len("</think>") :]


def last_boxed(text: str, limit: int = MAX_ANSWER_CHARS) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``) in ``text``, else None.

    Boxes cut off by the end of the text (truncated generations) are skipped, at most MAX_BOX_CANDIDATES of them. A box
    longer than ``limit`` is returned cut at ``limit + 1`` characters, which the answer guards then reject.
    """
    return _boxes.last_boxed(text, limit)


def final_boxed(text: str, limit: int = MAX_ANSWER_CHARS) -> str | None:
    """The boxed final answer: the last box, or the answer set of adjacent boxes ending there ("1, 2, 3")."""
    return _boxes.final_boxed(text, limit)[0]


_BRACKETS = re.compile(r"[{}()\[\]]")


def _nesting(text: str) -> int:
    depth = worst = 0
    for ch in _BRACKETS.findall(text):  # only the brackets: a 3,000-character tail holds a few hundred
        if ch in "{([":
            depth += 1
            worst = max(worst, depth)
        elif ch in "})]":
            depth = max(0, depth - 1)
    return worst


def _hostile_end(text: str, power: re.Pattern = _POWER) -> int:
    """End of the last construct that could make sympy run away (power tower, huge exponent, huge factorial), or -1."""
    end = -1
    for m in power.finditer(text):
        stop, token, chained = _exponent(text, m.end())
        if chained or power.search(token) or _LONG_DIGITS.search(token):
            end = max(end, stop)  # a^{b^{c}}, 9^9^9, 9**9**9, 9^{99999}
        elif chained is False and end >= 0 and m.start() <= end + 1:
            end = max(end, stop)  # the last storey of a tower
    for m in _BIG_FACTORIAL.finditer(text):
        end = max(end, m.end())
    return end


def _too_hostile(answer: str) -> bool:
    """True for an answer that could make sympy run away: it scores 0.0 without being parsed."""
    answer = _numbers.normalize_answer(answer) or answer  # 10^{10\,000} and 10^{0xFFFFF} are huge exponents too
    if len(answer) > MAX_ANSWER_CHARS or "\x00" in answer or _nesting(answer) > MAX_NESTING:
        return True
    return _hostile_end(answer) >= 0


def safe_tail(text: str) -> str:
    """The part of a free-text tail that math-verify may see: after the last hostile construct; "" if too nested."""
    text = text.replace("\x00", "")
    if _nesting(text) > MAX_TEXT_NESTING:
        return ""
    cut = _hostile_end(text, _TEXT_POWER)
    return text if cut < 0 else text[cut:]


def _exponent(text: str, start: int) -> tuple[int, str, bool]:
    """The exponent after a power operator ending at ``start``: where it stops, its text (a braced group, bounded
    scan, or a simple token), and whether another power operator follows at once (9^9^9 is a tower)."""
    at = _SPACES.match(text, start).end()
    if text.startswith("{", at):
        close = _boxes.balanced(text, at, MAX_ANSWER_CHARS)
        stop = len(text) if close < 0 else close + 1
    else:
        m = _SIMPLE_EXPONENT.match(text, at)
        stop = m.end() if m else at
    follow = _SPACES.match(text, stop).end()
    return stop, text[at:stop], text.startswith(("^", "**"), follow)


def _unpad(answer: str) -> str:
    """AIME's zero-padded integers ("025") read as the integer (25)."""
    m = _ZERO_PADDED.match(answer)
    return m.group(1) if m else answer


@lru_cache(maxsize=1)
def _configs():
    import math_verify.grader
    import math_verify.parser
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    # Budgets are enforced by r1h.harness.grading.pool, so math-verify's "timeout is disabled" warning is only noise.
    math_verify.parser.TIMEOUT_WARNING_SHOWN = True
    math_verify.grader.TIMEOUT_WARNING_SHOWN = True
    _latex2sympy.install()  # the same results as latex2sympy alone, faster (see _latex2sympy)
    boxed = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    default = [LatexExtractionConfig(), ExprExtractionConfig()]
    return boxed, default


def _parse(text: str, config) -> list:
    from math_verify import parse

    return parse(text, extraction_config=config, parsing_timeout=None)


@lru_cache(maxsize=4096)
def parse_answer(answer: str) -> tuple:
    """An extracted answer string as math-verify objects (empty when unreadable or hostile)."""
    answer = _numbers.normalize_answer(_unpad(answer.strip()))  # 1\,000, 0x10, 2e3 (see _numbers)
    if not answer or _too_hostile(answer):
        return ()
    boxed, _ = _configs()
    parsed = _parse("\\boxed{" + answer + "}", boxed)
    if not parsed:
        parsed = _parse("$" + answer + "$", boxed)
    return tuple(parsed)


_LATEX_NOISE = re.compile(r"\s+|\\left|\\right|\\!|\\,|\\;|\$")


def _same_text(a: str, b: str) -> bool:
    """The same answer written the same way, up to spacing and sizing macros (no parse needed)."""
    return _LATEX_NOISE.sub("", _unpad(a)) == _LATEX_NOISE.sub("", _unpad(b))


def gold_answer(answer: Any = None, solution: Any = None) -> str | None:
    """The gold answer string: the ``answer`` column, else the last box of the ``solution`` column."""
    if answer is not None and not isinstance(answer, (str, int, float)):
        answer = None
    if isinstance(answer, bool):
        answer = None
    if answer is not None and str(answer).strip():
        return str(answer).strip()
    if isinstance(solution, str) and solution.strip():
        boxed = _boxes.final_boxed(solution, MAX_ANSWER_CHARS, _boxes.GOLD_GAP)[0]
        if boxed and boxed.strip():
            return boxed.strip()
    return None


def _exact_value(x: Any):
    """An exact rational value of a closed numeric expression (factorials evaluated; they are size-guarded), else None."""
    import sympy

    if not isinstance(x, sympy.Basic) or not x.is_number or x.free_symbols:
        return None
    value = x.doit() if x.has(sympy.factorial) else x
    return value if value.is_Rational else None


def _exact_mismatch(gold: tuple, pred: tuple) -> bool:
    """math-verify rounds numbers to 6 decimals, so 1/2004! "equals" 1/2006!. Exact rationals that differ by less
    than that rounding are different answers."""
    g = next((v for v in map(_exact_value, gold) if v is not None), None)
    p = next((v for v in map(_exact_value, pred) if v is not None), None)
    if g is None or p is None or g == p:
        return False
    return abs(g - p) < 1e-5


def verify_answers(gold: tuple, pred: tuple) -> bool:
    from math_verify import verify

    if not gold or not pred:
        return False
    if not verify(list(gold), list(pred), timeout_seconds=None):
        return False
    return not _exact_mismatch(gold, pred)


def _fallback(window: str) -> tuple[str | None, tuple]:
    """math-verify's own extraction (its default priorities) over a free-text window."""
    window = safe_tail(_numbers.normalize_text(window))  # before the guards: 1e999999 is a huge power
    if not window.strip():
        return None, ()
    _, default = _configs()
    parsed = _parse(window, default)
    if not parsed:
        return None, ()
    text = parsed[-1] if isinstance(parsed[-1], str) else str(parsed[0])
    return text.strip()[:MAX_ANSWER_CHARS], tuple(parsed)


# "The final answer is $10,455$", "Final answer: 12": a value right after the words, not "the final answer above ..."
_FINAL_STATEMENT = re.compile(r"(?i:final answer)(?:\s{1,3}is)?\s{0,3}:?\s{0,3}(?:\*\*\s{0,2})?(?=[$\\\d(\[-])")


def _statement_after(tail: str) -> tuple[str | None, tuple]:
    """A "final answer is ..." statement written after the last box (Minerva style: an intermediate
    ``\\boxed{255}`` in the working, then "Final Answer: The final answer is $10,455$."), else (None, ())."""
    window = tail[-FALLBACK_TAIL_CHARS:]
    found = list(_FINAL_STATEMENT.finditer(window))
    if not found:
        return None, ()
    at = found[-1].start()
    if any(o in window[at:] for o in BOX_OPENERS):
        return None, ()  # the statement holds a (truncated) box of its own
    return _fallback(window[at:])


@lru_cache(maxsize=64)  # grade_one asks extract() then score() of the same text
def _final(completion: str) -> tuple[str | None, tuple | None]:
    """The final answer string and its parse, or None for a boxed answer that is parsed only when needed."""
    tail = graded_text(completion)
    boxed, stop = _boxes.final_boxed(tail, MAX_ANSWER_CHARS)
    if boxed is not None:
        if stop < len(tail):
            answer, parsed = _statement_after(tail[stop:])
            if parsed:
                return answer, parsed
        boxed = boxed.strip()
        return boxed, (None if boxed else ())
    return _fallback(tail[-FALLBACK_TAIL_CHARS:])


def final_answer(completion: str) -> tuple[str | None, tuple]:
    """The final answer string of a completion and its math-verify parse (empty when unreadable).

    In order: a "final answer is ..." statement after the last box; the last box, or the answer set of adjacent
    boxes ending there (``r1h.plugins.rewards._boxes``); without a box, math-verify's extraction over the tail.
    """
    answer, parsed = _final(completion)
    return answer, (parse_answer(answer) if parsed is None else parsed)


_INTEGER = re.compile(r"-?\d{1,400}")


def _integers(a: str, b: str) -> tuple[int, int] | None:
    """Both answers as plain integers ("42", "-7", AIME's "025"), else None: no parse needed to compare them."""
    a, b = _unpad(a).strip(), _unpad(b).strip()
    if _INTEGER.fullmatch(a) and _INTEGER.fullmatch(b):
        return int(a), int(b)
    return None


@lru_cache(maxsize=4096)  # n samples of one problem repeat their answers (pass@k runs draw 16-64 per problem)
def _boxed_verdict(gold_text: str, answer: str) -> float | None:
    gold = parse_answer(gold_text)
    if not gold:
        return None
    both = _integers(answer, gold_text)
    if both is not None:
        return 1.0 if both[0] == both[1] else 0.0  # what verify says of two integers, without sympy
    return 1.0 if verify_answers(gold, parse_answer(answer)) else 0.0


class MathAccuracy(Reward):
    """1.0 when the final answer (last \\boxed{} after </think>) equals the gold under math-verify, else 0.0."""

    name = "math_accuracy"
    version = "1"
    description = "1.0 when the final \\boxed{} answer (after </think>) equals the gold under math-verify"
    columns = ("answer", "solution")
    required_columns = (("answer", "solution"),)  # either: the answer, or a solution with a \boxed{}
    isolate = True

    def final_answer(self, completion: str) -> tuple[str | None, tuple]:
        """The final answer string of a completion and its math-verify parse (empty when unreadable)."""
        return final_answer(completion or "")

    def extract(self, completion: str, prompt: Any = None, **row: Any) -> str | None:
        return _final(completion or "")[0]

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float | None:
        gold_text = gold_answer(row.get("answer"), row.get("solution"))
        if gold_text is None:
            return None
        answer, pred = _final(completion or "")
        if answer and _same_text(answer, gold_text) and not _too_hostile(answer):
            return 1.0  # the common case: no parse, no verify
        if answer and pred is None:  # a boxed answer: its text is all that counts
            return _boxed_verdict(gold_text, answer)
        gold = parse_answer(gold_text)
        if not gold:
            return None
        return 1.0 if verify_answers(gold, pred) else 0.0

    def equivalent(self, a: str, b: str) -> bool:
        if a.strip() == b.strip():
            return True
        try:
            return verify_answers(parse_answer(a), parse_answer(b))
        except Exception:
            return False


@hookimpl
def r1h_register_rewards(register):
    register(
        "math_accuracy",
        "r1h.plugins.rewards.math:MathAccuracy",
        version=MathAccuracy.version,
        description=MathAccuracy.description,
    )
