"""r1h.harness.data.sources: every file format, local clone layouts, and one-line errors naming path and columns."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from r1h.harness.core.errors import ConfigError, DataError
from r1h.harness.data.sources import apply_limit, find_split_files, load_rows, load_rows_with_source, resolve

ROWS = [{"problem": "1+1?", "answer": "2"}, {"problem": "2+2?", "answer": "4"}, {"problem": "3+3?", "answer": "6"}]
COLS = ("problem", "answer")


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def write_csv(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def load(source, **kw):
    kw.setdefault("default_hub_id", "nobody/nothing")
    kw.setdefault("required_columns", COLS)
    kw.setdefault("name", "bench")
    return load_rows(source, **kw)


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text, text
    return text


# -- formats ------------------------------------------------------------------------------------------------------
def test_jsonl(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n\n" + json.dumps(ROWS[1]) + "\n", encoding="utf-8")  # blank line skipped
    assert load(str(path)) == ROWS[:2]


@pytest.mark.parametrize("payload", [ROWS, {"data": ROWS}])
def test_json_list_and_data_object(tmp_path, payload):
    path = tmp_path / "x.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    assert load(path) == ROWS


def test_json_holding_json_lines(tmp_path):
    path = tmp_path / "x.json"
    path.write_text("\n".join(json.dumps(r) for r in ROWS), encoding="utf-8")
    assert load(path) == ROWS


def test_parquet_keeps_nested_values(tmp_path):
    rows = [{"target": 98, "nums": [44, 19, 35]}, {"target": 64, "nums": [63, 95, 96, 1]}]
    path = write_parquet(tmp_path / "x.parquet", rows)
    assert load(path, required_columns=("target", "nums")) == rows


def test_csv_with_multiline_cells_and_bom(tmp_path):
    rows = [{"Question": "Line one\nline two, with comma", "Correct Answer": "A \"quoted\" one"}]
    path = write_csv(tmp_path / "x.csv", rows)
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert load(path, required_columns=("Question", "Correct Answer")) == rows


def test_select_applies_to_parquet_and_text_files(tmp_path):
    rows = [{"problem": str(i), "answer": str(i)} for i in range(10)]
    for path in (write_parquet(tmp_path / "x.parquet", rows), write_jsonl(tmp_path / "x.jsonl", rows)):
        got = load(path, select=lambda n: range(7, 9) if n >= 10 else None)
        assert [r["problem"] for r in got] == ["7", "8"]
        assert [r["problem"] for r in load(path, select=lambda n: None)] == [str(i) for i in range(10)]


# -- local clones -------------------------------------------------------------------------------------------------
def test_clone_with_split_file_at_root(tmp_path):
    write_jsonl(tmp_path / "test.jsonl", ROWS)
    write_jsonl(tmp_path / "train.jsonl", [{"problem": "no", "answer": "no"}])
    (tmp_path / "README.md").write_text("---\n---\n")
    rows, src = load_rows_with_source(tmp_path, default_hub_id=None, split="test", required_columns=COLS)
    assert rows == ROWS and src.kind == "dir" and src.files == [tmp_path / "test.jsonl"]


def test_clone_with_sharded_parquet_read_in_order(tmp_path):
    write_parquet(tmp_path / "data" / "train-00001-of-00002.parquet", ROWS[2:])
    write_parquet(tmp_path / "data" / "train-00000-of-00002.parquet", ROWS[:2])
    write_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", [{"problem": "x", "answer": "y"}])
    (tmp_path / ".git").mkdir()
    write_jsonl(tmp_path / ".git" / "train.jsonl", [{"junk": 1}])  # never looked at
    assert load(tmp_path, split="train") == ROWS


def test_clone_prefers_one_format(tmp_path):
    write_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", ROWS)
    write_jsonl(tmp_path / "test.jsonl", ROWS)
    assert [p.suffix for p in find_split_files(tmp_path, split="test")] == [".parquet"]
    assert load(tmp_path) == ROWS


def test_clone_config_by_file_name_gpqa_layout(tmp_path):
    cols = ("Question", "Correct Answer")
    write_csv(tmp_path / "gpqa_diamond.csv", [{"Question": "d", "Correct Answer": "1"}])
    write_csv(tmp_path / "gpqa_main.csv", [{"Question": "m", "Correct Answer": "2"}])
    write_csv(tmp_path / "gpqa_extended.csv", [{"Question": "e", "Correct Answer": "3"}])
    rows = load(tmp_path, hub_config="gpqa_diamond", split="train", required_columns=cols)
    assert rows == [{"Question": "d", "Correct Answer": "1"}]


def test_clone_config_subfolders(tmp_path):
    write_jsonl(tmp_path / "easy" / "test.jsonl", ROWS[:1])
    write_jsonl(tmp_path / "hard" / "test-00000-of-00001.jsonl", ROWS[1:])
    assert load(tmp_path, hub_config="hard") == ROWS[1:]
    assert load(tmp_path, hub_config="easy") == ROWS[:1]


def test_clone_alt_split_and_single_file(tmp_path):
    write_jsonl(tmp_path / "test.jsonl", ROWS)
    write_jsonl(tmp_path / "other_test.jsonl", ROWS[:1])
    assert load(tmp_path, split="train", alt_splits=("test",)) == ROWS
    single = tmp_path / "single"
    write_jsonl(single / "whatever.jsonl", ROWS[:2])
    assert load(single, split="train") == ROWS[:2]


def test_clone_ambiguous_is_one_line_naming_the_files(tmp_path):
    write_jsonl(tmp_path / "a.jsonl", ROWS)
    write_jsonl(tmp_path / "b.jsonl", ROWS)
    with pytest.raises(DataError) as exc:
        load(tmp_path)
    msg = one_line(exc)
    assert str(tmp_path) in msg and "a.jsonl" in msg and "'test'" in msg and "--data bench=FILE" in msg


def test_empty_directory(tmp_path):
    with pytest.raises(DataError) as exc:
        load(tmp_path)
    assert str(tmp_path) in one_line(exc)


# -- errors -------------------------------------------------------------------------------------------------------
def test_missing_path_names_path_and_columns(tmp_path):
    missing = tmp_path / "nope" / "test.jsonl"
    with pytest.raises(DataError) as exc:
        load(str(missing))
    msg = one_line(exc)
    assert str(missing) in msg and "does not exist" in msg and "expected columns: problem, answer" in msg


@pytest.mark.parametrize("spec", ["./not-here", "no/such/dir/at/all", "rows.csv"])
def test_path_like_sources_are_not_sent_to_the_hub(spec):
    with pytest.raises(DataError, match="does not exist"):
        resolve(spec, default_hub_id=None)


def test_hub_ids_resolve_to_hub():
    src = resolve("HuggingFaceH4/MATH-500", default_hub_id=None, split="test")
    assert (src.kind, src.hub_id, src.split) == ("hub", "HuggingFaceH4/MATH-500", "test")
    src = resolve(None, default_hub_id="Idavidrein/gpqa", hub_config="gpqa_diamond", split="train")
    assert (src.kind, src.hub_id, src.config) == ("hub", "Idavidrein/gpqa", "gpqa_diamond")
    assert src.label == "hub:Idavidrein/gpqa/gpqa_diamond (split train)"


def test_no_source_and_no_default():
    with pytest.raises(DataError, match="--data bench=PATH"):
        load(None, default_hub_id=None)


@pytest.mark.parametrize("fmt", ["jsonl", "csv", "parquet"])
def test_missing_column_is_one_line_with_path_and_expected(tmp_path, fmt):
    rows = [{"problem": "1+1?", "solution": "2"}]
    path = tmp_path / f"x.{fmt}"
    {"jsonl": write_jsonl, "csv": write_csv, "parquet": write_parquet}[fmt](path, rows)
    with pytest.raises(DataError) as exc:
        load(path)
    msg = one_line(exc)
    assert str(path) in msg and "missing column(s) answer" in msg
    assert "expected columns: problem, answer" in msg and "found: problem, solution" in msg


def test_missing_column_in_a_later_row_names_the_row(tmp_path):
    path = write_jsonl(tmp_path / "x.jsonl", [ROWS[0], ROWS[1], {"problem": "p"}])
    with pytest.raises(DataError, match=r"x\.jsonl:3: missing column\(s\) answer"):
        load(path)


def test_bad_jsonl_names_the_line(tmp_path):
    path = tmp_path / "x.jsonl"
    path.write_text(json.dumps(ROWS[0]) + "\n" + json.dumps(ROWS[1]) + "\n{\"problem\": oops}\n", encoding="utf-8")
    with pytest.raises(DataError) as exc:
        load(path)
    assert f"{path}:3: not valid JSON" in one_line(exc)
    path.write_text(json.dumps(ROWS[0]) + "\n[1, 2]\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"x\.jsonl:2: expected a JSON object"):
        load(path)


@pytest.mark.parametrize(
    ("name", "payload", "pattern"),
    [
        ("x.json", b'{"data": [1, 2]}', "item 0 is int"),
        ("x.json", b"[1, 2", "not valid JSON"),
        ("x.jsonl", b'{"problem": "\xff\xfe"}\n', "not UTF-8"),
        ("x.parquet", b"PAR1 not really parquet", "unreadable parquet"),
        ("x.txt", b"hello", "unsupported file type"),
        ("x.jsonl", b"\n\n", "no rows"),
    ],
)
def test_unreadable_files_are_one_line(tmp_path, name, payload, pattern):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(DataError, match=pattern) as exc:
        load(path)
    assert str(path) in one_line(exc)


def test_unreachable_hub_is_one_line_suggesting_data(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(DataError) as exc:
        load(None, default_hub_id="r1h-test-nobody/no-such-dataset", name="math500")
    msg = one_line(exc)
    assert "hub dataset r1h-test-nobody/no-such-dataset split 'test' is not in the local cache" in msg
    assert "(HF_HUB_OFFLINE is set" in msg and "--data math500=PATH" in msg


def test_apply_limit():
    assert apply_limit([1, 2, 3], None) == [1, 2, 3]
    assert apply_limit([1, 2, 3], 2) == [1, 2]
    assert apply_limit([1, 2, 3], "5") == [1, 2, 3]
    for bad in (0, -1, "x"):
        with pytest.raises(ConfigError, match="--limit"):
            apply_limit([1], bad)


def test_json_files_too_deep_or_with_over_long_integers_are_one_line(tmp_path):
    listed = tmp_path / "list.json"
    listed.write_text('[\n {"problem": "p", "answer": ' + "9" * 5000 + "}\n]\n")
    with pytest.raises(DataError) as exc:
        load(listed)
    assert one_line(exc) == f"bench: {listed}: holds an integer of over 4300 digits"
    lines = tmp_path / "lines.json"
    lines.write_text('{"problem": "p", "answer": "1"}\n{"problem": "p", "answer": ' + "[" * 50_000 + "]" * 50_000 + "}\n")
    with pytest.raises(DataError) as exc:
        load(lines)
    assert one_line(exc) == f"bench: {lines}:2: column 'answer' is nested too deeply to read"
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 50_000 + "]" * 50_000)
    with pytest.raises(DataError) as exc:
        load(deep)
    assert one_line(exc) == f"bench: {deep}: nested too deeply to read"
