"""math_accuracy: multi-part answers written as several boxes, boxed gold solutions with several boxes, and a
"final answer is ..." statement that follows an intermediate box. Cases are written in the styles models produce
(R1-Distill, Qwen2.5-Math, Minerva few-shot), not copied from any suite."""

from __future__ import annotations

import pytest

from r1h.plugins.rewards import _boxes
from r1h.plugins.rewards import math as m


@pytest.fixture(scope="module")
def reward():
    return m.MathAccuracy()


def one(reward, completion, **row):
    return reward.grade_one(completion, None, row).score


SETS = [
    # comma-joined boxes, R1-Distill ending
    ("</think>\n\nThe integers are $\\boxed{1}, \\boxed{2}, \\boxed{3}$.", "1, 2, 3", 1.0),
    ("</think>\n\nThe integers are $\\boxed{1}, \\boxed{2}, \\boxed{3}$.", "\\{1,2,3\\}", 1.0),
    ("</think>\n\nThe integers are $\\boxed{1}, \\boxed{2}, \\boxed{3}$.", "1, 2", 0.0),  # a set is not a subset
    # pairs joined by \text{ and }
    ("The solutions are $\\boxed{(2,2)} \\text{ and } \\boxed{(6,2)}$.", "(2, 2), (6, 2)", 1.0),
    ("The solutions are $\\boxed{(2,2)} \\text{ and } \\boxed{(6,2)}$.", "(2, 2), (6, 3)", 0.0),
    # \quad \text{and} \quad in display math, order does not matter
    ("Thus\n\\[\n\\boxed{-2} \\quad \\text{and} \\quad \\boxed{1}.\n\\]", "1, -2", 1.0),
    # separate inline maths, bare "and"
    ("So $n = \\boxed{3}$ and $\\boxed{5}$.", "3,5", 1.0),
    ("The roots are \\(\\boxed{1}\\) and \\(\\boxed{-2}\\).", "-2, 1", 1.0),
    # boxes back to back on separate display lines (Qwen2.5-Math "The final answers are:")
    ("The final answers are:\n\\[\n\\boxed{4}\n\\]\n\\[\n\\boxed{63}\n\\]", "4, 63", 1.0),
    # labelled boxes: x_1 = \boxed{..}, x_2 = \boxed{..}
    ("Therefore $x_1 = \\boxed{2}$, $x_2 = \\boxed{-3}$.", "2, -3", 1.0),
    # adjacent with nothing between
    ("$\\boxed{1}\\boxed{2}$", "1, 2", 1.0),
    # repeated identical boxes read as one answer
    ("The answer is $\\boxed{7}$, $\\boxed{7}$.", "7", 1.0),
    # the same words "and" but with text between: superseded, the last box wins
    ("I first got \\boxed{3}, but that ignores the constraint, and the right count is \\boxed{4}.", "4", 1.0),
    ("I first got \\boxed{3}, but that ignores the constraint, and the right count is \\boxed{4}.", "3, 4", 0.0),
    ("**Final Answer**\n\\boxed{5}\n\nWait, I made an arithmetic slip. **Final Answer**\n\\boxed{6}", "6", 1.0),
    # "or" hedges, it does not join
    ("It is either $\\boxed{3}$ or $\\boxed{4}$.", "3, 4", 0.0),
    ("It is either $\\boxed{3}$ or $\\boxed{4}$.", "4", 1.0),
    # a sentence between two boxes is text
    ("$\\boxed{2}$. So the area is $\\boxed{8}$", "8", 1.0),
]


@pytest.mark.parametrize(("completion", "gold", "expected"), SETS)
def test_adjacent_boxes_are_one_answer_set(reward, completion, gold, expected):
    assert one(reward, completion, answer=gold) == expected


GOLD_SOLUTIONS = [
    # MATH-style solutions that box every part
    ("... so the solutions are $\\boxed{1}$ and $\\boxed{-2}$.", "\\boxed{-2, 1}", 1.0),
    ("... so the solutions are $\\boxed{1}$ and $\\boxed{-2}$.", "\\boxed{1}", 0.0),
    ("... the pairs are $\\boxed{(2,1)}, \\boxed{(1,2)}$.", "The answer is $\\boxed{(1, 2), (2, 1)}$.", 1.0),
    # a solution whose earlier box is superseded keeps its last box
    ("We find $x=\\boxed{2}$ at first; checking the domain, only $x = \\boxed{3}$ works.", "\\boxed{3}", 1.0),
]


@pytest.mark.parametrize(("solution", "completion", "expected"), GOLD_SOLUTIONS)
def test_gold_solution_with_several_boxes(reward, solution, completion, expected):
    assert one(reward, completion, solution=solution) == expected


def test_final_statement_after_an_intermediate_box_wins(reward):
    minerva = ("Interest for the second period: $0.05 \\cdot 10,200 \\cdot \\frac{1}{2} = \\boxed{255}$. So, after six "
               "months in the second CD, he has $10,200 + 255 = 10,455$ dollars.\n"
               "Final Answer: The final answer is $10,455$. I hope it is correct.")
    assert one(reward, minerva, answer="10455") == 1.0
    assert one(reward, minerva, answer="255") == 0.0
    assert reward.extract(minerva) != "255"
    # a final-answer line that repeats the box changes nothing
    same = "... $\\boxed{12}$.\n\nThe final answer is $12$."
    assert one(reward, same, answer="12") == 1.0
    # a box after the "Final Answer" heading is the answer, as before
    heading = "The sum is 3.\n\n**Final Answer**\n\\[\n\\boxed{3}\n\\]"
    assert one(reward, heading, answer="3") == 1.0
    # "final answer" without a value right after it is not a statement
    aside = "So $x = \\boxed{4}$.\n\nThe final answer above was checked 3 ways; the final answer stays the same 2 times."
    assert one(reward, aside, answer="4") == 1.0
    # a statement whose box was cut off by the token limit does not override the earlier box
    cut = "So $x = \\boxed{4}$.\n\nThe final answer is $\\boxed{4"
    assert one(reward, cut, answer="4") == 1.0


def test_degenerate_box_repetition_is_not_an_answer_set():
    text = "\\boxed{1}, " * 500 + "\\boxed{1}"
    assert m.final_boxed(text) == "1"  # identical boxes, one answer
    text = "".join(f"\\boxed{{{i}}}, " for i in range(500)) + "\\boxed{500}"
    assert m.final_boxed(text) == "500"  # more than MAX_SET_BOXES: the last box alone
    assert m.final_boxed("\\boxed{}" * 5000) == ""
    few = ", ".join(f"\\boxed{{{i}}}" for i in range(_boxes.MAX_SET_BOXES))
    assert m.final_boxed(few) == ", ".join(str(i) for i in range(_boxes.MAX_SET_BOXES))


def test_nested_and_truncated_boxes_do_not_join():
    # boxes inside a box: the innermost last box and its neighbours, never the outer box's braces
    assert m.final_boxed("\\boxed{\\boxed{1}, \\boxed{2}}") == "1, 2"
    assert m.final_boxed("\\boxed{1}, \\boxed{x + \\boxed{2}}") == "2"
    assert m.final_boxed("\\boxed{3}, \\boxed{4") == "3"  # the cut-off box is skipped
    assert m.final_boxed("\\boxed{3}, \\fbox{4}") == "3, 4"
