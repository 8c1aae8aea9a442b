"""think_format and tag_count: strict format, open-r1 defects fixed, <think> prefill via string and chat prompts."""

from __future__ import annotations

import pickle
import re
import time

import pytest

import r1h
from r1h.plugins.rewards.format import TagCount, ThinkFormat, well_formed

GOOD = "<think>\nI add 2 and 3.\n</think>\n<answer>\n5\n</answer>"
MINI_R1_PREFILL = "Let me solve this step by step.\n<think>"
CHAT_PREFILL = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Using the numbers [1, 2], create an equation that equals 3."},
    {"role": "assistant", "content": MINI_R1_PREFILL},
]


def scores(reward, completions, prompts=None, **columns):
    """What reward(completions, prompts, **columns) returns, computed in-process (no batch grader needed)."""
    prompts = prompts if prompts is not None else [None] * len(completions)
    rows = reward.rows(len(completions), columns)
    return [reward.grade_one(c, p, r).score for c, p, r in zip(completions, prompts, rows, strict=True)]


@pytest.fixture
def think_format():
    return ThinkFormat("think_format")


@pytest.fixture
def tag_count():
    return TagCount("tag_count")


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "<think>a</think><answer>5</answer>",  # no whitespace needed
        "  \n<think>a</think>\n\n<answer>5</answer>\n  ",  # whitespace around is fine
        "<think>\nline one\nline two\n\nline four\n</think>\n<answer>\n5\n</answer>",  # DOTALL: multi-line think
        "<think>x</think><answer>\nmulti\nline\nanswer\n</answer>",  # DOTALL: multi-line answer
        "<think></think><answer>5</answer>",  # an empty think block is still the format
        "<think>a < b and c > d</think><answer>x<y</answer>",  # stray angle brackets are content
    ],
)
def test_think_format_accepts(think_format, text):
    assert think_format.score(text) == 1.0


@pytest.mark.parametrize(
    "text",
    [
        "",
        "5",
        "<answer>5</answer>",  # no think
        "<think>a</think>",  # no answer
        "<think>a</think><answer>5</answer><answer>6</answer>",  # two answer blocks
        "<think>a</think>\n<answer>\n5\n</answer>\n<answer>\n6\n</answer>",  # two answer blocks, open-r1 layout
        "<think>a</think><think>b</think><answer>5</answer>",  # two think blocks
        "<answer>5</answer><think>a</think>",  # wrong order
        "preamble <think>a</think><answer>5</answer>",  # text before
        "<think>a</think><answer>5</answer> trailing",  # text after
        "<think>a</think> between <answer>5</answer>",  # text between
        "<think>a<answer>5</answer></think>",  # answer inside think
        "<think>a</think><answer>  \n </answer>",  # blank answer
        "<think>a</think><answer>5",  # unclosed answer
        "<think>a<answer>5</answer>",  # unclosed think
        "<think>a</think><answer>5</think></answer>",  # tag inside answer
        "<THINK>a</THINK><ANSWER>5</ANSWER>",  # tags are case-sensitive
        "<think>a</think><answer><answer>5</answer></answer>",  # nested answer
    ],
)
def test_think_format_rejects(think_format, text):
    assert think_format.score(text) == 0.0


def test_open_r1_regex_defects_are_fixed(think_format):
    """open-r1's own pattern accepts two answer blocks; without DOTALL it rejects a multi-line think."""
    open_r1 = r"^<think>\n.*?\n</think>\n<answer>\n.*?\n</answer>$"
    two_answers = "<think>\na\n</think>\n<answer>\n5\n</answer>\n<answer>\n6\n</answer>"
    assert re.match(open_r1, two_answers, re.DOTALL | re.MULTILINE)  # the defect exists
    assert think_format.score(two_answers) == 0.0
    multi_line = "<think>\na\nb\n</think>\n<answer>\n5\n</answer>"
    assert not re.match(open_r1, multi_line)  # without DOTALL
    assert think_format.score(multi_line) == 1.0


def test_think_format_prefill_string_prompt(think_format):
    completion = "\nI add 2 and 3.\n</think>\n<answer>\n5\n</answer>"
    assert think_format.score(completion) == 0.0  # on its own there is no <think>
    assert think_format.score(completion, "system... user... assistant: " + MINI_R1_PREFILL) == 1.0
    # R1-Distill chat templates render the generation prompt as "...<｜Assistant｜><think>\n"
    assert think_format.score("I add.\n</think>\n\n<answer>5</answer>", "<｜User｜>2+3?<｜Assistant｜><think>\n") == 1.0


def test_think_format_prefill_chat_prompt(think_format):
    completion = " I add 2 and 3.\n</think>\n<answer>5</answer>"
    assert think_format.score(completion, CHAT_PREFILL) == 1.0
    # a prompt whose last turn is the user's is not a prefill, even if it ends with <think>
    user_last = [{"role": "user", "content": "Reply starting with <think>"}]
    assert think_format.score(completion, user_last) == 0.0
    # typed-parts content is read too
    parts = [{"role": "assistant", "content": [{"type": "text", "text": MINI_R1_PREFILL}]}]
    assert think_format.score(completion, parts) == 1.0


def test_think_format_prefill_then_model_repeats_the_tag(think_format):
    """With <think> prefilled, a completion that opens <think> again holds two think tags."""
    assert think_format.score("<think>a</think><answer>5</answer>", CHAT_PREFILL) == 0.0


def test_prompt_not_ending_in_think_changes_nothing(think_format):
    assert think_format.score(GOOD, "Please think. <think> is a tag. Answer:") == 1.0
    assert think_format.score(GOOD, [{"role": "assistant", "content": "Sure."}]) == 1.0


def test_batch_with_conversational_completions_and_prompts(think_format):
    completions = [
        [{"role": "assistant", "content": GOOD}],
        [{"role": "assistant", "content": "no tags"}],
        [{"role": "assistant", "content": "\nok\n</think>\n<answer>7</answer>"}],
    ]
    prompts = [[{"role": "user", "content": "q"}], [{"role": "user", "content": "q"}], CHAT_PREFILL]
    assert scores(think_format, completions, prompts) == [1.0, 0.0, 1.0]


def test_hostile_inputs_are_fast_and_never_raise(think_format, tag_count):
    hostile = [
        "<think>" * 200_000,
        "<think>" + "a" * 1_000_000 + "</think><answer>" + "(" * 100_000,
        "<think>\x00</think><answer>\x00</answer>",
        "<think>\ud800</think><answer>\udfff</answer>",  # lone surrogates
        None,
        12345,
        [{"role": "assistant"}],
        [{"role": "assistant", "content": None}],
    ]
    for text in hostile:
        for reward in (think_format, tag_count):
            start = time.perf_counter()
            result = reward.grade_one(text, MINI_R1_PREFILL)
            assert result.error is None
            assert result.score in (0.0, 0.25, 0.5, 0.75, 1.0)
            assert time.perf_counter() - start < 1.0
    assert think_format.grade_one("<think>\x00</think><answer>\x00</answer>").score == 1.0  # NUL is content


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>\nr\n</think>\n<answer>\n5\n</answer>", 1.0),
        ("<think>\nr\n</think>\n<answer>\n5\n</answer>\n", 1.0),
        ("<think>r</think><answer>5</answer>", 0.0),  # no newlines: no credit
        ("<think>\nr\n</think>\n", 0.5),
        ("<think>\nr\n</think>\n<answer>5</answer>", 0.5),
        ("<think>\n<think>\nr\n</think>\n<answer>\n5\n</answer>", 0.75),  # "<think>\n" twice
        ("<think>\nr\n</think>\n<answer>\n5\n</answer>\n<answer>\n6\n</answer>", 0.5),  # answer tags twice
        ("", 0.0),
    ],
)
def test_tag_count_partial_credit(tag_count, text, expected):
    assert tag_count.score(text) == expected


def test_tag_count_respects_prefill(tag_count):
    completion = "\nr\n</think>\n<answer>\n5\n</answer>"
    assert tag_count.score(completion) == 0.75  # "<think>\n" missing
    assert tag_count.score(completion, MINI_R1_PREFILL) == 1.0
    assert tag_count.score(completion, CHAT_PREFILL) == 1.0
    assert scores(tag_count, [completion, completion], [None, CHAT_PREFILL]) == [0.75, 1.0]


def test_well_formed_helper():
    assert well_formed(GOOD)
    assert not well_formed(GOOD + GOOD)


@pytest.mark.parametrize("name", ["think_format", "tag_count"])
def test_registered_picklable_and_named(name):
    reward = r1h.get_reward(name)
    assert reward.__name__ == name
    assert reward.isolate is False
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == name
    assert scores(clone, [GOOD, "x"]) == scores(reward, [GOOD, "x"]) == [1.0, 0.0]
    listed = {row["name"]: row for row in r1h.list_plugins("reward")}
    assert listed[name]["version"] == "1"
    assert listed[name]["description"]


def test_called_like_trl(think_format):
    """The TRL signature through the batch grader (skips until r1h.harness.grading.pool exists)."""
    pytest.importorskip("r1h.harness.grading.pool")
    out = think_format([GOOD, "bad", "\nx\n</think><answer>1</answer>"], prompts=["q", "q", MINI_R1_PREFILL])
    assert out == [1.0, 0.0, 1.0]
