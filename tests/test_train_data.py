"""Training loaders (issue 10 item 5): a bad row names FILE:LINE and the column, and `r1h train ... --dry-run`
checks the data's columns and types against the recipe and its rewards, before any model loads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1h.harness.cli.main import main
from r1h.harness.core.errors import DataError

NO_MODEL = "/nonexistent/model-that-must-never-load"


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def dry_run(*args: str):
    return CliRunner().invoke(main, ["train", *args, "--model", NO_MODEL, "--dry-run"])


def one_error(result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    errors = [line for line in result.output.strip().splitlines() if line.startswith("Error")]
    assert len(errors) == 1, result.output
    return errors[0]


def test_corrupt_line_names_file_and_line_instead_of_dataset_generation_error(tmp_path):
    from r1h.trainers.data import load_source

    path = write(tmp_path / "train.jsonl", ['{"prompt": "a"}', '{"prompt": "b", "answer": ', '{"prompt": "c"}'])
    with pytest.raises(DataError) as exc:
        load_source(str(path))
    assert str(exc.value) == f"data: {path}:2: not valid JSON (Expecting value)"
    clone = tmp_path / "clone"
    clone.mkdir()
    write(clone / "train.jsonl", ['{"prompt": "a"}', "[1, 2]"])
    with pytest.raises(DataError, match=r"^data: .*clone/train\.jsonl:2: expected a JSON object, got list$"):
        load_source(str(clone))


def test_locate_names_the_line_where_a_column_changes_type(tmp_path):
    from r1h.trainers.data import locate_bad_json

    path = write(tmp_path / "t.jsonl", ['{"nums": [1, 2]}', "", '{"nums": null}', '{"nums": "1, 2"}'])
    with pytest.raises(DataError) as exc:
        locate_bad_json(path)
    assert str(exc.value) == (f"data: {path}:4: column 'nums' is a string but line 1 has a list "
                              "(datasets needs one type per column)")
    locate_bad_json(write(tmp_path / "ok.jsonl", ['{"a": 1}', '{"a": 2.5}']))  # int and float: both numbers


def test_dry_run_refuses_data_without_the_recipes_columns(tmp_path):
    path = write(tmp_path / "cd.jsonl", [json.dumps({"target": 6, "numbers": [1, 2, 3]})])
    assert one_error(dry_run("grpo", "--data", str(path))) == (
        f"Error: data {path}: missing column(s) nums for format 'countdown' (has: target, numbers)")


@pytest.mark.parametrize(("row", "reason"), [
    ({"target": 3.7, "nums": [1, 2]}, "column 'target' is the number 3.7 (expected an integer)"),
    ({"target": True, "nums": [1, 2]}, "column 'target' is true (expected an integer)"),
    ({"target": 3, "nums": {"1": 1}}, "column 'nums' is an object (expected a list of integers)"),
])
def test_dry_run_checks_countdown_types_row_by_row(tmp_path, row, reason):
    path = write(tmp_path / "cd.jsonl", [json.dumps({"target": 6, "nums": [1, 2, 3]}), json.dumps(row)])
    assert one_error(dry_run("grpo", "--data", str(path))) == f"Error: data: {path}:2: {reason}"


def test_dry_run_checks_the_columns_each_reward_reads(tmp_path):
    path = write(tmp_path / "cd.jsonl", [json.dumps({"target": 6, "nums": [1, 2, 3]})])
    result = dry_run("grpo", "--data", str(path), "--reward", "math_accuracy")
    assert one_error(result) == (
        f"Error: data {path}: reward 'math_accuracy' reads column 'answer' or 'solution'; {path} has: target, nums")
    prompts = write(tmp_path / "p.jsonl", [json.dumps({"prompt": "What is 1+1?", "solution": "\\boxed{2}"})])
    result = dry_run("grpo", "--recipe", "countdown-qwen2.5", "--set", "data.format=prompt", "--data", str(prompts),
                     "--reward", "math_accuracy", "--reward", "cosine_length")
    assert result.exit_code == 0, result.output  # 'solution' is enough: math_accuracy reads either column
    assert json.loads(result.stdout)["data_check"] == {"format": "prompt", "rows_checked": 1,
                                                       "columns": ["prompt", "solution"]}


def test_dry_run_passes_good_countdown_data_and_reports_what_it_checked(tmp_path):
    rows = [json.dumps({"target": 10 + i, "nums": [i + 1, 9, 1]}) for i in range(5)]
    path = write(tmp_path / "cd.csv", [])
    path.write_text("target,nums\n" + "".join(f'{json.loads(r)["target"]},"{json.loads(r)["nums"]}"\n' for r in rows))
    result = dry_run("grpo", "--data", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["data_check"]["rows_checked"] == 5


def test_dry_run_checks_sft_turns_and_vision_columns(tmp_path):
    bad_turn = {"system": "s", "conversations": [{"from": "user", "value": "hi"}, {"from": "robot", "value": "x"}]}
    path = write(tmp_path / "s.jsonl", [json.dumps(bad_turn)])
    assert one_error(dry_run("sft", "--data", str(path))) == (
        f"Error: data: {path}:1: column 'conversations' turn 1 has 'from' 'robot' "
        "(expected one of user, human, assistant, gpt, system)")
    clevr = write(tmp_path / "c.jsonl", [json.dumps({"image": "a.png", "problem": "How many?", "solution": None})])
    assert one_error(dry_run("grpo-vl", "--data", str(clevr))) == (
        f"Error: data: {clevr}:1: column 'solution' is null (expected a string or number)")


def test_dry_run_with_an_unreachable_hub_source_says_it_skipped_the_check():
    result = CliRunner().invoke(main, ["train", "grpo", "--model", NO_MODEL, "--dry-run"])  # conftest: offline
    assert result.exit_code == 0, result.output
    check = json.loads(result.stdout)["data_check"]
    assert check["skipped"].startswith("Jiayi-Pan/Countdown-Tasks-3to4 is a hub dataset and HF_HUB_OFFLINE is set")


class _Template:
    """The one tokenizer method countdown_dataset calls (rendering is not what this test checks)."""

    def apply_chat_template(self, messages, tokenize=False, add_generation_prompt=True, continue_final_message=False):
        return " | ".join(m["content"] for m in messages)


def test_countdown_training_rows_of_the_wrong_type_are_one_line_in_the_real_loader(tmp_path):
    from r1h.trainers.data import countdown_dataset

    path = write(tmp_path / "cd.jsonl", [json.dumps({"target": 6, "nums": [1, 2, 3]}),
                                         json.dumps({"target": 6.5, "nums": [1, 2, 3]})])
    with pytest.raises(DataError) as exc:
        countdown_dataset(str(path), _Template())
    assert str(exc.value) == f"data {path}: training row 1: column 'target' is the number 6.5 (expected an integer)"


def test_hub_training_source_with_the_hub_down_fails_in_seconds_without_retries(tmp_path, monkeypatch):
    import socket

    from r1h.harness.data import hub
    from r1h.trainers.data import load_source

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("HF_DATASETS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{port}")
    hub.forget()
    try:
        with pytest.raises(DataError, match=r"^data some-org/some-data: hub dataset: the hub at http://127\.0\.0\.1:"
                                            r"\d+ cannot be reached .*; pass --data PATH .*HF_HUB_OFFLINE=1"):
            load_source("some-org/some-data")
    finally:
        hub.forget()
