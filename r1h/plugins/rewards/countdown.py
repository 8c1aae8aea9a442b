"""``countdown_equation``: the last ``<answer>`` must be an equation reaching ``target`` with every number once.

mini-deepseek-r1 and TinyZero grade this with ``eval()`` on model text, which hangs on ``95**78**6**88`` and runs
whatever the model writes. Here the answer is parsed with :mod:`ast` and only a tiny arithmetic grammar is walked:

- ``Expression``, ``BinOp`` with ``+ - * /``, and non-negative integer ``Constant`` leaves. Nothing else: ``**``,
  ``//``, ``%``, names, calls, attributes, subscripts, floats, strings and comparisons score 0.0 without evaluation.
- No unary minus or plus. The task allows the four binary operations on the given numbers; ``-5`` would be a new
  operation (negation) applied to a given number, and ``-(a - b)`` is always writable as ``(b - a)``. So
  ``-3 + 10`` scores 0.0 even when it reaches the target.
- Parentheses are free (``ast`` drops them), and so is whitespace: every run of spaces, tabs or line breaks inside
  ``<answer>`` reads as one space before parsing (``<answer>1 +\\n2 + 3</answer>`` is ``1 + 2 + 3``).
- ``expr = target`` is accepted (the mini-r1 prompt itself asks for "(1 + 2) / 3 = 1") when the right-hand side is the
  target; ``target = expr``, ``a = b = c`` and ``==`` are not.
- ``×``, ``÷`` and the Unicode minus ``−`` are read as ``*``, ``/`` and ``-``.
- Arithmetic uses :class:`fractions.Fraction` (exact); the result must lie within 1e-5 of the target. Division by
  zero scores 0.0.
- Hard caps make every item cheap before any parse: at most 300 characters of answer (after whitespace is collapsed) and 40 levels of parentheses
  (3,000 nested parentheses are rejected by a linear scan, never reach the parser).
"""

from __future__ import annotations

import ast
import json
import math
import re
from fractions import Fraction
from itertools import combinations
from typing import Any

from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.reward import MAX_CHARS, Reward
from r1h.plugins.rewards._text import last_answer

MAX_ANSWER_CHARS = 300
MAX_PAREN_DEPTH = 40
TOLERANCE = Fraction(1, 100_000)
_ALLOWED_CHARS = frozenset("0123456789+-*/() \t\r\n")
_BINOPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}
_TRANSLATE = str.maketrans({"×": "*", "÷": "/", "−": "-"})


class _Reject(Exception):
    """The expression is outside the allowed grammar."""


def _check_text(text: str) -> bool:
    if len(text) > MAX_ANSWER_CHARS or not text.strip():
        return False
    if any(ch not in _ALLOWED_CHARS for ch in text):
        return False
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
            if depth > MAX_PAREN_DEPTH:
                return False
        elif ch == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


def _walk(node: ast.AST, used: list[int]) -> Fraction:
    if isinstance(node, ast.Expression):
        return _walk(node.body, used)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left = _walk(node.left, used)
        right = _walk(node.right, used)
        op = type(node.op)
        if op is ast.Add:
            return left + right
        if op is ast.Sub:
            return left - right
        if op is ast.Mult:
            return left * right
        if right == 0:
            raise _Reject("division by zero")
        return left / right
    if isinstance(node, ast.Constant) and type(node.value) is int and node.value >= 0:
        used.append(node.value)
        return Fraction(node.value)
    raise _Reject(type(node).__name__)


def _one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines, tabs, Unicode spaces) as one space: ``ast`` ends an expression
    at a line break outside parentheses, so ``1 +\\n2 + 3`` would not parse as written."""
    return " ".join(text.split())


def _parse(text: str) -> tuple[Fraction, list[int]] | None:
    """Value and the numbers used, or None when the text is not a plain arithmetic expression."""
    text = _one_line(text.translate(_TRANSLATE))
    if not _check_text(text):
        return None
    try:
        tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, MemoryError, RecursionError):
        return None
    used: list[int] = []
    try:
        value = _walk(tree, used)
    except (_Reject, RecursionError, ZeroDivisionError):
        return None
    return value, used


def evaluate(expr_text: str, nums: Any = None) -> Fraction | None:
    """The exact value of ``expr_text``, or None when it is not allowed arithmetic.

    With ``nums`` given, the expression must also use each of those numbers exactly once (as a multiset).
    """
    if not isinstance(expr_text, str):
        return None
    parsed = _parse(expr_text)
    if parsed is None:
        return None
    value, used = parsed
    if nums is not None:
        wanted = _read_nums(nums)
        if wanted is None or sorted(used) != sorted(wanted):
            return None
    return value


def split_equation(answer: str, target: Any = None) -> str | None:
    """The expression of an answer: the text itself, or the left side of ``expr = target``.

    With an ``=``, the right-hand side must be a plain number equal to ``target`` (when ``target`` is given).
    """
    if answer.count("=") == 0:
        return answer.strip()
    if answer.count("=") != 1:
        return None
    left, right = answer.split("=")
    right = right.strip().rstrip(".").strip()
    if not re.fullmatch(r"\d{1,30}(?:\.\d{1,30})?", right):
        return None
    if target is not None:
        gold = _read_target(target)
        if gold is None or abs(Fraction(right) - gold) > TOLERANCE:
            return None
    return left.strip()


# -- gold values -------------------------------------------------------------------------------------------------
# Gold is read strictly and bounded *before* any conversion: Fraction("1e99999999999") computes 10**99999999999
# (it never returned, even under --budget 2) and "1e999999" alone cost 1 s. Countdown golds are small integers
# (targets 10..100, numbers 1..99); anything past these limits is unreadable gold, which scores None.
MAX_GOLD_DIGITS = 30  # digits of a target or of one number, before and after the point
MAX_GOLD_EXPONENT = 30  # |e| in "2.4e1"
MAX_NUMS = 64  # numbers in one puzzle (the reward); the solver takes at most MAX_SOLVER_NUMS
MAX_NUMS_TEXT = 1000  # characters of a nums column given as text ("[44, 19, 35]")
_DECIMAL = re.compile(rf"[+-]?(\d{{1,{MAX_GOLD_DIGITS}}})(?:\.(\d{{0,{MAX_GOLD_DIGITS}}}))?(?:[eE]([+-]?\d{{1,3}}))?",
                      re.ASCII)
_NUM_TEXT = re.compile(rf"\s*[+-]?\d{{1,{MAX_GOLD_DIGITS}}}\s*", re.ASCII)
_MAX_GOLD_INT = 10**MAX_GOLD_DIGITS


def _plain(value: Any) -> Any:
    """A numpy scalar from datasets as its Python value; None for a bool (never a number here) or an unreadable one."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        try:
            value = value.item()
        except Exception:
            return None
    return None if isinstance(value, bool) else value


def _read_target(target: Any) -> Fraction | None:
    """The gold target as an exact Fraction, or None when it is not a plain, bounded number.

    Accepts an int, a finite float, or ASCII decimal text (``"24"``, ``"-3.5"``, ``"2.4e1"``) of at most
    MAX_GOLD_DIGITS digits and an exponent of at most MAX_GOLD_EXPONENT; refuses bools, NaN/inf, ``"Infinity"``,
    fractions as text, underscores, non-ASCII digits and anything else.
    """
    target = _plain(target)
    if target is None:
        return None
    if isinstance(target, int):
        return Fraction(target) if abs(target) < _MAX_GOLD_INT else None
    if isinstance(target, Fraction):
        return target if max(abs(target.numerator), target.denominator) < _MAX_GOLD_INT else None
    if isinstance(target, float):
        if not math.isfinite(target) or abs(target) >= _MAX_GOLD_INT:
            return None
        return Fraction(target)
    if not isinstance(target, str) or len(target) > 2 * MAX_GOLD_DIGITS + 8:
        return None
    m = _DECIMAL.fullmatch(target.strip())
    if m is None or (m.group(3) is not None and abs(int(m.group(3))) > MAX_GOLD_EXPONENT):
        return None
    value = Fraction(target.strip())  # bounded: <= 60 digits, |exponent| <= 30
    return value if abs(value) < _MAX_GOLD_INT else None


def _read_num(n: Any) -> int | None:
    n = _plain(n)
    if n is None:
        return None
    if isinstance(n, float):
        if not math.isfinite(n) or not n.is_integer() or abs(n) >= _MAX_GOLD_INT:
            return None
        n = int(n)
    elif isinstance(n, str):
        if _NUM_TEXT.fullmatch(n) is None:
            return None
        n = int(n)
    if not isinstance(n, int) or abs(n) >= _MAX_GOLD_INT:
        return None
    return n


def _read_nums(nums: Any) -> list[int] | None:
    """The gold numbers, or None unless they are a non-empty list of at most MAX_NUMS bounded integers.

    A list (or tuple, or numpy array), or text holding a JSON list or whitespace/comma-separated integers. A dict
    (whose keys a loop would read), a bare number, floats that are not whole, NaN/inf and huge values are refused.
    """
    if isinstance(nums, str):
        text = nums.strip()
        if len(text) > MAX_NUMS_TEXT:
            return None
        try:
            nums = json.loads(text)
        except (ValueError, RecursionError):
            parts = [p for p in re.split(r"[\s,]+", text.strip("[]() ")) if p]
            if not parts or any(_NUM_TEXT.fullmatch(p) is None for p in parts):
                return None
            nums = parts
    if hasattr(nums, "tolist"):  # numpy arrays from datasets
        try:
            nums = nums.tolist()
        except Exception:
            return None
    if not isinstance(nums, (list, tuple)) or not nums or len(nums) > MAX_NUMS:
        return None
    out: list[int] = []
    for n in nums:
        value = _read_num(n)
        if value is None:
            return None
        out.append(value)
    return out


MAX_SOLVER_NUMS = 6  # the benchmark's puzzles have 3 or 4 numbers
SOLVER_NODE_BUDGET = 10_000  # search states tried before giving up (4 numbers need at most ~4,600)


class _OutOfBudget(Exception):
    pass


def solve(nums: Any, target: Any, max_nodes: int = SOLVER_NODE_BUDGET) -> str | None:
    """An expression using every number of ``nums`` exactly once that equals ``target``, or None.

    Search: repeatedly replace two of the remaining values by ``a+b``, ``a-b``, ``b-a``, ``a*b``, ``a/b`` or
    ``b/a``; this covers every binary parenthesization and order, and the result has no unary minus, so
    :func:`evaluate` accepts it. Multisets of values already shown not to reach the target are remembered and never
    searched again, and at most ``max_nodes`` states are visited: a 3-4 number puzzle is decided exactly (a few
    hundred states), while more numbers (up to MAX_SOLVER_NUMS; more are refused) may end the search with None
    ("no solution found") in well under a second instead of minutes (six unsolvable numbers ran over 60 s).
    """
    numbers = _read_nums(nums)
    goal = _read_target(target)
    if numbers is None or goal is None or len(numbers) > MAX_SOLVER_NUMS or any(n < 0 for n in numbers):
        return None
    items = [(Fraction(n), str(n)) for n in numbers]
    if len(items) == 1:
        return items[0][1] if items[0][0] == goal else None
    try:
        found = _search(items, goal, set(), [max_nodes])
    except _OutOfBudget:
        return None
    if found is None:
        return None
    return found[1:-1] if found.startswith("(") and _outer_parens(found) else found


def _outer_parens(expr: str) -> bool:
    depth = 0
    for i, ch in enumerate(expr):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0 and i < len(expr) - 1:
            return False
    return True


def _text(expr: Any) -> str:
    if isinstance(expr, str):
        return expr
    left, op, right = expr
    return f"({_text(left)} {op} {_text(right)})"


def _search(items: list[tuple[Fraction, Any]], goal: Fraction, failed: set, budget: list[int]) -> str | None:
    """Expressions are kept as (left, op, right) trees and written out only for the solution."""
    budget[0] -= 1
    if budget[0] < 0:
        raise _OutOfBudget
    if len(items) == 1:
        return _text(items[0][1]) if items[0][0] == goal else None
    key = tuple(sorted(v for v, _ in items))
    if key in failed:
        return None
    for i, j in combinations(range(len(items)), 2):
        (a, ea), (b, eb) = items[i], items[j]
        rest = [items[k] for k in range(len(items)) if k != i and k != j]
        candidates = [(a + b, (ea, "+", eb)), (a * b, (ea, "*", eb)), (a - b, (ea, "-", eb)), (b - a, (eb, "-", ea))]
        if b != 0:
            candidates.append((a / b, (ea, "/", eb)))
        if a != 0:
            candidates.append((b / a, (eb, "/", ea)))
        for value, expr in candidates:
            found = _search([(value, expr), *rest], goal, failed, budget)
            if found is not None:
                return found
    failed.add(key)
    return None


class CountdownEquation(Reward):
    """1.0 when the last <answer> is an equation using each of ``nums`` once that evaluates to ``target``."""

    name = "countdown_equation"
    version = "1"
    description = "Countdown: last <answer> uses each of nums once with + - * / ( ) and equals target (ast, no eval)"
    columns = ("target", "nums")
    required_columns = ("target", "nums")
    list_columns = ("nums",)
    isolate = False

    def clip(self, text: str) -> str:
        """An over-long completion is read from its tail: the last <answer> is there, or it is over 300 characters
        long and refused anyway, so the score is the same as on the whole text."""
        return text[-(self.max_chars or MAX_CHARS):]

    def extract(self, completion: str, prompt: Any = None, **row: Any) -> str | None:
        answer = last_answer(completion)
        if answer is None:
            return None
        answer = _one_line(answer.translate(_TRANSLATE))
        if len(answer) > MAX_ANSWER_CHARS:
            return None
        return split_equation(answer, row.get("target"))

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float | None:
        target = _read_target(row.get("target"))
        nums = _read_nums(row.get("nums"))
        if target is None or nums is None:
            return None
        expr = self.extract(completion, prompt, **row)
        if expr is None:
            return 0.0
        value = evaluate(expr, nums)
        if value is None:
            return 0.0
        return 1.0 if abs(value - target) <= TOLERANCE else 0.0

    def equivalent(self, a: str, b: str) -> bool:
        """Two equations are the same answer when they are the same text up to spacing."""
        return "".join(a.split()) == "".join(b.split())


@hookimpl
def r1h_register_rewards(register):
    register(
        "countdown_equation",
        "r1h.plugins.rewards.countdown:CountdownEquation",
        version=CountdownEquation.version,
        description=CountdownEquation.description,
    )
