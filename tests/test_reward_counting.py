"""count_accuracy: the last <answer>N</answer> outside <think>; reproduces R1-V's real SuperCLEVR extraction."""

from __future__ import annotations

import json
import pickle
import re
import time

import pytest

import r1h
from r1h.plugins.rewards.counting import CountAccuracy, extract_count, read_gold

# R1-V's evaluation pattern (DESIGN.md): the FIRST match anywhere, think block included.
R1V_PATTERN = re.compile(r"<answer>\s*(\d+)\s*</answer>")


def r1v_extract(output: str) -> int | None:
    match = R1V_PATTERN.search(output)
    return int(match.group(1)) if match else None


@pytest.fixture
def reward():
    return CountAccuracy("count_accuracy")


def score(reward, text, gold, prompt=None):
    result = reward.grade_one(text, prompt, {"answer": gold})
    assert result.error is None, result.error
    return result.score


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<think>\nThere are four.\n</think>\n<answer>\n    4\n    </answer>", "4"),
        ("<answer>4</answer>", "4"),
        ("<answer> 10 </answer>", "10"),
        ("<think>I see <answer>3</answer> maybe</think><answer>5</answer>", "5"),
        ("<think>I see <answer>3</answer> maybe</think> so five", None),  # R1-V would say 3
        ("<think>draft <answer>3</answer>", None),  # unclosed think hides the rest
        ("<answer>3</answer> then <answer>5</answer>", "5"),  # the last one counts
        ("<answer>5</answer> then <answer>five</answer>", "5"),  # a non-numeric block is skipped
        ("<answer>4 objects</answer>", None),  # as in R1-V: digits only
        ("<answer>-4</answer>", None),
        ("<answer>4.0</answer>", None),
        ("no tags 4", None),
        ("", None),
        ("prefilled thoughts <answer>2</answer></think><answer>7</answer>", "7"),  # leading </think> closes a prefill
        ("<answer>1</answer><think>x</think><answer>2</answer><think>y <answer>9</answer></think>", "2"),
    ],
)
def test_extract(reward, text, expected):
    assert reward.extract(text) == expected


def test_score(reward):
    assert score(reward, "<think>hmm</think><answer>4</answer>", 4) == 1.0
    assert score(reward, "<think>hmm</think><answer>4</answer>", 5) == 0.0
    assert score(reward, "<think>it is <answer>4</answer></think>", 4) == 0.0  # R1-V credits this; we do not
    assert score(reward, "<answer>04</answer>", 4) == 1.0
    assert score(reward, "<answer>4</answer>", "4") == 1.0
    assert score(reward, "<answer>4</answer>", " 4 ") == 1.0
    assert score(reward, "<answer>4</answer>", "<answer> 4 </answer>") == 1.0  # R1-V's training solution column
    assert score(reward, "<answer>4</answer>", 4.0) == 1.0
    assert score(reward, "nothing", 4) == 0.0


def test_prefill_prompt(reward):
    prompt = [{"role": "assistant", "content": "Let me count.\n<think>"}]
    assert score(reward, " I see <answer>3</answer> things </think><answer>5</answer>", 5, prompt) == 1.0
    # with the <think> prefilled and never closed, everything the model wrote is thinking
    assert score(reward, " I see <answer>3</answer> things", 3, prompt) == 0.0
    assert score(reward, " I see <answer>3</answer> things", 3) == 1.0  # without a prefill it is outside


@pytest.mark.parametrize("gold", [None, "four", "", "4.5", 4.5, True, [4], "<answer>many</answer>", "1" * 500])
def test_unreadable_gold_is_none(reward, gold):
    assert reward.grade_one("<answer>4</answer>", None, {"answer": gold}).score is None


def test_missing_gold_column_is_none(reward):
    assert reward.grade_one("<answer>4</answer>", None, {}).score is None


def test_read_gold():
    assert read_gold(7) == 7
    assert read_gold("<answer> 10 </answer>") == 10
    assert read_gold("x") is None


def test_hostile_inputs(reward):
    hostile = [
        "<answer>" + "9" * 1_000_000 + "</answer>",  # a million-digit count: no int() blow-up
        "<answer>" + " " * 1_000_000,
        "<answer>" * 200_000,
        "<think>" * 100_000 + "</think>" * 100_000 + "<answer>3</answer>",
        "<answer>\x00</answer>",
        "<answer>\ud800</answer>",
        "<answer>" + "1" * 5000 + "</answer>",
    ]
    for text in hostile:
        start = time.perf_counter()
        result = reward.grade_one(text, None, {"answer": 3})
        assert result.error is None
        assert result.score in (0.0, 1.0)
        assert time.perf_counter() - start < 1.0


def test_equivalent(reward):
    assert reward.equivalent("007", "7")
    assert not reward.equivalent("7", "8")


def _results(refdata):
    files = sorted((refdata / "superclevr").glob("counting_results_*.json"))
    assert len(files) == 2
    return [(f.name, json.loads(f.read_text())) for f in files]


def compare(reward, results):
    """(ours correct, R1-V correct, exceptions) where exceptions are items whose extractions differ."""
    exceptions = []
    ours_correct = theirs_correct = 0
    for item in results:
        output, theirs, gold = item["model_output"], item["extracted_answer"], item["ground_truth"]
        assert r1v_extract(output) == theirs  # our understanding of how R1-V extracted
        mine = extract_count(output)
        mine = None if mine is None else int(mine)
        verdict = reward.grade_one(output, None, {"answer": gold}).score
        assert verdict == (1.0 if mine == gold else 0.0)
        ours_correct += verdict == 1.0
        theirs_correct += theirs is not None and theirs == gold
        if mine != theirs:
            # the only allowed difference: R1-V's number came from inside a think block
            first = R1V_PATTERN.search(output)
            assert first is not None and R1V_PATTERN.search(_inside_think_prefix(output, first.start())), item
            exceptions.append((theirs, mine, gold))
    changed = sum((t == g) - (m == g) for t, m, g in exceptions)
    assert ours_correct == theirs_correct - changed
    return ours_correct, theirs_correct, exceptions


def test_reproduces_r1v_extraction_on_real_outputs(refdata, reward):
    """Our extraction equals R1-V's extracted_answer on its real outputs, except where R1-V read inside <think>."""
    for name, data in _results(refdata):
        assert len(data["results"]) == 200
        ours, theirs, exceptions = compare(reward, data["results"])
        print(f"{name}: ours {ours}/200, R1-V {theirs}/200, exceptions {len(exceptions)}: {exceptions}")
        assert theirs / 2 == pytest.approx(data["accuracy"])  # their reported accuracy, in percent
        assert len(exceptions) == 0  # neither real run put a numeric <answer> inside <think>


def test_think_leak_exceptions_on_doctored_real_outputs(refdata, reward):
    """Plant a draft <answer> inside the think block of real outputs: R1-V would read it, we must not."""
    _, data = _results(refdata)[1]
    doctored = []
    for item in data["results"]:
        output = item["model_output"]
        if "<think>" not in output:
            continue
        output = output.replace("<think>", "<think> draft <answer>99</answer> ", 1)
        doctored.append({**item, "model_output": output, "extracted_answer": r1v_extract(output)})
    ours, theirs, exceptions = compare(reward, doctored)
    assert len(doctored) == 200 and theirs == 0  # R1-V now reads 99 everywhere
    assert len(exceptions) == 200 and ours == 96


def _inside_think_prefix(output: str, at: int) -> str:
    """The text of a think block containing position ``at`` ("" when ``at`` is outside every think block)."""
    start = output.rfind("<think>", 0, at)
    if start == -1:
        return ""
    end = output.find("</think>", start)
    return output[start:] if end == -1 or end > at else ""


def test_real_outputs_exact_counts(refdata, reward):
    """The two real runs: 48.0% before GRPO, 82.5% after, and no answer came from inside <think> in either."""
    accuracies = {}
    for name, data in _results(refdata):
        golds = [item["ground_truth"] for item in data["results"]]
        outputs = [item["model_output"] for item in data["results"]]
        scores = [reward.grade_one(o, None, {"answer": g}).score for o, g in zip(outputs, golds, strict=True)]
        accuracies[name] = 100 * sum(scores) / len(scores)
    assert sorted(accuracies.values()) == [48.0, 82.5]


def test_registered_and_picklable():
    reward = r1h.get_reward("count_accuracy")
    assert reward.__name__ == "count_accuracy"
    assert reward.columns == ("answer",)
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.__name__ == "count_accuracy"
    assert clone.grade_one("<answer>3</answer>", None, {"answer": 3}).score == 1.0


def test_called_like_trl(reward):
    pytest.importorskip("r1h.harness.grading.pool")
    out = reward(
        ["<answer>3</answer>", "<think><answer>3</answer></think>", "<answer>2</answer>"],
        prompts=None,
        answer=[3, 3, "<answer> 2 </answer>"],
    )
    assert out == [1.0, 0.0, 1.0]
