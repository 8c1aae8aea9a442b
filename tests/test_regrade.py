"""r1h regrade: the r1h grader on saved runs (normal suite), foreign graders behind R1H_FOREIGN_GRADERS=1.

The real-data run is made from the labeled MATH-500 outputs in refdata (Sky-T1-27B, greedy, with the
Qwen2.5-Math grader's verdict recorded as ``correct``)."""

from __future__ import annotations

import json
import os
import sys
import types
from pathlib import Path

import pytest
from click.testing import CliRunner
from helpers.rundirs import write_run

from r1h.harness.cli.main import main
from r1h.harness.core import plugins
from r1h.harness.core.errors import RunError
from r1h.harness.core.reward import Reward
from r1h.harness.core.types import Sample
from r1h.tools.compare import load_run
from r1h.tools.regrade import FOREIGN, ensure_env, regrade

FOREIGN_ON = os.environ.get("R1H_FOREIGN_GRADERS") == "1"


# -- a toy benchmark + reward registered through the plugin API ----------------------------------------------------------
class ExactWord(Reward):
    name = "exact_word"
    columns = ("answer",)

    def score(self, completion, prompt=None, answer=None, **row):
        return 1.0 if completion.strip().split()[-1:] == [answer] else 0.0

    def extract(self, completion, prompt=None, **row):
        words = completion.strip().split()
        return words[-1] if words else None


class Toy:
    name = "toy"
    version = "1"
    reward = "exact_word"
    default_source = None
    default_samples = 2

    def load(self, source=None, limit=None):
        return [Sample(id=f"p{i}", columns={"answer": str(i)}, raw={"problem": f"say {i}", "answer": str(i)})
                for i in range(4)]


def _toy_plugin():
    from r1h.harness.core.hookspecs import hookimpl

    module = types.ModuleType("toy_regrade_plugin")

    @hookimpl
    def r1h_register_rewards(register):
        register("exact_word", ExactWord)

    @hookimpl
    def r1h_register_benchmarks(register):
        register("toy", Toy())

    module.r1h_register_rewards = r1h_register_rewards
    module.r1h_register_benchmarks = r1h_register_benchmarks
    return module


@pytest.fixture
def toy_plugins(monkeypatch):
    built = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(_toy_plugin(),))
    monkeypatch.setattr(plugins, "_CURRENT", built)
    return built


def _toy_run(tmp_path: Path) -> Path:
    # recorded verdicts: p0 s1 is recorded correct but its answer is wrong; p3 s0 recorded wrong but right
    completions = {"toy": {"p0": ["it is 0", "it is 7"], "p1": ["1", "nope"], "p2": ["2", "2"], "p3": ["3", "x"]}}
    verdicts = {"toy": {"p0": [True, True], "p1": [True, False], "p2": [True, True], "p3": [False, False]}}
    return write_run(tmp_path / "run", verdicts, completions=completions)


def test_regrade_r1h_grader_finds_recorded_disagreements(tmp_path, toy_plugins):
    run = _toy_run(tmp_path)
    res = CliRunner().invoke(main, ["regrade", str(run)], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    summary = json.loads((run / "regrade" / "regrade.json").read_text())
    scores = summary["benchmarks"]["toy"]["pass@1"]
    assert scores["recorded"] == pytest.approx(5 / 8)
    assert scores["r1h"] == pytest.approx(5 / 8)  # one flipped each way
    rows = [json.loads(line) for line in (run / "regrade" / "disagreements.jsonl").read_text().splitlines()]
    assert {(r["id"], r["sample_index"]) for r in rows} == {("p0", 1), ("p3", 0)}
    p0 = next(r for r in rows if r["id"] == "p0")
    assert p0["graders"]["r1h"] == {"correct": False, "extracted": "7", "error": None}
    assert p0["recorded_correct"] is True
    assert "| toy | 8 |" in res.output
    # nothing is overwritten without --force
    res = CliRunner().invoke(main, ["regrade", str(run)])
    assert res.exit_code != 0 and "--force" in res.output
    assert CliRunner().invoke(main, ["regrade", str(run), "--force"]).exit_code == 0


def test_regrade_bad_input_is_one_line(tmp_path, toy_plugins):
    run = _toy_run(tmp_path)
    for args, needle in [
        (["regrade", str(tmp_path)], "not a run directory"),
        (["regrade", str(run), "--grader", "helm"], "unknown grader 'helm'"),
        (["regrade", str(run), "--bench", "aime24"], "no benchmark 'aime24'"),
        (["regrade", str(run), "--grader", "lighteval", "--python", "lighteval=/nonexistent/python"], "does not exist"),
    ]:
        res = CliRunner().invoke(main, args)
        assert res.exit_code != 0, args
        lines = [line for line in res.output.splitlines() if line.strip()]
        assert len(lines) == 1 and needle in lines[0], res.output


def test_grader_env_that_cannot_be_built_is_a_one_line_error(tmp_path, monkeypatch):
    monkeypatch.setenv("R1H_GRADER_HOME", str(tmp_path / "graders"))
    monkeypatch.setenv("R1H_GRADER_PIP_ARGS", f"--no-index --find-links {tmp_path}")
    with pytest.raises(RunError, match=r"cannot build the lm-eval grader env at .*lm-eval-0\.4\.13") as info:
        ensure_env(FOREIGN["lm-eval"], log=lambda msg: None)
    assert "\n" not in str(info.value)


# -- real outputs ---------------------------------------------------------------------------------------------------
def _refdata_run(refdata: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The Sky-T1-27B MATH-500 outputs as a saved greedy run (ids = the benchmark's unique_id), built by the same
    ``make_run`` that perf/regrade_labeled.py uses."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "perf"))
    try:
        from regrade_labeled import make_run
    finally:
        sys.path.pop(0)
    return make_run(refdata, "Sky-T1-27B", tmp_path), refdata / "math500" / "test.jsonl"


def test_regrade_real_math500_outputs_with_r1h(refdata, tmp_path):
    pytest.importorskip("math_verify")
    run, _ = _refdata_run(refdata, tmp_path)
    result = regrade(load_run(run), ["r1h"], log=lambda msg: None)
    entry = result["summary"]["benchmarks"]["math500"]
    assert entry["n_samples"] == 500
    assert entry["pass@1"]["recorded"] == pytest.approx(0.60)  # the metrics file's acc
    assert 0.45 < entry["pass@1"]["r1h"] < 0.75
    rows = result["disagreements"]
    # idx 355: gold 100, prediction 1, which the Qwen2.5-Math grader's percent rule accepts; math_accuracy must not
    samples = {json.loads(line)["id"]: json.loads(line) for line in open(run / "samples" / "math500.jsonl")}
    id355 = next(pid for pid, s in samples.items() if s["idx"] == 355)
    row355 = next(r for r in rows if r["id"] == id355)
    assert row355["recorded_correct"] is True and row355["graders"]["r1h"]["correct"] is False
    print(f"\nr1h on Sky-T1-27B MATH-500: {100 * entry['pass@1']['r1h']:.2f} "
          f"(recorded {100 * entry['pass@1']['recorded']:.2f}); {len(rows)} disagreements", file=sys.stderr)


@pytest.mark.skipif(not FOREIGN_ON, reason="set R1H_FOREIGN_GRADERS=1 (tox -e crosscheck-lighteval / crosscheck-lmeval)")
@pytest.mark.parametrize("grader", ["lighteval", "lm-eval"])
def test_foreign_grader_on_real_outputs(refdata, tmp_path, grader):
    run, _ = _refdata_run(refdata, tmp_path)
    pythons = {grader: os.environ[f"R1H_{grader.upper().replace('-', '')}_PYTHON"]} \
        if os.environ.get(f"R1H_{grader.upper().replace('-', '')}_PYTHON") else {}
    result = regrade(load_run(run), ["r1h", grader], pythons=pythons, log=lambda msg: None)
    entry = result["summary"]["benchmarks"]["math500"]
    assert entry["errors"][grader] < 25
    assert result["summary"]["graders"][grader]["version"] in ("0.13.0", "0.4.13")
    rows = result["disagreements"]
    assert rows and all(set(r["graders"]) == {"r1h", grader} for r in rows)
    assert all(r["graders"][grader]["correct"] != r["graders"]["r1h"]["correct"] for r in rows)
    if grader == "lighteval":  # math-verify's ancestor: close to r1h's math_accuracy
        assert abs(entry["pass@1"][grader] - entry["pass@1"]["r1h"]) < 0.08
    print(f"\n{grader}: {100 * entry['pass@1'][grader]:.2f}, r1h {100 * entry['pass@1']['r1h']:.2f}, "
          f"{len(rows)} disagreements", file=sys.stderr)
