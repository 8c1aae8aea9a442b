"""Strict, typed gold (issue 10 item 3): every wrong gold type is refused with one line naming FILE:LINE (or FILE: row
N) and the column, through `r1h eval` (exit 1, no traceback), never coerced silently."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1h.harness.cli.main import main

OK_MATH = '{"problem": "1+1?", "answer": "2", "unique_id": "a"}'
OK_COUNTDOWN = '{"target": 10, "nums": [5, 5]}'
DEEP = "[" * 100_000 + "]" * 100_000


def run_eval(tmp_path: Path, bench: str, source: Path):
    result = CliRunner().invoke(
        main,
        ["eval", "--backend", "gold", "--bench", bench, "--data", f"{bench}={source}",
         "--output", str(tmp_path / "run"), "--no-progress"],
    )
    return result


def assert_one_line(result, expected: str) -> None:
    assert result.exit_code == 1, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    assert result.output.strip().splitlines() == [f"Error: {expected}"]


MATH_CASES = {
    "null answer": ('{"problem": "p", "answer": null}', "column 'answer' is null (expected a string or number)"),
    "list answer": ('{"problem": "p", "answer": [1, 2]}', "column 'answer' is a list (expected a string or number)"),
    "NaN answer": ('{"problem": "p", "answer": NaN}', "column 'answer' is NaN (expected a string or number)"),
    "bool answer": ('{"problem": "p", "answer": true}', "column 'answer' is true (expected a string or number)"),
    "object answer": ('{"problem": "p", "answer": {"a": 1}}',
                      "column 'answer' is an object (expected a string or number)"),
    "empty answer": ('{"problem": "p", "answer": "  "}',
                     "column 'answer' is an empty string (expected a string or number)"),
    "null problem": ('{"problem": null, "answer": "3"}', "column 'problem' is null (expected a non-empty string)"),
    "number problem": ('{"problem": 7, "answer": "3"}', "column 'problem' is an integer (expected a non-empty string)"),
    "deep nesting": ('{"problem": "p", "answer": ' + DEEP + "}", "column 'answer' is nested too deeply to read"),
    "huge integer": ('{"problem": "p", "answer": ' + "7" * 5000 + "}",
                     "column 'answer' holds an integer of over 4300 digits"),
}


@pytest.mark.parametrize("case", list(MATH_CASES))
def test_math500_bad_gold_is_one_line_with_file_line_and_column(tmp_path, case):
    line, reason = MATH_CASES[case]
    path = tmp_path / "m.jsonl"
    path.write_text(f"{OK_MATH}\n\n{line}\n")  # the blank line still counts: the bad row is on line 3
    assert_one_line(run_eval(tmp_path, "math500", path), f"math500: {path}:3: {reason}")
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").rglob("*.jsonl"))


COUNTDOWN_CASES = {
    "fractional target": ('{"target": 3.7, "nums": [1, 2]}', "column 'target' is the number 3.7 (expected an integer)"),
    "bool target": ('{"target": true, "nums": [1, 2]}', "column 'target' is true (expected an integer)"),
    "infinite target": ('{"target": Infinity, "nums": [1, 2]}', "column 'target' is infinite (expected an integer)"),
    "null target": ('{"target": null, "nums": [1, 2]}', "column 'target' is null (expected an integer)"),
    "string exponent target": ('{"target": "1e99999999999", "nums": [1, 2]}',
                               "column 'target' is the string '1e99999999999' (expected an integer)"),
    "object nums": ('{"target": 3, "nums": {"1": 1}}', "column 'nums' is an object (expected a list of integers)"),
    "overflowing nums": ('{"target": 3, "nums": [1, 1e400]}',
                         "column 'nums' item 1 is infinite (expected a list of integers)"),
    "fractional nums": ('{"target": 3, "nums": [1, 2.5]}',
                        "column 'nums' item 1 is the number 2.5 (expected a list of integers)"),
    "bool in nums": ('{"target": 3, "nums": [1, false]}',
                     "column 'nums' item 1 is false (expected a list of integers)"),
    "empty nums": ('{"target": 3, "nums": []}', "column 'nums' is an empty list (expected a list of integers)"),
    "huge target": ('{"target": ' + "9" * 4400 + ', "nums": [1]}',
                    "column 'target' holds an integer of over 4300 digits"),
}


@pytest.mark.parametrize("case", list(COUNTDOWN_CASES))
def test_countdown_bad_gold_is_one_line_with_file_line_and_column(tmp_path, case):
    line, reason = COUNTDOWN_CASES[case]
    path = tmp_path / "c.jsonl"
    path.write_text(f"{OK_COUNTDOWN}\n{line}\n")
    assert_one_line(run_eval(tmp_path, "countdown", path), f"countdown: {path}:2: {reason}")


def test_csv_and_parquet_rows_are_named_by_row_index(tmp_path):
    path = tmp_path / "c.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerows([["target", "nums"], ["10", "[5, 5]"], ["10", "[5, " + DEEP + "]"], ["12", "x"]])
    assert_one_line(run_eval(tmp_path, "countdown", path),
                    f"countdown: {path}: row 1: column 'nums' is nested too deeply to read (expected a list of integers)")
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "m.parquet"
    pq.write_table(pa.Table.from_pylist([{"problem": "p", "answer": "1"}, {"problem": "q", "answer": None}]), path)
    assert_one_line(run_eval(tmp_path, "math500", path),
                    f"math500: {path}: row 1: column 'answer' is null (expected a string or number)")


def test_gpqa_and_superclevr_columns_are_typed(tmp_path):
    columns = ["Question", "Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3"]
    path = tmp_path / "gpqa_diamond.csv"
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerows([columns, ["Q1", "a", "b", "c", "d"], ["", "a", "b", "c", "d"]])
    assert_one_line(run_eval(tmp_path, "gpqa_diamond", path),
                    f"gpqa_diamond: {path}: row 1: column 'Question' is an empty string (expected a non-empty string)")
    path = tmp_path / "s.jsonl"
    path.write_text('{"image_path": "a.png", "question": "How many?", "ground_truth": 2.5}\n')
    assert_one_line(run_eval(tmp_path, "superclevr_counting", path),
                    f"superclevr_counting: {path}:1: column 'ground_truth' is the number 2.5 (expected an integer)")


def test_good_gold_of_each_accepted_type_loads_unchanged(tmp_path):
    import r1h

    path = tmp_path / "m.jsonl"
    path.write_text('{"problem": "p", "answer": 33}\n{"problem": "q", "answer": " \\\\frac{1}{2} "}\n'
                    '{"problem": "r", "answer": 2.0}\n')
    assert [s.columns["answer"] for s in r1h.get_benchmark("aime24").load(str(path))] == ["33", "\\frac{1}{2}", "2"]
    path = tmp_path / "c.csv"
    path.write_text('target,nums\n"24","[4, 6, 1]"\n')
    sample = r1h.get_benchmark("countdown").load(str(path))[0]
    assert sample.columns == {"target": 24, "nums": [4, 6, 1]}


def test_heldout_slice_names_the_source_line_of_a_bad_row(tmp_path):
    import r1h
    from r1h.harness.core.errors import DataError
    from r1h.harness.data.sources import Source

    lines = [OK_COUNTDOWN] * 50_000
    lines[49_600] = '{"target": 3.5, "nums": [1, 2]}'
    path = tmp_path / "c.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as exc:
        r1h.get_benchmark("countdown").load(str(path))
    assert str(exc.value) == (f"countdown: {path}:49601: column 'target' is the number 3.5 (expected an integer)")
    hub = Source("hub", "org/x", hub_id="org/x", split="train", rows_at=[(-1, 49_500), (-1, 49_501)])
    assert hub.locate(1) == "hub dataset org/x (split train): row 49501"
