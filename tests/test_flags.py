"""One flag vocabulary and the documented exit codes (issue 18, item 14): 2 with the usage line for a flag value
r1h rejects, whichever layer rejects it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers.rundirs import write_run

from r1h.harness.cli.main import main


@pytest.mark.parametrize("args, needle", [
    (["eval", "--batch-size", "4"], "--backend-arg batch_size=4"),
    (["eval", "--backend", "gold", "--bench", "countdown", "--backend-arg", "batch_size=4"], "batch_size"),
    (["eval", "--bench", "countdown", "--limit", "1", "--backend-arg", "batch_size=abc"],
     "--backend-arg batch_size=abc: expected an integer"),
    (["train", "sft", "--dry-run", "--num-processes", "0"], "0 is not in the range x>=1"),
    (["train", "sft", "--dry-run", "--num-processes", "-2"], "-2 is not in the range x>=1"),
    (["train", "sft", "--dry-run", "--accelerate-config", "zero4"], "--accelerate-config 'zero4'"),
    (["check", "run", "--baseline", "b.json", "--tolerance", "-1"], "-1.0 is not in the range x>=0"),
    (["regrade", "run", "--item-timeout", "0"], "0.0 is not in the range x>0"),
    (["distill", "generate", "--questions", "q.jsonl", "-o", "out", "-n", "0"], "0 is not in the range x>=1"),
    (["distill", "generate", "--questions", "q.jsonl", "-o", "out", "--base-url", "http://a:1", "--backend-arg",
      "base_url=http://b:1"], "--base-url and --backend-arg base_url=... disagree"),
    (["distill", "generate", "--questions", "q.jsonl", "-o", "out", "--backend-arg", "a=1", "--backend-arg", "a=2"],
     "--backend-arg a: given twice"),
])
def test_flag_values_are_usage_errors(args, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_run(tmp_path / "run", {"countdown": {"p0": [True]}})
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith("Usage: "), res.output
    assert needle in res.output.splitlines()[-1], res.output


def test_eval_and_distill_both_take_n_and_dash_dash_n(tmp_path):
    for flag in ("-n", "--n"):
        out = tmp_path / flag.strip("-")
        res = CliRunner().invoke(main, ["eval", "--backend", "gold", "--bench", "countdown", "--limit", "1", flag,
                                        "3", "--output", str(out), "--no-progress"])
        assert res.exit_code == 0, res.output
        assert json.loads((out / "results.json").read_text())["benchmarks"]["countdown"]["total_samples"] == 3
    help_text = CliRunner().invoke(main, ["distill", "generate", "--help"]).output
    assert "-n, --n" in help_text
    assert "-n, --n" in CliRunner().invoke(main, ["eval", "--help"]).output


def test_ctrl_c_in_any_command_exits_130_without_aborted(tmp_path, monkeypatch):
    import r1h.tools.compare as compare

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(compare, "load_run", interrupted)
    res = CliRunner().invoke(main, ["compare", str(tmp_path / "a"), str(tmp_path / "b")])
    assert res.exit_code == 130, res.output
    assert "Aborted!" not in res.output and "stopped by interrupt" in res.output
