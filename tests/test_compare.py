"""r1h compare: tables, paired tests, versions, bad input. Runs are written by the tests (tests/helpers/rundirs.py)."""

from __future__ import annotations

import json
import math

import pytest
from click.testing import CliRunner
from helpers.rundirs import write_run

from r1h.harness.cli.main import main
from r1h.harness.core.errors import RunError
from r1h.tools.compare import compare_runs, load_run


def _greedy(n: int, correct: set[int]) -> dict[str, list[bool]]:
    return {f"p{i}": [i in correct] for i in range(n)}


def test_compare_greedy_runs_uses_mcnemar(tmp_path):
    a = write_run(tmp_path / "base", {"math500": _greedy(100, set(range(30)))}, model="base")
    b = write_run(tmp_path / "tuned", {"math500": _greedy(100, set(range(60)))}, model="tuned")
    out = compare_runs([load_run(a), load_run(b)], n_boot=500)
    ref, row = out["benchmarks"]["math500"]
    assert "delta" not in ref and ref["pass@1"] == pytest.approx(0.3)
    assert row["test"].startswith("mcnemar") and row["shared"] == 100
    assert row["delta"] == pytest.approx(0.3)
    assert (row["only_ref"], row["only_run"]) == (0, 30)
    assert row["significant"] is True and row["p_value"] < 1e-6


def test_compare_cli_markdown_json_and_plot(tmp_path):
    samples_a = {f"p{i}": [i % 2 == 0, i % 3 == 0, False, True] for i in range(40)}
    samples_b = {f"p{i}": [i % 2 == 0, i % 3 == 0, i % 5 == 0, True] for i in range(40)}
    a = write_run(tmp_path / "a", {"aime24": samples_a, "math500": _greedy(20, {1, 2})})
    b = write_run(tmp_path / "b", {"aime24": samples_b, "math500": _greedy(20, {1, 2})})
    runner = CliRunner()
    res = runner.invoke(main, ["compare", str(a), str(b), "--bootstrap", "500", "--plot", str(tmp_path / "c.png")])
    assert res.exit_code == 0, res.output
    assert "### aime24" in res.output and "### math500" in res.output
    assert "paired-bootstrap" in res.output and "mcnemar" in res.output
    assert (tmp_path / "c.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    res = runner.invoke(main, ["compare", str(a), str(b), "--format", "json", "--bootstrap", "500"])
    data = json.loads(res.stdout)  # warnings (math500 shares only 20 problems) go to stderr
    aime_row = data["benchmarks"]["aime24"][1]
    assert aime_row["test"] == "paired-bootstrap"
    assert aime_row["delta"] == pytest.approx(sum(i % 5 == 0 for i in range(40)) / 160)
    assert data["benchmarks"]["math500"][1]["significant"] is False
    # the plot is not overwritten without --force
    res = runner.invoke(main, ["compare", str(a), str(b), "--plot", str(tmp_path / "c.png")])
    assert res.exit_code != 0 and "--force" in res.output


def test_compare_refuses_different_versions_unless_forced(tmp_path):
    a = write_run(tmp_path / "a", {"math500": _greedy(10, {1})}, version="1")
    b = write_run(tmp_path / "b", {"math500": _greedy(10, {1, 2})}, version="2")
    with pytest.raises(RunError, match="different versions"):
        compare_runs([load_run(a), load_run(b)])
    res = CliRunner().invoke(main, ["compare", str(a), str(b)])
    assert res.exit_code != 0
    error_lines = [line for line in res.output.splitlines() if line.strip()]
    assert len(error_lines) == 1 and "math500" in error_lines[0] and "--force" in error_lines[0]
    res = CliRunner().invoke(main, ["compare", str(a), str(b), "--force"])
    assert res.exit_code == 0 and "warning" in res.output


def test_compare_rejects_a_directory_that_is_not_a_run(tmp_path):
    a = write_run(tmp_path / "a", {"math500": _greedy(10, {1})})
    (tmp_path / "empty").mkdir()
    res = CliRunner().invoke(main, ["compare", str(a), str(tmp_path / "empty")])
    assert res.exit_code != 0 and "not a run directory" in res.output
    assert len([line for line in res.output.splitlines() if line.strip()]) == 1


def test_compare_same_labels_and_torn_last_line(tmp_path):
    a = write_run(tmp_path / "x" / "run", {"math500": _greedy(40, {1, 2})})
    b = write_run(tmp_path / "y" / "run", {"math500": _greedy(40, {1, 2, 3})})
    with open(b / "samples" / "math500.jsonl", "a") as fh:
        fh.write('{"id": "p39", "sample_ind')  # torn by a kill
    out = compare_runs([load_run(a), load_run(b)])
    labels = [r["label"] for r in out["runs"]]
    assert len(set(labels)) == 2
    assert out["benchmarks"]["math500"][1]["shared"] == 40
    assert not math.isnan(out["benchmarks"]["math500"][1]["p_value"])


def test_compare_few_shared_problems_or_different_n_is_flagged_not_significant(tmp_path):
    """The issue's case: a 500-problem run against a 4-problem run with a different n."""
    big = write_run(tmp_path / "big", {"math500": _greedy(500, set(range(100)))})
    small = write_run(tmp_path / "small", {"math500": {f"p{i}": [True] * 4 for i in range(4)}})
    out = compare_runs([load_run(big), load_run(small)], n_boot=200)
    row = out["benchmarks"]["math500"][1]
    assert row["shared"] == 4 and row["insufficient_overlap"] is True
    assert row["p_value"] is None and row["significant"] is False
    assert any("shares only 4 problems" in w and "insufficient overlap" in w for w in out["warnings"])
    assert any("n differs" in w and "1 samples per problem" in w and "small 4" in w for w in out["warnings"])
    res = CliRunner().invoke(main, ["compare", str(big), str(small), "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    assert "not significant (insufficient overlap)" in res.stdout
    assert "r1h: warning: math500: small shares only 4 problems" in res.stderr
    # 30 shared problems with the same n: a real test, no warning
    a = write_run(tmp_path / "a30", {"math500": _greedy(30, set(range(5)))})
    b = write_run(tmp_path / "b30", {"math500": _greedy(30, set(range(25)))})
    out = compare_runs([load_run(a), load_run(b)])
    row = out["benchmarks"]["math500"][1]
    assert out["warnings"] == [] and "insufficient_overlap" not in row
    assert row["significant"] is True and row["p_value"] < 0.001


def test_compare_warns_when_engine_stack_or_sampling_differ(tmp_path):
    problems = _greedy(40, set(range(20)))
    a = write_run(tmp_path / "a", {"math500": problems})
    b = write_run(tmp_path / "b", {"math500": problems})
    stack = {"libraries": {"torch": {"version": "2.4.0+metax2.29"}, "vllm": {"version": "0.10.1"},
                           "trl": {"version": "1.16.0"}}, "torch": {"backend": "MACA"}}
    for path, engine, torch_version, policy, trl in ((a, "bfloat16", "2.4.0+metax2.29", "neutral", "1.16.0"),
                                                     (b, "float16", "2.4.0", "model", "1.17.0")):
        results = json.loads((path / "results.json").read_text())
        results["engine"] = {"backend": "vllm", "dtype": engine}
        run_stack = json.loads(json.dumps(stack))
        run_stack["libraries"]["torch"]["version"] = torch_version
        run_stack["libraries"]["trl"]["version"] = trl  # not a score library: no warning
        results["stack"] = run_stack
        results["config"] = {"benchmarks": {"math500": {"generation": {"temperature": 0.6, "policy": policy}}}}
        (path / "results.json").write_text(json.dumps(results))
    warnings = compare_runs([load_run(a), load_run(b)])["warnings"]
    assert len(warnings) == 3, warnings
    engine, libs, sampling = warnings
    assert "engine differs" in engine and "dtype 'bfloat16' vs 'float16'" in engine and "backend" not in engine
    assert "stack differs" in libs and "torch '2.4.0+metax2.29' vs '2.4.0'" in libs and "trl" not in libs
    assert "math500 sampling differs" in sampling and "policy 'neutral' vs 'model'" in sampling
    assert "temperature" not in sampling
    # runs that record none of it (older runs) compare without these warnings
    c = write_run(tmp_path / "c", {"math500": problems})
    assert compare_runs([load_run(c), load_run(a)])["warnings"] == []


def _truncating_run(path, cut: int, model: str):
    """100 problems, one sample each: the first ``cut`` hit max_tokens (wrong), the rest finish right. Written
    without the truncation fields in results.json, as older runs were: compare recomputes them from the samples."""
    write_run(path, {"math500": _greedy(100, set(range(cut, 100)))}, model=model)
    lines = [json.loads(x) for x in (path / "samples" / "math500.jsonl").read_text().splitlines()]
    for row in lines:
        cut_off = int(row["id"][1:]) < cut
        row.update(finish_reason="length" if cut_off else "stop", num_tokens=4096 if cut_off else 900)
    (path / "samples" / "math500.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return path


def test_compare_shows_where_two_runs_differ_in_truncation(tmp_path):
    a = _truncating_run(tmp_path / "long", 2, "long")
    b = _truncating_run(tmp_path / "short", 30, "short")
    out = compare_runs([load_run(a), load_run(b)], n_boot=200)
    ref, row = out["benchmarks"]["math500"]
    assert ref["truncation"]["truncated_rate"] == pytest.approx(0.02)
    assert row["truncation"]["truncated_rate"] == pytest.approx(0.30)
    assert row["truncation"]["pass@1_finished"] == 1.0 and row["truncation"]["pass@1_truncated"] == 0.0
    assert any("truncated 30.0% in short vs 2.0% in long" in w for w in out["warnings"])
    res = CliRunner().invoke(main, ["compare", str(a), str(b), "--bootstrap", "200"])
    assert res.exit_code == 0, res.output
    assert "| short | 30.00 | +28.00 | 100.00 | 0.00 | 900 |" in res.output
    same = compare_runs([load_run(a), load_run(_truncating_run(tmp_path / "again", 3, "again"))], n_boot=200)
    assert not any("truncated" in w for w in same["warnings"])  # 1 point apart: no warning
