"""math_accuracy: gold sources, </think> handling, AIME padding, answer extraction before parsing, guards, TRL shape."""

from __future__ import annotations

import pickle
import time

import pytest

import r1h
from r1h.plugins.rewards import math as m


@pytest.fixture(scope="module")
def reward():
    return m.MathAccuracy()


def one(reward, completion, **row):
    """Score one item in this process (what a grading worker does), never through a pool."""
    return reward.grade_one(completion, None, row).score


@pytest.mark.parametrize(
    ("completion", "gold", "expected"),
    [
        ("So the answer is $\\boxed{25}$.", "025", 1.0),  # AIME zero padding, gold side
        ("\\boxed{025}", "25", 1.0),  # and prediction side
        ("\\boxed{024}", "025", 0.0),
        ("\\boxed{\\frac{1}{2}}", "0.5", 1.0),
        ("\\boxed{\\frac12}", "\\frac{1}{2}", 1.0),
        ("\\boxed{\\dfrac{14}{3}}", "\\frac{14}{3}", 1.0),
        ("\\boxed{(3, \\frac{\\pi}{2})}", "\\left( 3, \\frac{\\pi}{2} \\right)", 1.0),
        ("\\boxed{\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", 1.0),
        ("\\boxed{10080}", "10,\\!080", 1.0),
        ("\\boxed{2\\sqrt{2}}", "\\sqrt{8}", 1.0),
        ("\\boxed{3}", "4", 0.0),
        ("first \\boxed{4} then, correcting myself, \\boxed{3}", "3", 1.0),  # the last box wins
        ("first \\boxed{3} then \\boxed{4}", "3", 0.0),
        ("\\boxed{\\text{(B)}}", "\\text{(B)}", 1.0),
        ("\\fbox{7}", "7", 1.0),
        ("The answer is \\boxed 7", "7", 1.0),
        ("Nested \\boxed{\\frac{\\sqrt{3}}{2}} here", "\\frac{\\sqrt3}{2}", 1.0),
        ("The final answer is $42$.", "42", 1.0),  # no box: math-verify's extraction over the tail
        ("no answer at all", "42", 0.0),
        ("", "42", 0.0),
        ("\\boxed{1}", "100", 0.0),  # MATH-500 idx 355: 1 is not 100 (the Qwen grader's percent rule says it is)
        ("\\boxed{\\frac{1}{2004!}}", "\\frac{1}{2006!}", 0.0),  # math-verify's rounding false positive
        ("\\boxed{\\frac{1}{2006!}}", "\\frac{1}{2006!}", 1.0),
    ],
)
def test_scores(reward, completion, gold, expected):
    assert one(reward, completion, answer=gold) == expected


def test_only_text_after_last_think_is_graded(reward):
    assert one(reward, "<think>\\boxed{5}</think>The answer is \\boxed{7}", answer="7") == 1.0
    assert one(reward, "<think>\\boxed{7}</think>The answer is \\boxed{5}", answer="7") == 0.0
    assert one(reward, "<think>a</think><think>\\boxed{7}</think> I give up", answer="7") == 0.0
    # no </think>: everything is graded, so a truncated trace still yields its last box
    assert one(reward, "<think> ... so \\boxed{7} and then I ran out of tok", answer="7") == 1.0


def test_gold_from_solution_column_and_unreadable_gold(reward):
    solution = "First $\\boxed{2}$ is wrong. Hence the result is $\\boxed{\\frac{3}{4}}$."
    assert one(reward, "\\boxed{0.75}", solution=solution) == 1.0
    assert one(reward, "\\boxed{2}", solution=solution) == 0.0
    assert one(reward, "\\boxed{2}", answer="2", solution=solution) == 1.0  # answer takes precedence
    for bad in (
        {},
        {"answer": ""},
        {"answer": None},
        {"solution": "no box here"},
        {"answer": "   "},
        {"answer": ["x"]},
    ):
        assert one(reward, "\\boxed{2}", **bad) is None


def test_extract_returns_the_compared_answer(reward):
    assert reward.extract("blah \\boxed{1} blah \\boxed{\\frac{a}{b}} end") == "\\frac{a}{b}"
    assert reward.extract("<think>\\boxed{1}</think> \\boxed{2}") == "2"
    assert reward.extract("the value is $\\frac{3}{4}$") == "\\frac{3}{4}"
    assert reward.extract("nothing") is None


def test_last_boxed_skips_truncated_boxes_and_handles_escaped_braces():
    assert m.last_boxed("\\boxed{3} then \\boxed{4") == "3"
    assert m.last_boxed("\\boxed{\\{1, 2\\}}") == "\\{1, 2\\}"
    assert m.last_boxed("\\boxed{}") == ""
    assert m.last_boxed("no box") is None
    # an overlong final box is not silently replaced by an earlier one: it is cut, then rejected by the guards
    overlong = "\\boxed{3} and finally \\boxed{" + "1+" * 300 + "1}"
    assert len(m.last_boxed(overlong)) == m.MAX_ANSWER_CHARS + 1
    assert m.MathAccuracy().score(overlong, answer="3") == 0.0


def test_equivalent_uses_math_verify(reward):
    assert reward.equivalent("\\frac{1}{2}", "0.5")
    assert reward.equivalent("025", "25")
    assert reward.equivalent("x+1", "1+x")
    assert not reward.equivalent("1", "2")
    assert not reward.equivalent("9^{9^{9^9}}", "1")


@pytest.mark.parametrize(
    "answer",
    [
        "9^{9^{9^{9}}}",
        "9^9^9^9",
        "9**9**9**9",
        "2^{99999999}",
        "1000000!",
        "(" * 200 + "1" + ")" * 200,
        "{" * 3000 + "1" + "}" * 3000,
        "1" * 5000,
        "\\frac{" * 50 + "1" + "}{2}" * 50,
    ],
)
def test_hostile_answers_score_zero_without_sympy(reward, answer):
    assert m._too_hostile(answer)
    start = time.process_time()
    assert one(reward, f"\\boxed{{{answer}}}", answer="1") == 0.0
    assert time.process_time() - start < 1.0  # rejected before parsing, not after a 5 s sympy run


def test_guards_leave_ordinary_answers_alone():
    for ok in ["x^2+y^2", "10^{12}", "e^{i\\pi}", "2^{10}\\cdot 3^2", "\\frac{1}{2006!}", "\\sqrt[3]{2}"]:
        assert not m._too_hostile(ok), ok


def test_degenerate_completion_is_cheap(reward):
    # the shape of 31 base-model completions in the labeled runs: thousands of empty boxes, the last one cut off
    text = "Let me think. " + "\\boxed{}. " * 3000 + "\\boxed"
    start = time.process_time()
    assert one(reward, text, answer="\\frac{14}{3}") == 0.0
    assert time.process_time() - start < 1.0
    assert reward.extract(text) == ""


def test_hostile_free_text_without_a_box(reward):
    text = "we get $1^{(2^{235423523})}$, which is 1 since any power of one is one. The answer is $1$."
    assert one(reward, text, answer="1") == 1.0  # math-verify only sees the text after the tower
    assert one(reward, "x" * 1_000_000, answer="1") == 0.0
    assert one(reward, "\x00\\boxed{1\x00}", answer="1") == 0.0
    assert m.safe_tail("**Final Answer**\n\nThe answer is 5") == "**Final Answer**\n\nThe answer is 5"  # markdown


@pytest.mark.parametrize(
    "text",
    [
        "The answer: 9**9**9**9",
        "The answer: 9 ** 9 ** 9 ** 9",
        "so $9^{9^{9^{9}}}$",
        "so 2**99999999",
        "so $100000!$",
        "$" + "\\frac{" * 20 + "1" + "}{2}" * 20 + "$",  # latex2sympy takes 25 s on this
        "$" + "(" * 3000 + "1" + ")" * 3000 + "$",
    ],
)
def test_hostile_free_text_is_cut_before_math_verify(reward, text):
    start = time.process_time()
    assert one(reward, text, answer="1") == 0.0
    assert time.process_time() - start < 1.0


def test_trl_signature_conversational_and_extra_kwargs(reward):
    from r1h.harness.grading import pool as grading

    completions = [
        [{"role": "assistant", "content": "<think>hmm</think> \\boxed{25}"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "\\boxed{3}"}]}],
        "\\boxed{\\frac{1}{2}}",
        "\\boxed{7}",
    ]
    rows = reward.rows(4, {"answer": ["025", "4", "0.5", None], "completion_ids": [[1], [2], [3], [4]]})
    results = grading.grade(reward, completions, rows=rows)
    assert [r.score for r in results] == [1.0, 0.0, 1.0, None]
    # the TRL call: prompts, completion_ids, trainer_state and logging hooks are accepted and ignored
    scores = reward(
        prompts=[[{"role": "user", "content": "q"}]] * 4,
        completions=completions,
        completion_ids=[[1], [2], [3], [4]],
        answer=["025", "4", "0.5", None],
        trainer_state=object(),
        log_extra=lambda *a, **k: None,
        log_metric=lambda *a, **k: None,
    )
    assert scores == [1.0, 0.0, 1.0, None]


def test_a_scalar_gold_applies_to_every_completion(reward):
    rows = reward.rows(3, {"answer": "7"})
    assert [one(reward, c, **row) for c, row in zip(["\\boxed{7}", "\\boxed{8}", "7"], rows, strict=True)] == [
        1.0,
        0.0,
        1.0,
    ]


def test_registered_picklable_and_named():
    reward = r1h.get_reward("math_accuracy")
    assert isinstance(reward, m.MathAccuracy)
    assert reward.__name__ == "math_accuracy"
    assert reward.isolate is True
    assert reward.columns == ("answer", "solution")
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "math_accuracy"
    assert clone.grade_one("\\boxed{4}", None, {"answer": "4"}).score == 1.0
    row = next(r for r in r1h.list_plugins() if r.get("name") == "math_accuracy")
    assert row["version"] == "1" and row["description"]


@pytest.mark.parametrize(
    "completion",
    [None, 42, {"role": "assistant"}, [{"content": None}], "\udcff\\boxed{1}", b"\\boxed{1}", ["\\boxed{1}", 3]],
)
def test_never_raises(reward, completion):
    result = reward.grade_one(completion, None, {"answer": "1"})
    assert result.score in (0.0, 1.0)
    assert reward.grade_one("\\boxed{1}", None, {"answer": object()}).score is None


@pytest.mark.parametrize(
    ("completion", "gold", "expected"),
    [
        ("\\boxed{42}", "42", 1.0),  # the same text
        ("\\boxed{ \\left( 3 \\right) }", "(3)", 1.0),  # the same up to spacing and sizing macros
        ("\\boxed{41}", "42", 0.0),  # two integers
        ("\\boxed{-7}", "-7", 1.0),
        ("\\boxed{0025}", "25", 1.0),  # AIME padding on both paths
        ("\\boxed{25}", "025", 1.0),
    ],
)
def test_the_common_answers_are_graded_without_latex_parsing(reward, monkeypatch, completion, gold, expected):
    """Same text, or two plain integers: what math-verify would say, without a latex2sympy parse (the costly part
    of grading, see perf/grade_labeled.py)."""
    for cached in (m.parse_answer, m._final, m._boxed_verdict):
        cached.cache_clear()

    def no_parse(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(m, "_parse", no_parse)
    assert one(reward, completion, answer=gold) == expected


def test_an_integer_against_a_non_integer_gold_is_still_verified(reward):
    for cached in (m.parse_answer, m._final, m._boxed_verdict):
        cached.cache_clear()
    assert one(reward, "\\boxed{5}", answer="\\frac{10}{2}") == 1.0
    assert one(reward, "\\boxed{5}", answer="5.0") == 1.0
    assert one(reward, "\\boxed{5}", answer="\\frac{11}{2}") == 0.0
