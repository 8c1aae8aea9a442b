"""choice_accuracy: the last explicit final-answer letter against a gold A-D; reasoning mentions do not count."""

from __future__ import annotations

import pickle
import time

import pytest

import r1h
from r1h.plugins.rewards import choice as c


@pytest.fixture(scope="module")
def reward():
    return c.ChoiceAccuracy()


@pytest.mark.parametrize(
    ("completion", "letter"),
    [
        ("Answer: B", "B"),
        ("answer: c", "C"),  # a lower-case letter standing alone after "answer:"
        ("the answer: a simple harmonic oscillator", None),  # a lower-case word is prose
        ("The answer is (C).", "C"),
        ("So the correct answer is **D**.", "D"),
        ("the answer is option A", "A"),
        ("Final answer: $\\boxed{B}$", "B"),
        ("\\boxed{\\text{C}}", "C"),
        ("\\boxed{(D)}", "D"),
        ("<answer>C</answer>", "C"),
        ("**Answer:** (B) 42", "B"),
        ("Let me weigh the options.\n\nC", "C"),  # a last line holding a lone letter
        ("Let me weigh the options.\n\n**(B)**\n", "B"),
        ("Answer: A\nHmm, wait. Re-reading, the answer is D.", "D"),  # the last explicit statement wins
        ("The answer is D... no. Answer: A", "A"),
        ("Answer: A\n\nB", "B"),
        ("Option B looks wrong, and A is tempting; C ignores friction.", None),  # mere mentions
        ("A is tempting. B also.", None),
        ("The answer is a bit tricky.", None),
        ("Answers vary by source.", None),
        ("Answer: Because friction is absent, the ball keeps rolling.", None),
        ("Answer: E", None),
        ("", None),
        ("<think>Answer: A. Or \\boxed{B}?</think>The answer is C", "C"),  # reasoning inside <think> is ignored
        ("<think>The answer is A</think> I am not sure.", None),
        ("<think>unclosed reasoning, the answer is B", "B"),  # no </think>: everything is read
    ],
)
def test_predicted_letter(reward, completion, letter):
    assert reward.extract(completion) == letter


@pytest.mark.parametrize(
    ("completion", "gold", "expected"),
    [
        ("Answer: B", "B", 1.0),
        ("Answer: B", "b", 1.0),
        ("Answer: B", "(B)", 1.0),
        ("Answer: B", "C", 0.0),
        ("no letter here", "A", 0.0),
        ("Answer: B", "E", None),
        ("Answer: B", "", None),
        ("Answer: B", None, None),
        ("Answer: B", 2, None),
        ("Answer: B", "Paris", None),
    ],
)
def test_scores(reward, completion, gold, expected):
    assert reward.grade_one(completion, None, {"answer": gold}).score == expected


def test_missing_gold_is_none(reward):
    assert reward.grade_one("Answer: A", None, {}).score is None


def test_trl_signature_conversational_lists_and_ignored_kwargs(reward):
    completions = [
        [{"role": "assistant", "content": "<think>maybe A</think>Answer: B"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "The answer is (D)."}]}],
        "\\boxed{C}",
        "I think A is plausible",
    ]
    scores = reward(
        prompts=[[{"role": "user", "content": "q"}]] * 4,
        completions=completions,
        completion_ids=[[1], [2], [3], [4]],
        answer=["B", "D", "A", "A"],
        trainer_state=object(),
        log_metric=lambda *a, **k: None,
    )
    assert scores == [1.0, 1.0, 0.0, 0.0]
    assert reward(["Answer: C", "Answer: D"], answer="C") == [1.0, 0.0]  # a scalar gold applies to all


def test_linear_time_on_hostile_text(reward):
    hostile = [
        "answer" * 200_000,
        "Answer:" + " " * 500_000 + "B",
        "\\boxed{" * 100_000,
        "<answer>" * 100_000,
        "(" * 300_000 + "A",
        "\n" * 300_000 + "A",
        "x" * 1_000_000,
        "\x00Answer: B\x00",
    ]
    for text in hostile:
        start = time.process_time()
        reward.grade_one(text, None, {"answer": "A"})
        assert time.process_time() - start < 1.0, text[:20]


def test_registered_picklable_and_named():
    reward = r1h.get_reward("choice_accuracy")
    assert isinstance(reward, c.ChoiceAccuracy)
    assert reward.__name__ == "choice_accuracy"
    assert reward.isolate is False and reward.columns == ("answer",)
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "choice_accuracy"
    assert clone(["Answer: A"], answer=["A"]) == [1.0]
    assert reward.equivalent("b", " B ")
    row = next(r for r in r1h.list_plugins() if r.get("name") == "choice_accuracy")
    assert row["version"] == "1" and row["description"]


@pytest.mark.parametrize("completion", [None, 42, {"role": "assistant"}, [{"content": None}], "\udcffAnswer: A", b"x"])
def test_never_raises(reward, completion):
    assert reward.grade_one(completion, None, {"answer": "A"}).score in (0.0, 1.0)
