"""r1h check / r1h baseline update: tolerance, readable diff, exit codes, no overwrite without --force."""

from __future__ import annotations

import json

from click.testing import CliRunner
from helpers.rundirs import write_run

from r1h.harness.cli.main import main


def _run(path, correct: int, n: int = 200, samples: int = 1, version: str = "1"):
    problems = {f"p{i}": [i < correct] * samples for i in range(n)}
    return write_run(path, {"math500": problems}, version=version)


def test_baseline_update_then_check_passes_and_regression_fails(tmp_path):
    runner = CliRunner()
    base = _run(tmp_path / "base", correct=100)
    baseline = tmp_path / "ci" / "baseline.json"
    res = runner.invoke(main, ["baseline", "update", str(base), "--baseline", str(baseline)])
    assert res.exit_code == 0, res.output
    data = json.loads(baseline.read_text())
    assert data["benchmarks"]["math500"]["pass@1"] == 0.5 and data["benchmarks"]["math500"]["version"] == "1"
    se = data["benchmarks"]["math500"]["stderr"]
    assert 0.03 < se < 0.04  # sqrt(.25/200) = 0.0354

    # a run inside noise: 47% vs 50% with SE 3.5 points each -> allowed 1.96*sqrt(2)*3.5 = 9.8 points
    res = runner.invoke(main, ["check", str(_run(tmp_path / "near", correct=94)), "--baseline", str(baseline)])
    assert res.exit_code == 0, res.output
    assert "OK: 1 benchmarks within tolerance" in res.output and "-3.00" in res.output

    # a real drop: 30% -> REGRESSION, exit code 1, readable diff
    res = runner.invoke(main, ["check", str(_run(tmp_path / "drop", correct=60)), "--baseline", str(baseline)])
    assert res.exit_code == 1
    line = next(ln for ln in res.output.splitlines() if ln.startswith("math500"))
    assert "50.00" in line and "30.00" in line and "-20.00" in line and "REGRESSION" in line
    assert "FAILED: 1 of 1 benchmarks (math500)" in res.output

    # a big absolute tolerance forgives it; an improvement passes unless --two-sided
    drop = tmp_path / "drop"
    assert runner.invoke(main, ["check", str(drop), "--baseline", str(baseline), "--tolerance", "0.25"]).exit_code == 0
    up = _run(tmp_path / "up", correct=160)
    res = runner.invoke(main, ["check", str(up), "--baseline", str(baseline)])
    assert res.exit_code == 0 and "improved" in res.output
    assert runner.invoke(main, ["check", str(up), "--baseline", str(baseline), "--two-sided"]).exit_code == 1


def test_deterministic_job_checks_exactly_with_z_zero(tmp_path):
    runner = CliRunner()
    gold = write_run(tmp_path / "gold", {"countdown": {f"p{i}": [True] for i in range(20)}})
    baseline = tmp_path / "baseline.json"
    assert runner.invoke(main, ["baseline", "update", str(gold), "--baseline", str(baseline)]).exit_code == 0
    assert runner.invoke(main, ["check", str(gold), "--baseline", str(baseline)]).exit_code == 0
    one_wrong = write_run(tmp_path / "one", {"countdown": {f"p{i}": [i != 3] for i in range(20)}})
    # 95% vs 100% on 20 problems is within sampling noise of the RUN's own SE ...
    assert runner.invoke(main, ["check", str(one_wrong), "--baseline", str(baseline)]).exit_code == 0
    # ... but a deterministic job (gold backend, greedy seeded model) checks exactly with --z 0
    res = runner.invoke(main, ["check", str(one_wrong), "--baseline", str(baseline), "--z", "0", "--two-sided"])
    assert res.exit_code == 1 and "REGRESSION" in res.output


def test_missing_benchmark_and_version_change_fail(tmp_path):
    runner = CliRunner()
    base = write_run(tmp_path / "base", {"math500": {"a": [True]}, "aime24": {"b": [False]}})
    baseline = tmp_path / "b.json"
    runner.invoke(main, ["baseline", "update", str(base), "--baseline", str(baseline)])
    only_math = write_run(tmp_path / "m", {"math500": {"a": [True]}})
    res = runner.invoke(main, ["check", str(only_math), "--baseline", str(baseline)])
    assert res.exit_code == 1 and "MISSING" in res.output
    assert runner.invoke(main, ["check", str(only_math), "--baseline", str(baseline), "--bench", "math500"]).exit_code == 0
    bumped = write_run(tmp_path / "v2", {"math500": {"a": [True]}, "aime24": {"b": [False]}}, versions={"aime24": "2"})
    res = runner.invoke(main, ["check", str(bumped), "--baseline", str(baseline), "--format", "json"])
    assert res.exit_code == 1
    rows = {r["benchmark"]: r for r in json.loads(res.output)["rows"]}
    assert rows["aime24"]["status"] == "VERSION" and rows["math500"]["status"] == "ok"


def test_baseline_not_overwritten_without_force_and_bad_input(tmp_path):
    runner = CliRunner()
    run = _run(tmp_path / "r", correct=10, n=20)
    baseline = tmp_path / "baseline.json"
    baseline.write_text("{}")
    res = runner.invoke(main, ["baseline", "update", str(run), "--baseline", str(baseline)])
    assert res.exit_code != 0 and "--force" in res.output and baseline.read_text() == "{}"
    res = runner.invoke(main, ["check", str(run), "--baseline", str(baseline)])
    assert res.exit_code != 0 and "not an r1h baseline" in res.output
    assert runner.invoke(main, ["baseline", "update", str(run), "--baseline", str(baseline), "--force"]).exit_code == 0
    for args, needle in [
        (["check", str(tmp_path), "--baseline", str(baseline)], "not a run directory"),
        (["check", str(run), "--baseline", str(tmp_path / "nope.json")], "baseline file not found"),
    ]:
        res = runner.invoke(main, args)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert res.exit_code != 0 and len(lines) == 1 and needle in lines[0], res.output
