"""Exit statuses (README "Exit codes"): 2 for usage errors (bad flag type, range, choice, malformed or conflicting
flag values) with the usage line, as click does; 1 for domain errors (R1HError) as one line."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from r1h.harness.cli.main import main


@pytest.mark.parametrize("args, needle", [
    (["eval", "--limit", "x"], "'x' is not a valid integer"),           # click's own type check
    (["eval", "--limit", "0"], "--limit 0: must be >= 1"),               # r1h's range check: the same status
    (["eval", "--top-p", "1.5"], "--top-p 1.5: must be in (0, 1]"),
    (["eval", "--greedy", "-n", "3"], "conflicts with -n 3"),
    (["eval", "--backend-arg", "oops"], "--backend-arg 'oops': expected KEY=VALUE"),
    (["distill", "generate", "--questions", "q.jsonl", "-o", "out", "--n", "0"], "0 is not in the range x>=1"),
    (["distill", "generate", "--questions", "q.jsonl", "-o", "out", "--backend-arg", "oops"],
     "--backend-arg 'oops': expected KEY=VALUE"),  # r1h's check inside a subcommand of a group
    (["compare", "a", "b", "--bootstrap", "5"], "5 is not in the range x>=100"),
    (["doctor", "--need", "gpu"], "'gpu' is not one of"),
    (["score", "--reward", "math_accuracy", "x.jsonl", "--workers", "0"], "--workers 0: must be at least 1"),
])
def test_usage_errors_exit_2_with_the_usage_line(args, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.jsonl").write_text('{"completion": "1", "answer": "1"}\n')
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2, res.output
    assert res.output.startswith(f"Usage: main {' '.join(args[:2] if args[0] == 'distill' else args[:1])} "), res.output
    assert needle in res.output.splitlines()[-1]


@pytest.mark.parametrize("args, needle", [
    (["compare", "nowhere-a", "nowhere-b"], "nowhere-a: not a run directory"),
    (["eval", "--bench", "no_such_bench", "--backend", "gold"], "no_such_bench"),
    (["distill", "filter", "nowhere", "--reward", "math_accuracy", "-o", "out"], "no such file or folder"),
])
def test_domain_errors_exit_1_in_one_line(args, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 1, res.output
    lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and needle in lines[0], res.output
