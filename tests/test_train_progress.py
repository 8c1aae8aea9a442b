"""`r1h train` data preparation shows live progress (rich) for datasets' load, map and filter steps."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from r1h.trainers.data import load_source
from r1h.trainers.progress import RichBar, data_progress


def _file(tmp_path: Path, n: int = 40) -> str:
    path = tmp_path / "rows.jsonl"
    path.write_text("".join(json.dumps({"a": i}) + "\n" for i in range(n)))
    return str(path)


def test_load_map_and_filter_report_into_one_rich_display(tmp_path: Path):
    import datasets.arrow_dataset

    original = datasets.arrow_dataset.hf_tqdm
    buf = io.StringIO()
    with data_progress(console=Console(file=buf, width=100)):
        assert datasets.arrow_dataset.hf_tqdm is RichBar
        dataset = load_source(_file(tmp_path))
        dataset = dataset.map(lambda r: {"b": r["a"] * 2}, desc="countdown prompts")
        dataset = dataset.filter(lambda r: r["a"] % 4 == 0, desc="drop long prompts")
    assert len(dataset) == 10
    text = buf.getvalue()
    assert "countdown prompts" in text and "drop long prompts" in text and "40/40" in text
    assert "Generating train split" in text  # the Arrow build of the file
    assert datasets.arrow_dataset.hf_tqdm is original  # restored


def test_names_are_restored_after_an_error_and_disabled_is_a_no_op(tmp_path: Path):
    import datasets.arrow_dataset

    original = datasets.arrow_dataset.hf_tqdm
    with pytest.raises(RuntimeError), data_progress(console=Console(file=io.StringIO())):
        raise RuntimeError("boom")
    assert datasets.arrow_dataset.hf_tqdm is original and RichBar.progress is None
    with data_progress(enabled=False) as progress:
        assert progress is None and datasets.arrow_dataset.hf_tqdm is original


def test_rich_bar_iterates_like_tqdm():
    buf = io.StringIO()
    with data_progress(console=Console(file=buf, width=80)):
        assert list(RichBar(range(5), desc="items")) == [0, 1, 2, 3, 4]
    assert "5/5" in buf.getvalue()
