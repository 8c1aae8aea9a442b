"""open-r1 shaping rewards: reasoning_steps, cosine_length, repetition_penalty, soft_overlong (defects fixed)."""

from __future__ import annotations

import math
import pickle
import time

import pytest

import r1h
from r1h.harness.core.errors import ConfigError
from r1h.harness.core.reward import Reward
from r1h.plugins.rewards.shaping import (
    CosineLength,
    ReasoningSteps,
    RepetitionPenalty,
    SoftOverlong,
    completion_length,
)


class StubCorrect(Reward):
    """Correctness stand-in (math_accuracy is another helper's): 1.0 when the gold text occurs in the completion.

    Gold "?" is unreadable (None), like a solution without any answer."""

    name = "stub_correct"

    def score(self, completion, prompt=None, **row):
        gold = row.get("answer", row.get("solution"))
        if gold is None or gold == "?":
            return None
        return 1.0 if f"\\boxed{{{gold}}}" in completion else 0.0

    def extract(self, completion, prompt=None, **row):
        return "stub"


def cosine(**params):
    return CosineLength("cosine_length", correctness=StubCorrect(), **params)


# -- reasoning_steps ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", 0.0),
        ("The answer is 4.", 0.0),
        ("Step 1: add", 1 / 3),
        ("Step 1: add\nStep 2: carry\nStep 3: done", 1.0),
        ("Step 1: a Step 2: b Step 3: c Step 4: d", 1.0),  # capped at 1
        ("First, add. Second, carry.", 2 / 3),
        ("First, a. Next, b. Finally, c.", 1.0),
        ("1. add\n2. carry", 2 / 3),  # numbered lines, each line counts (open-r1 only matched the first)
        ("Intro\n- a\n- b\n* c", 1.0),  # bullets
        ("step 1: lower case does not count", 0.0),
        ("Step one: words do not count", 0.0),
    ],
)
def test_reasoning_steps(text, expected):
    assert ReasoningSteps("reasoning_steps").score(text) == pytest.approx(expected)


def test_reasoning_steps_param_and_hostile():
    assert ReasoningSteps(min_steps=1).score("Step 1: x") == 1.0
    with pytest.raises(ConfigError):
        ReasoningSteps(min_steps=0)
    reward = ReasoningSteps()
    for text in ("Step " + "1" * 1_000_000, "\n" * 1_000_000, ("1" * 1000 + "\n") * 1000, "Step 1:" * 150_000):
        start = time.perf_counter()
        assert reward.grade_one(text).error is None
        assert time.perf_counter() - start < 1.0


# -- cosine_length ------------------------------------------------------------------------------------------------
def test_cosine_defaults_are_open_r1s():
    reward = CosineLength()
    assert (reward.min_value_wrong, reward.max_value_wrong) == (-1.0, -0.5)
    assert (reward.min_value_correct, reward.max_value_correct) == (0.5, 1.0)
    assert reward.max_len == 1000
    assert reward.isolate is True
    assert reward.correctness == "math_accuracy"


def test_cosine_schedule_and_clamp():
    reward = cosine()
    assert reward.scale(0, True) == pytest.approx(1.0)
    assert reward.scale(500, True) == pytest.approx(0.75)
    assert reward.scale(1000, True) == pytest.approx(0.5)
    assert reward.scale(0, False) == pytest.approx(-1.0)
    assert reward.scale(500, False) == pytest.approx(-0.75)
    assert reward.scale(1000, False) == pytest.approx(-0.5)
    # open-r1 took cos(pi * len / max_len) unclamped: at 2 * max_len it was back at the short-length value
    assert math.cos(2 * math.pi) == pytest.approx(1.0)
    for length in (1000, 1500, 2000, 10_000_000):
        assert reward.scale(length, True) == pytest.approx(0.5)
        assert reward.scale(length, False) == pytest.approx(-0.5)
    # monotone: shorter correct is better, shorter wrong is worse
    lengths = range(0, 3001, 100)
    correct = [reward.scale(n, True) for n in lengths]
    wrong = [reward.scale(n, False) for n in lengths]
    assert correct == sorted(correct, reverse=True)
    assert wrong == sorted(wrong)


def test_cosine_scores_with_correctness_and_length():
    reward = cosine()
    right, wrong = "\\boxed{4}", "\\boxed{5}"
    assert reward.grade_one(right, None, {"answer": "4"}).score == pytest.approx(reward.scale(len(right), True))
    assert reward.grade_one(wrong, None, {"answer": "4"}).score == pytest.approx(reward.scale(len(wrong), False))
    long_right = "x" * 5000 + right
    assert reward.grade_one(long_right, None, {"answer": "4"}).score == pytest.approx(0.5)
    assert reward.grade_one(right, None, {"solution": "4"}).score > 0.9  # the solution column works too


def test_cosine_uses_token_count_when_given():
    reward = cosine()
    text = "\\boxed{4}"
    by_tokens = reward.grade_one(text, None, {"answer": "4", "completion_ids": list(range(500))}).score
    assert by_tokens == pytest.approx(0.75)
    rows = reward.rows(2, {"answer": ["4", "4"], "completion_ids": [[1] * 1000, [1] * 10]})
    assert [len(r["completion_ids"]) for r in rows] == [1000, 10]
    assert reward.grade_one(text, None, rows[0]).score == pytest.approx(0.5)
    words = cosine(length_unit="words", max_len=2)
    assert words.grade_one("a \\boxed{4}", None, {"answer": "4", "completion_ids": [1] * 999}).score == 0.5
    assert completion_length("a b c", None, "words") == 3
    assert completion_length("a b c", None, "auto") == 5
    assert completion_length("a b c", [1, 2], "chars") == 5
    assert completion_length("a b c", [1, 2], "tokens") == 2


def test_cosine_unreadable_gold_is_none_not_one():
    reward = cosine()
    assert reward.grade_one("\\boxed{4}", None, {"answer": "?"}).score is None
    assert reward.grade_one("\\boxed{4}", None, {}).score is None


def test_cosine_passes_gold_first_to_math_accuracy():
    """With the real math_accuracy (which calls math-verify gold first), cosine_length's verdict is exactly
    math_accuracy's verdict, scaled by length."""
    try:
        math_reward = r1h.get_reward("math_accuracy")
    except Exception:
        pytest.skip("math_accuracy is not available yet")
    reward = CosineLength()
    for text, gold in [("so \\boxed{4}", "4"), ("so \\boxed{5}", "4"), ("\\boxed{\\frac{1}{2}}", "0.5")]:
        verdict = math_reward.grade_one(text, None, {"answer": gold}).score
        got = reward.grade_one(text, None, {"answer": gold})
        assert got.error is None, got.error
        assert got.score == pytest.approx(reward.scale(len(text), verdict == 1.0))


def test_cosine_bad_params():
    with pytest.raises(ConfigError):
        CosineLength(max_len=0)
    with pytest.raises(ConfigError):
        CosineLength(length_unit="bytes")
    with pytest.raises(ConfigError):
        CosineLength(not_a_param=1)


# -- repetition_penalty -------------------------------------------------------------------------------------------
def test_repetition_penalty():
    reward = RepetitionPenalty("repetition_penalty")
    assert (reward.ngram_size, reward.max_penalty) == (3, -1.0)
    assert reward.score("") == 0.0
    assert reward.score("two words") == 0.0
    assert reward.score("the cat sat on the mat") == 0.0  # every 3-gram distinct
    # "a b c a b c": 3-grams abc bca cab abc -> 3 distinct of 4 -> 1 - 3/4 = 0.25
    assert reward.score("a b c a b c") == pytest.approx(-0.25)
    assert reward.score("A b C a B c") == pytest.approx(-0.25)  # lowercased words
    assert reward.score("go " * 1000) == pytest.approx(-(1 - 1 / 998))
    assert RepetitionPenalty(max_penalty=-0.5).score("a b c a b c") == pytest.approx(-0.125)
    assert RepetitionPenalty(ngram_size=1).score("a a b b") == pytest.approx(-0.5)
    with pytest.raises(ConfigError):
        RepetitionPenalty(max_penalty=0.5)
    with pytest.raises(ConfigError):
        RepetitionPenalty(ngram_size=0)


def test_repetition_penalty_megabyte():
    reward = RepetitionPenalty()
    start = time.perf_counter()
    result = reward.grade_one("word " * 200_000)
    assert result.error is None and result.score == pytest.approx(-1.0, abs=1e-4)
    assert time.perf_counter() - start < 2.0


# -- soft_overlong ------------------------------------------------------------------------------------------------
def test_soft_overlong_defaults_and_ramp():
    reward = SoftOverlong("soft_overlong")
    assert (reward.max_completion_len, reward.soft_punish_cache) == (16384, 4096)
    small = SoftOverlong(max_completion_len=100, soft_punish_cache=20)
    for length, expected in [(0, 0.0), (80, 0.0), (81, -1 / 20), (90, -0.5), (100, -1.0), (101, -1.0), (10**6, -1.0)]:
        assert small.grade_one("x", None, {"completion_ids": [0] * length}).score == pytest.approx(expected)
    assert small.score("y" * 90) == pytest.approx(-0.5)  # characters without ids
    assert SoftOverlong(max_completion_len=3, soft_punish_cache=1, length_unit="words").score("a b c d") == -1.0
    no_cache = SoftOverlong(max_completion_len=10, soft_punish_cache=0)
    assert no_cache.score("x" * 10) == 0.0 and no_cache.score("x" * 11) == -1.0
    with pytest.raises(ConfigError):
        SoftOverlong(max_completion_len=10, soft_punish_cache=11)


# -- all four -----------------------------------------------------------------------------------------------------
NAMES = ["reasoning_steps", "cosine_length", "repetition_penalty", "soft_overlong"]


@pytest.mark.parametrize("name", NAMES)
def test_registered_picklable_and_parameterised(name):
    reward = r1h.get_reward(name)
    assert reward.__name__ == name
    assert reward.param_names()
    listed = {row["name"]: row for row in r1h.list_plugins("reward")}
    assert listed[name]["version"] == "1" and listed[name]["description"]
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == name
    assert vars(clone).keys() == vars(reward).keys()


def test_cosine_pickles_without_its_resolved_judge():
    reward = cosine(max_len=10)
    assert reward.grade_one("\\boxed{4}", None, {"answer": "4"}).score == pytest.approx(
        0.5 + 0.5 * 0.5 * (1 + math.cos(0.9 * math.pi))
    )
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.max_len == 10
    assert (
        clone.grade_one("\\boxed{4}", None, {"answer": "4"}).score
        == reward.grade_one("\\boxed{4}", None, {"answer": "4"}).score
    )
    named = CosineLength()
    named._judge = StubCorrect()
    assert pickle.loads(pickle.dumps(named))._judge is None


def test_conversational_completions():
    completions = [
        [{"role": "assistant", "content": "Step 1: a\nStep 2: b\nStep 3: c"}],
        [{"role": "assistant", "content": "x"}],
    ]
    reward = ReasoningSteps()
    assert [reward.grade_one(c).score for c in completions] == [1.0, 0.0]


def test_called_like_trl():
    pytest.importorskip("r1h.harness.grading.pool")
    reward = SoftOverlong(max_completion_len=100, soft_punish_cache=20)
    out = reward(["a", "b"], prompts=None, completion_ids=[[1] * 10, [1] * 90], trainer_state=None)
    assert out == [0.0, -0.5]
