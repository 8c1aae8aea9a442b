"""countdown_equation: ast-only grading, every number exactly once, `expr = target`, hostile answers; solve()."""

from __future__ import annotations

import json
import pickle
import time
from fractions import Fraction

import pytest

import r1h
from r1h.plugins.rewards.countdown import CountdownEquation, evaluate, solve, split_equation

ROW = {"target": 98, "nums": [44, 19, 35]}


def ans(expr: str) -> str:
    return f"<think>\nlet me try\n</think>\n<answer>{expr}</answer>"


@pytest.fixture
def reward():
    return CountdownEquation("countdown_equation")


def score(reward, text, **row):
    result = reward.grade_one(text, None, row or ROW)
    assert result.error is None, result.error
    return result.score


@pytest.mark.parametrize(
    "expr",
    [
        "44 + 19 + 35",
        "35+44+19",
        "(44 + 19) + 35",
        "((44 + (19)) + 35)",
        "44 + 19 + 35 = 98",  # the form the mini-r1 prompt asks for
        " 44 + 19 + 35 = 98 ",
        "44 + 19 + 35 = 98.",
        "44 + 19 + 35 = 98.0",
        "\n44 + 19 + 35\n",
        "(44 + 19) + 35 = 98",
        "19 + 35 + 44 = 98",
    ],
)
def test_correct_equations(reward, expr):
    assert score(reward, ans(expr)) == 1.0


def test_other_operations_and_fractions(reward):
    assert score(reward, ans("(1 + 2) / 3 = 1"), target=1, nums=[1, 2, 3]) == 1.0
    assert score(reward, ans("83 + 1 - 78 / 39"), target=82, nums=[83, 78, 1, 39]) == 1.0
    assert score(reward, ans("(95 - 11) / 3"), target=28, nums=[95, 11, 3]) == 1.0
    assert score(reward, ans("2 × 3 ÷ 1 − 1"), target=5, nums=[2, 3, 1, 1]) == 1.0  # unicode operators
    assert score(reward, ans("7 / 3 * 3"), target=7, nums=[7, 3, 3]) == 1.0  # exact, no float drift
    assert score(reward, ans("1 / 3 + 1 / 3 + 1 / 3"), target=1, nums=[1, 3, 1, 3, 1, 3]) == 1.0
    assert score(reward, ans("10 / 4"), target=2.5, nums=[10, 4]) == 1.0
    assert score(reward, ans("10 / 4"), target=2, nums=[10, 4]) == 0.0


def test_repeated_numbers_in_nums_are_a_multiset(reward):
    assert score(reward, ans("5 + 5 + 2"), target=12, nums=[5, 2, 5]) == 1.0
    assert score(reward, ans("5 + 2 + 2"), target=9, nums=[5, 2, 5]) == 0.0


@pytest.mark.parametrize(
    ("expr", "why"),
    [
        ("44 + 19 + 35 + 0", "extra number"),
        ("44 + 19 + 19 + 16", "a number used twice"),
        ("44 + 44 + 10", "a number used twice, others missing"),
        ("63 + 35", "a number missing (63 is not given)"),
        ("44 + 54", "two numbers missing"),
        ("44 + 19 + 34", "wrong value and wrong number"),
        ("44 + 19 - 35", "uses all, wrong value"),
        ("44 + 19 + 35 = 99", "right-hand side is not the target"),
        ("98 = 44 + 19 + 35", "target on the left"),
        ("44 + 19 = 63 + 35 = 98", "chained equalities"),
        ("44 + 19 + 35 == 98", "comparison"),
        ("-44 + 19 + 35 + 88", "unary minus"),
        ("+44 + 19 + 35", "unary plus"),
        ("44 + 19 + --35", "double negation"),
        ("44. + 19 + 35", "float literal"),
        ("44.0 + 19 + 35", "float literal"),
        ("44 + 19 + 35.", "trailing dot makes a float"),
        ("2 ** 6 + 34", "power"),
        ("9**9**9**9", "power tower"),
        ("95**78**6**88", "the mini-r1 eval() hang"),
        ("44 // 1 + 19 + 35", "floor division"),
        ("44 % 50 + 19 + 35", "modulo"),
        ("__import__('os').system('touch /tmp/pwned')", "import"),
        ("abs(-98)", "call"),
        ("x + 19 + 35", "name"),
        ("(44).real + 19 + 35", "attribute"),
        ("[44][0] + 19 + 35", "subscript"),
        ("44 + 19 + 35 if 1 else 0", "conditional"),
        ("lambda: 98", "lambda"),
        ("'98'", "string"),
        ("0x62", "hex literal"),
        ("4_4 + 19 + 35", "underscore literal"),
        ("044 + 19 + 35", "leading zero"),
        ("44 + 19 + 35 ;", "statement separator"),
        ("44 + (19 + 35", "unbalanced"),
        ("44 + 19) + (35", "unbalanced the other way"),
        ("", "empty"),
        ("   ", "blank"),
        ("98", "just the target"),
        ("44 19 35", "no operators"),
        ("44 + 19 + 35\x00", "NUL byte"),
    ],
)
def test_rejected(reward, expr, why):
    assert score(reward, ans(expr)) == 0.0, why


def test_division_by_zero(reward):
    assert score(reward, ans("44 / (19 - 19) + 35"), target=98, nums=[44, 19, 19, 35]) == 0.0
    assert score(reward, ans("1 / 0"), target=1, nums=[1, 0]) == 0.0
    assert evaluate("5 / (3 - 3)") is None


def test_only_the_last_answer_counts(reward):
    assert score(reward, "<answer>1 + 1</answer> no wait <answer>44 + 19 + 35</answer>") == 1.0
    assert score(reward, "<answer>44 + 19 + 35</answer> no wait <answer>44 - 19 + 35</answer>") == 0.0
    assert score(reward, "<answer>44 + 19 + 35</answer> then <answer>unclosed") == 1.0
    assert score(reward, "44 + 19 + 35") == 0.0  # no answer tags
    assert score(reward, "<answer>44 + 19 + 35") == 0.0


def test_prefilled_prompt_completion(reward):
    prompt = [{"role": "assistant", "content": "Let me solve this step by step.\n<think>"}]
    text = " 44+19=63, 63+35=98.\n</think>\n<answer> (44 + 19) + 35 = 98 </answer>"
    assert reward.grade_one(text, prompt, ROW).score == 1.0


def test_nested_parentheses_are_instant(reward):
    for depth in (50, 199, 200, 3000, 100_000):
        text = ans("(" * depth + "44 + 19 + 35" + ")" * depth)
        start = time.perf_counter()
        result = reward.grade_one(text, None, ROW)
        assert result.error is None and result.score == 0.0
        assert time.perf_counter() - start < 0.5
    assert score(reward, ans("(" * 30 + "44 + 19 + 35" + ")" * 30)) == 1.0  # moderate nesting is fine
    # evaluate() caps its input itself, whoever calls it
    assert evaluate("(" * 3000 + "1" + ")" * 3000) is None
    assert evaluate("-" * 3000 + "1") is None
    assert evaluate("1" + "+1" * 5000) is None


def test_hostile_completions(reward):
    hostile = [
        ans("9**9**9**9"),
        ans("1" * 1_000_000),
        "<answer>" * 100_000 + "</answer>" * 100_000,
        ans("\ud800 + 1"),
        ans("44 + 19 + 35") * 50_000,  # 1.5 MB of correct answers: still graded, fast
        "\x00" * 1_000_000,
    ]
    for text in hostile:
        start = time.perf_counter()
        result = reward.grade_one(text, None, ROW)
        assert result.error is None
        assert time.perf_counter() - start < 1.0
    assert reward.grade_one(hostile[4], None, ROW).score == 1.0


@pytest.mark.parametrize(
    "row",
    [
        {"target": None, "nums": [1, 2]},
        {"target": "ninety", "nums": [1, 2]},
        {"target": 3, "nums": None},
        {"target": 3, "nums": []},
        {"target": 3, "nums": ["a", "b"]},
        {"target": 3, "nums": [1.5, 1.5]},
        {"nums": [1, 2]},
        {"target": 3},
        {"target": True, "nums": [1, 2]},
        {"target": float("nan"), "nums": [1, 2]},
    ],
)
def test_unreadable_gold_is_none(reward, row):
    assert reward.grade_one(ans("1 + 2"), None, row).score is None


def test_gold_in_other_shapes(reward):
    assert score(reward, ans("1 + 2"), target="3", nums="[1, 2]") == 1.0
    assert score(reward, ans("1 + 2"), target=3.0, nums=(1, 2)) == 1.0
    assert score(reward, ans("1 + 2"), target=" 3 ", nums="1, 2") == 1.0
    assert score(reward, ans("1 + 2"), target=3, nums=[1.0, "2"]) == 1.0


def test_extract(reward):
    assert reward.extract(ans("(44 + 19) + 35 = 98"), None, **ROW) == "(44 + 19) + 35"
    assert reward.extract(ans("44 + 19 + 35"), None, **ROW) == "44 + 19 + 35"
    assert reward.extract("no answer", None, **ROW) is None
    assert reward.extract(ans("1 = 2 = 3"), None, **ROW) is None
    assert reward.equivalent("(44+19)+35", "(44 + 19) + 35")
    assert split_equation("1 + 2 = 3", 3) == "1 + 2"
    assert split_equation("1 + 2 = 4", 3) is None


def test_evaluate_helper():
    assert evaluate("(1 + 2) / 3") == Fraction(1)
    assert evaluate("7 / 2") == Fraction(7, 2)
    assert evaluate("7 / 2", [7, 2]) == Fraction(7, 2)
    assert evaluate("7 / 2", [7, 2, 2]) is None
    assert evaluate("7 / 7", [7]) is None
    assert evaluate("9**9") is None
    assert evaluate(None) is None


def test_solve_small_cases():
    for nums, target in [
        ([1, 2, 3], 1),
        ([44, 19, 35], 98),
        ([83, 78, 1, 39], 82),
        ([2, 3], 6),
        ([4, 6], Fraction(2, 3)),
    ]:
        expr = solve(nums, target)
        assert expr is not None
        assert evaluate(expr, nums) == target
    assert solve([1, 2], 100) is None
    assert solve([1, 1, 1, 1], 1000) is None
    assert solve([5], 5) == "5"
    assert solve("not nums", 3) is None
    assert solve([1, 2], "x") is None


def test_solve_real_countdown_rows(refdata, reward):
    """Every row of the real Countdown data is solvable; solve() finds an answer the reward accepts, for a sample."""
    path = refdata / "countdown" / "countdown_tasks_3to4_rows_00000-11023.derived.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()][::50]
    assert len(rows) > 200
    for row in rows:
        expr = solve(row["nums"], row["target"])
        assert expr is not None, row
        assert evaluate(expr, row["nums"]) == row["target"]
        assert reward.grade_one(ans(f"{expr} = {row['target']}"), None, row).score == 1.0
        # the same numbers with one of them used twice is rejected
        doubled = f"{expr} + {row['nums'][0]} - {row['nums'][0]}"
        assert reward.grade_one(ans(doubled), None, row).score == 0.0


def test_registered_and_picklable():
    reward = r1h.get_reward("countdown_equation")
    assert reward.__name__ == "countdown_equation"
    assert reward.columns == ("target", "nums")
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "countdown_equation"
    assert clone.grade_one(ans("44 + 19 + 35"), None, ROW).score == 1.0


def test_trl_columns_are_split_per_completion(reward):
    rows = reward.rows(2, {"target": [98, 3], "nums": [[44, 19, 35], [1, 2]], "completion_ids": [[1], [2]]})
    assert rows == [{"target": 98, "nums": [44, 19, 35]}, {"target": 3, "nums": [1, 2]}]
    out = [reward.grade_one(c, None, r).score for c, r in zip([ans("44+19+35"), ans("2-1")], rows, strict=True)]
    assert out == [1.0, 0.0]


def test_called_like_trl(reward):
    pytest.importorskip("r1h.harness.grading.pool")
    out = reward([ans("44+19+35"), ans("9**9**9**9")], prompts=None, target=[98, 98], nums=[[44, 19, 35]] * 2)
    assert out == [1.0, 0.0]


def test_flat_nums_for_several_completions_is_one_puzzle_not_one_number_each():
    reward = r1h.get_reward("countdown_equation")
    completions = ["<answer>(44 - 19) + 35 = 60</answer>", "<answer>44 + 19 - 35</answer>", "<answer>60</answer>"]
    # one puzzle's nums given flat (as a user would for one row) and TRL's per-row list of lists agree
    flat = reward(completions, target=60, nums=[44, 19, 35])
    per_row = reward(completions, target=[60, 60, 60], nums=[[44, 19, 35]] * 3)
    assert flat == per_row == [1.0, 0.0, 0.0]
    # per-row values that are strings (a CSV column) stay per row
    assert reward(completions, target=[60] * 3, nums=["[44, 19, 35]"] * 3) == [1.0, 0.0, 0.0]


@pytest.mark.parametrize(
    "expr",
    [
        "44 +\n19 + 35",  # a line break after an operator, outside parentheses
        "44\n+ 19\n+ 35",
        "44 + 19\r\n+ 35 = 98",
        "\t44\t+\t19 + 35",
        "44 + 19 +\n\n   35\n=\n98",
        "44\u00a0+ 19 + 35",  # a no-break space
        "(44 +\n 19) + 35",
        "44 + 19 + 35" + " " * 400,  # whitespace does not count against the length cap
    ],
)
def test_whitespace_inside_the_answer_does_not_matter(reward, expr):
    assert score(reward, ans(expr)) == 1.0
    assert reward.extract(ans(expr), None, **ROW) in ("44 + 19 + 35", "(44 + 19) + 35")


def test_whitespace_never_joins_numbers(reward):
    assert score(reward, ans("4 4 + 19 + 35")) == 0.0  # "4 4" is not 44
    assert score(reward, ans("4\n4 + 19 + 35")) == 0.0
    assert evaluate("1 +\n2 + 3", [1, 2, 3]) == Fraction(6)
