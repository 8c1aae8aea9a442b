"""The one JSON Lines reader (r1h/harness/data/jsonl.py) and its users: lazy reading, line numbers in one-line errors,
the torn-last-line policies, ``r1h compare`` streaming its sample files."""

from __future__ import annotations

import json
import os
import threading
import tracemalloc

import pytest
from click.testing import CliRunner
from helpers.rundirs import write_run

from r1h.harness.cli.main import main
from r1h.harness.core.errors import DataError, RunError
from r1h.harness.data import jsonl
from r1h.harness.data.readers import read_file_located
from r1h.tools.compare import compare_runs, load_run
from r1h.tools.distill import read_traces


def test_scan_reads_lazily_one_line_at_a_time(tmp_path):
    """A line is yielded before the next one is written: nothing waits for (or holds) the whole file."""
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    second = threading.Event()

    def writer():
        with open(fifo, "w") as fh:
            fh.write('{"n": 1}\n')
            fh.flush()
            second.wait(10)
            fh.write('{"n": 2}\n')

    thread = threading.Thread(target=writer)
    thread.start()
    lines = jsonl.scan(fifo)
    first = next(lines)  # blocks until the writer's first line, not until it closes the pipe
    assert (first.number, first.value) == (1, {"n": 1})
    second.set()
    assert [(line.number, line.value) for line in lines] == [(2, {"n": 2})]
    thread.join(10)


def test_lines_end_at_newline_only(tmp_path):
    """A U+2028 left raw in a string by ensure_ascii=False is text (str.splitlines would break the line there)."""
    path = tmp_path / "x.jsonl"
    rows = [{"completion": "a\u2028b\x85c"}, {"completion": "d"}]
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    assert [row for _, row in jsonl.objects(path)] == rows


@pytest.mark.parametrize("content, reason", [
    (b'{"a": 1}\n{"a": \n', "not valid JSON (Expecting value)"),
    (b'{"a": 1}\n[1, 2]\n', "expected a JSON object, got list"),
    (b'{"a": 1}\n{"a": "\xff"}\n', "not UTF-8 text (invalid start byte at byte 7)"),
    (b'{"a": 1}\n{"a": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n", "column 'a' is nested too deeply to read"),
])
def test_a_bad_line_is_one_error_naming_file_and_line(tmp_path, content, reason):
    path = tmp_path / "x.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError) as exc:
        list(jsonl.objects(path, prefix="bench: "))
    assert str(exc.value) == f"bench: {path}:2: {reason}"


def test_torn_last_line_policies(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_bytes(b'{"a": 1}\n\n{"a": 2}\n{"a": 3, "b')
    last = list(jsonl.scan(path))[-1]
    assert (last.number, last.last, last.torn, last.value) == (4, True, True, None)
    assert [n for n, _ in jsonl.objects(path, error=RunError, drop_torn=True)] == [1, 3]
    with pytest.raises(RunError, match=r"x\.jsonl:4: not valid JSON"):
        list(jsonl.objects(path, error=RunError))  # a data file: every line counts
    path.write_bytes(b'{"a": 1}\n{"a": 2, "b\n{"a": 3}\n')  # a bad line that is not the last is never dropped
    with pytest.raises(RunError, match=r"x\.jsonl:2: not valid JSON"):
        list(jsonl.objects(path, error=RunError, drop_torn=True))


def test_data_files_name_the_line_of_non_utf8_text(tmp_path):
    path = tmp_path / "data.jsonl"
    path.write_bytes(b'{"problem": "p", "answer": "1"}\n{"problem": "\xff", "answer": "2"}\n')
    with pytest.raises(DataError) as exc:
        read_file_located(path, name="math500")
    assert str(exc.value).startswith(f"math500: {path}:2: not UTF-8 text")


def test_compare_reads_a_u2028_completion_and_names_a_bad_line(tmp_path):
    texts = {"math500": {f"p{i}": ["so \u2028 the answer is 1"] for i in range(40)}}
    a = write_run(tmp_path / "a", {"math500": {f"p{i}": [i < 10] for i in range(40)}}, completions=texts)
    b = write_run(tmp_path / "b", {"math500": {f"p{i}": [i < 20] for i in range(40)}}, completions=texts)
    for run in (a, b):  # written as r1h eval writes them (ensure_ascii=False): the U+2028 is raw in the file
        path = run / "samples" / "math500.jsonl"
        path.write_text("".join(json.dumps(json.loads(line), ensure_ascii=False) + "\n"
                                for line in path.read_text().splitlines()), encoding="utf-8")
    out = compare_runs([load_run(a), load_run(b)], n_boot=100)
    assert out["benchmarks"]["math500"][1]["shared"] == 40
    samples = b / "samples" / "math500.jsonl"
    lines = samples.read_bytes().split(b"\n")
    lines[2] = b'{"id": "p2", "completion": "\xff"}'
    samples.write_bytes(b"\n".join(lines))
    res = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert res.exit_code == 1
    assert [line for line in res.output.splitlines() if line.strip()] == [
        f"Error: {samples}:3: not UTF-8 text (invalid start byte at byte 28)"]


def test_compare_streams_samples_instead_of_holding_them(tmp_path):
    """Two runs with 12 MB of completions each: compare's peak allocation stays far below one file's size."""
    problems = {f"p{i}": [i % 2 == 0, i % 3 == 0] for i in range(200)}
    texts = {"math500": {pid: ["x" * 30_000 + " \\boxed{1}"] * 2 for pid in problems}}
    a = write_run(tmp_path / "a", {"math500": problems}, completions=texts)
    b = write_run(tmp_path / "b", {"math500": {p: v[::-1] for p, v in problems.items()}}, completions=texts)
    size = (a / "samples" / "math500.jsonl").stat().st_size
    assert size > 12_000_000
    runs = [load_run(a), load_run(b)]
    tracemalloc.start()
    try:
        out = compare_runs(runs, n_boot=100)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    row = out["benchmarks"]["math500"][1]
    assert row["shared"] == 200 and row["n_ref"] == row["n_run"] == 2
    assert out["benchmarks"]["math500"][0]["truncation"]["median_tokens"] == 5
    assert peak < size / 4, f"compare held {peak / 1e6:.1f} MB for a {size / 1e6:.1f} MB samples file"


def test_distill_traces_errors_name_the_line(tmp_path):
    path = tmp_path / "traces.jsonl"
    path.write_text('{"question": "q", "completion": "c"}\n\n{"question": "q"}\n')
    with pytest.raises(DataError) as exc:
        read_traces(path)
    assert str(exc.value) == f"{path}:3: a trace needs 'question' and 'completion'"
