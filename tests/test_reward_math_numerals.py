"""math_accuracy on numerals math-verify misreads (r1h.plugins.rewards._numbers): thin-space digit groups, scientific
notation in a final-answer sentence, powers whose exponent has thin spaces or is hexadecimal; and answers split over
several boxes that the gold combines differently. Each class is checked on several shapes, right and wrong golds."""

from __future__ import annotations

import pytest

from r1h.plugins.rewards import _numbers
from r1h.plugins.rewards import math as m


@pytest.fixture(scope="module")
def reward():
    return m.MathAccuracy()


def _score(reward, completion, gold):
    return reward.score(completion, None, answer=gold)


# (completion, the gold it equals, golds it must not equal)
THIN_SPACE_GROUPS = [
    ("The total is $\\boxed{1\\,000}$.", "1000", ("0", "10", "1")),
    ("\\boxed{12\\,345\\,678}", "12345678", ("12345", "1035", "0")),
    ("So there are \\boxed{2\\;500} ways.", "2500", ("0", "2")),
    ("\\boxed{1\\!000\\!000}", "1000000", ("0", "1000")),
    ("\\boxed{3.141\\,59}", "3.14159", ("3.141", "185.219")),
    ("\\boxed{-4\\,096}", "-4096", ("0", "-4")),
    ("\\boxed{\\$1\\,250}", "1250", ("0",)),
    ("\\boxed{10\\ 000}", "10000", ("0",)),
]


@pytest.mark.parametrize(("completion", "gold", "wrong"), THIN_SPACE_GROUPS)
def test_thin_space_thousands_separators_read_as_one_number(reward, completion, gold, wrong):
    assert _score(reward, completion, gold) == 1.0
    for bad in wrong:
        assert _score(reward, completion, bad) == 0.0, bad


@pytest.mark.parametrize("answer", ["1\\,0", "12\\,34", "1\\,0000", "1234\\,567", "0.5\\,1234"])
def test_a_digit_space_digit_that_is_no_grouping_is_unreadable(reward, answer):
    """Neither the product (1\\,0 = 0) nor a guess: such a boxed answer matches no gold but its own text."""
    for gold in ("0", "1", "12", "34", "5"):
        assert _score(reward, f"\\boxed{{{answer}}}", gold) == 0.0
    assert m.parse_answer(answer) == ()
    assert _score(reward, f"\\boxed{{{answer}}}", answer.replace("\\,", "")) == 1.0  # the gold's own text


SCIENTIFIC = [
    ("The final answer is 2e3.", "2000", ("2", "6")),
    ("Final answer: 1.5E4", "15000", ("1.5", "15")),
    ("The final answer is 6.02e+23 molecules.", "6.02\\times10^{23}", ("6.02", "0")),
    ("The final answer is 2.5e-3", "0.0025", ("2.5", "-0.5")),
    ("The final answer is $4e2$.", "400", ("4", "8e")),
    ("\\boxed{3e4}", "30000", ("3", "12e")),
]


@pytest.mark.parametrize(("completion", "gold", "wrong"), SCIENTIFIC)
def test_scientific_notation_is_read_whole(reward, completion, gold, wrong):
    assert _score(reward, completion, gold) == 1.0
    for bad in wrong:
        assert _score(reward, completion, bad) == 0.0, bad


@pytest.mark.parametrize(
    "completion",
    ["The final answer is 1e999999.", "Final answer: 7E12345", "The final answer is $1e99999$", "\\boxed{1e999999}"],
)
def test_a_huge_scientific_exponent_is_refused_not_read_as_its_mantissa(reward, completion):
    for gold in ("1", "7", "0", "10"):
        assert _score(reward, completion, gold) == 0.0, gold


def test_a_boxed_euler_expression_keeps_its_meaning(reward):
    """In a box, 2e-3 may be 2e - 3 and 2e is 2e: only an unsigned digit exponent is scientific there."""
    assert _score(reward, "\\boxed{2e-3}", "2e-3") == 1.0
    assert _score(reward, "\\boxed{2e}", "2e") == 1.0
    assert _score(reward, "\\boxed{2e}", "2") == 0.0


POWERS = [
    ("\\boxed{2^{1\\,000}}", "2^{1000}", ("1", "2")),
    ("\\boxed{3^{0x10}}", "43046721", ("1", "3")),
    ("\\boxed{2^{0xA}}", "1024", ("1", "0")),
    ("\\boxed{10^{0x3}}", "1000", ("1",)),
    ("\\boxed{5^{2\\;000}}", "5^{2000}", ("1",)),
]


@pytest.mark.parametrize(("completion", "gold", "wrong"), POWERS)
def test_an_exponent_with_thin_spaces_or_in_hex_is_not_zero(reward, completion, gold, wrong):
    assert _score(reward, completion, gold) == 1.0
    for bad in wrong:
        assert _score(reward, completion, bad) == 0.0, bad


@pytest.mark.parametrize("answer", ["10^{10\\,000}", "9^{99\\,999\\,999}", "2^{0xFFFFF}", "7^{0x186A0}"])
def test_a_huge_exponent_hidden_by_grouping_or_hex_is_still_refused(reward, answer):
    assert m._too_hostile(answer)
    assert m.parse_answer(answer) == ()
    assert _score(reward, f"\\boxed{{{answer}}}", "1") == 0.0


def test_numerals_are_rewritten_in_linear_time():
    text = "1\\," * 20000 + "1" + " 2e" * 20000 + " 0x" * 20000
    assert _numbers.normalize_text(text)  # would take minutes with a backtracking pattern
    assert _numbers.group_digits("1" + "\\,000" * 5000) == "1" + "000" * 5000


# answers split over boxes: the gold's boxes and the prediction's boxes combine differently
SPLIT = [
    # a gold solution's boxes a few characters or an "and"-phrase apart are its parts (a set)
    ("\\boxed{1,2}", {"solution": "\\boxed{1} papers and \\boxed{2} bins"}, 1.0),
    ("$\\boxed{3, 7}$", {"solution": "So $x = \\boxed{3}$ ~ $\\boxed{7}$"}, 1.0),
    ("\\boxed{7}", {"solution": "So $x = \\boxed{3}$ ~ $\\boxed{7}$"}, 0.0),
    # ... but not across "or" or a sentence end, where MATH repeats one answer two ways
    ("\\boxed{3, 4}", {"solution": "$x = \\boxed{3}$, or $x = \\boxed{4}$"}, 0.0),
    ("\\boxed{\\frac{639}{40}}", {"solution": "$\\boxed{15\\frac{39}{40}},$ or $\\boxed{\\frac{639}{40}}$"}, 1.0),
    ("\\boxed{3, 5}", {"solution": "so \\boxed{3}. Then more text, and finally \\boxed{5}."}, 0.0),
    # a prediction's boxes labelled by part read as one answer set
    ("$\\boxed{(3, 3)} \\text{ for part (a) and } \\boxed{(1, 1)}$", {"answer": "(3, 3), (1, 1)"}, 1.0),
    ("\\boxed{4} \\text{ (a), and } \\boxed{9}", {"answer": "4, 9"}, 1.0),
    ("\\boxed{4} \\text{ is wrong and } \\boxed{9}", {"answer": "4, 9"}, 0.0),
]


@pytest.mark.parametrize(("completion", "row", "expected"), SPLIT)
def test_answers_split_over_boxes(reward, completion, row, expected):
    assert reward.score(completion, None, **row) == expected
