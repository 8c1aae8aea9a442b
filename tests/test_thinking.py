"""r1h.harness.eval.thinking (per-sample think/answer tokens, truncation summary), the results table at 80 columns, and
incomplete benchmarks (fewer samples than n on a problem) in results, the table and report.md."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from r1h.harness.eval import metrics, report, thinking
from r1h.plugins.rewards import _text

COUNTDOWN_PROMPT = [{"role": "user", "content": "Using [1, 2] make 3."},
                    {"role": "assistant", "content": "Let me solve this step by step.\n<think>"}]


def test_think_prefill_has_one_home_and_the_rewards_use_it():
    assert _text.think_prefill is thinking.think_prefill
    assert thinking.think_prefill(COUNTDOWN_PROMPT) == "<think>"


@pytest.mark.parametrize(
    ("completion", "prompt", "num", "expected"),
    [
        ("a b c </think> 42", None, 10, (9, 1, True)),  # the exact total less the answer estimate
        ("<think> a b c </think> The answer is 42.", None, 20, (14, 6, True)),  # answer(6 chars) is 2
        (" 1 + 2 = 3 </think> <answer>3</answer>", COUNTDOWN_PROMPT, 12, (2, 10, True)),  # the prefill opened it
        ("<think> still going", None, 99, (99, 0, False)),  # opened, never closed: all thinking
        ("Let me think. \\boxed{4}", None, 9, (None, None, None)),  # no think section at all
        ("a b </think> x y z", None, 0, (2, 3, True)),  # no count from the backend: both estimated
    ],
)
def test_measure(completion, prompt, num, expected):
    m = thinking.measure(completion, prompt, num)
    assert (m["think_tokens"], m["answer_tokens"], m["think_closed"]) == expected


def test_a_user_turn_ending_with_think_is_no_prefill():
    prompt = [{"role": "user", "content": "Explain the tag <think>"}]
    assert thinking.measure("plain answer", prompt, 5)["think_closed"] is None


def test_approx_tokens_counts_words_by_four_characters_and_each_mark():
    assert thinking.approx_tokens("") == 0
    assert thinking.approx_tokens("a bb ccc dddd") == 4
    assert thinking.approx_tokens("eeeee") == 2
    assert thinking.approx_tokens("\\frac{1}{2}") == 8  # \ frac { 1 } { 2 }


def test_older_records_are_measured_when_read():
    old = {"completion": "x y </think> 7", "num_tokens": 6, "prompt": None}
    assert thinking.sample_lengths(old) == {"tokens": 6, "think_tokens": 5, "answer_tokens": 1, "think_closed": True}
    stored = {**old, "think_tokens": 4, "answer_tokens": 2, "think_closed": True}
    assert thinking.sample_lengths(stored)["think_tokens"] == 4
    assert thinking.sample_lengths({"completion": "one two", "num_tokens": 0})["tokens"] == 2


def _record(pid, i, correct, tokens, reason="stop"):
    return {"id": pid, "sample_index": i, "correct": correct, "finish_reason": reason, "tokens": tokens,
            "think_tokens": None, "answer_tokens": None, "think_closed": None}


def test_a_benchmark_without_think_sections_has_no_think_figures():
    recs = [_record("a", 0, True, 10), _record("a", 1, False, 100, "length"), _record("b", 0, True, 300),
            _record("b", 1, True, 50)]
    m = metrics.aggregate(recs, n=2, max_tokens=100)
    assert m["think_closed_rate"] is None and set(m["lengths"]) == {"tokens"}
    assert m["truncated_rate"] == 0.25 and m["pass@1_truncated"] == 0.0 and m["pass@1_finished"] == 1.0
    assert m["budget_curve"] == {"32": 0.25, "64": 0.5, "100": 0.5}  # 300 tokens is over every budget
    assert m["short_problems"] == 0


def test_budgets():
    assert thinking.budgets(32768)[:3] == [32, 64, 128] and thinking.budgets(32768)[-2:] == [16384, 32768]
    assert thinking.budgets(100) == [32, 64, 100]
    assert thinking.budgets(16) == [16]


def _results(**bench_fields):
    base = {"pass@1": 0.5, "pass@1_ci95": [0.25, 0.75], "maj@n": 0.5, "pass@k": {"1": 0.5, "2": 0.6, "4": 0.7},
            "n_samples": 4, "n_problems": 500, "timeouts": 0, "truncated": 12, "unparseable": 3}
    return {"model": "m", "benchmarks": {
        "superclevr_counting_long_name": {**base, "pass@1": 1.0, "pass@1_ci95": [1.0, 1.0]},
        "math500": {**base, **bench_fields}}}


def _render(results, width):
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(report.results_table(results, width=width))
    return out.getvalue()


@pytest.mark.parametrize("width", [60, 80, 100])
def test_the_table_fits_the_terminal_and_never_cuts_the_name_or_pass1(width):
    text = _render(_results(), width)
    assert max(len(line) for line in text.splitlines()) <= width
    assert "superclevr_counting_long_name" in text and "100.00" in text and "50.00" in text
    assert "…" not in text


def test_columns_are_dropped_in_the_stated_order():
    rows = report.table_rows(_results())
    assert report.fit_columns(rows, None) == list(range(len(report.COLUMNS)))
    previous = set(report.COLUMNS)
    for width in range(200, 20, -5):
        kept = {report.COLUMNS[i] for i in report.fit_columns(rows, width)}
        dropped = {c for c in report.COLUMNS if c not in kept}
        assert dropped == set(report.DROP_ORDER[: len(dropped)])  # always a prefix of the stated order
        assert {"benchmark", "pass@1"} <= kept and kept <= previous
        previous = kept
    assert "not shown at 80 columns: pass@k" in _render(_results(), 80)


def test_a_problem_short_of_n_marks_the_benchmark_incomplete():
    recs = [_record("a", i, True, 5) for i in range(4)] + [_record("b", i, True, 5) for i in range(3)]
    m = metrics.aggregate(recs, n=4)
    assert m["short_problems"] == 1
    results = _results(complete=False, total_samples=7, expected_samples=8, short_problems=1)
    assert report.incomplete(results) == ["math500: 7 of 8 samples stored, 1 problem(s) with fewer than n"]
    assert "math500*" in _render(results, 120) and "* incomplete" in _render(results, 120)
    md = report.markdown(results)
    assert "> **Incomplete run**" in md and "| math500* |" in md
    finished = _results(complete=True)
    assert report.incomplete(finished) == [] and "Incomplete" not in report.markdown(finished)
    assert report.incomplete({**finished, "complete": False}) == ["the run did not finish"]
