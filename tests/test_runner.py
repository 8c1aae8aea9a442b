"""The eval runner with a fake benchmark, reward and deterministic backend registered through the plugin API."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from helpers.evalfakes import CALLS, ExactReward, FakeBackend, FakeBench, GreedyBench, expected_text

from r1h import Completion, hookimpl
from r1h.harness.core import plugins
from r1h.harness.core.errors import ConfigError, DataError, RunError
from r1h.harness.core.types import sample_seed
from r1h.harness.eval.metrics import pass_at_k
from r1h.harness.eval.plan import EvalOptions, generation_config, resolve_benchmark_names
from r1h.harness.eval.runner import run_eval


class GoldLike(FakeBackend):
    name = "h6_goldlike"
    needs_reference = True

    def generate(self, requests, config):
        return [[Completion(text=r.reference) for _ in r.sample_indices] for r in requests]


class BrokenBackend(FakeBackend):
    name = "h6_broken"

    def generate(self, requests, config):
        return [[Completion(text="1")] for _ in requests[:-1]]


class H6Plugin:
    @hookimpl
    def r1h_register_benchmarks(self, register):
        register("h6_bench", FakeBench, aliases=("h6b",))
        register("h6_greedy", GreedyBench)

    @hookimpl
    def r1h_register_rewards(self, register):
        register("h6_exact", ExactReward)

    @hookimpl
    def r1h_register_backends(self, register):
        register("h6_fake", FakeBackend)
        register("h6_goldlike", GoldLike)
        register("h6_broken", BrokenBackend)


@pytest.fixture(autouse=True)
def fake_plugins():
    plugins._CURRENT = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(H6Plugin(),))
    CALLS.clear()
    yield


def opts(tmp_path, **kw):
    base = dict(bench="h6_bench", backend="h6_fake", output=str(tmp_path / "run"), progress=False)
    base.update(kw)
    return EvalOptions(**base)


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def expected_pass1(n_problems=10, n=4, seed=0):
    per = []
    for i in range(n_problems):
        pid = f"p{i}"
        per.append(sum(expected_text(pid, sample_seed(seed, pid, j)) == str(i) for j in range(n)) / n)
    return sum(per) / len(per)


def test_full_run_writes_consistent_outputs(tmp_path, capsys):
    results = run_eval(opts(tmp_path))
    run = tmp_path / "run"
    samples = lines(run / "samples" / "h6_bench.jsonl")
    assert len(samples) == 40 and len({(s["id"], s["sample_index"]) for s in samples}) == 40
    assert set(samples[0]) >= {"id", "sample_index", "prompt", "completion", "extracted", "reward", "correct",
                               "finish_reason", "num_tokens", "timed_out"}
    for s in samples:  # the per-sample seed reached the backend and the grader's verdict was stored
        assert s["completion"] == expected_text(s["id"], sample_seed(0, s["id"], s["sample_index"]))
        assert s["correct"] == (s["completion"] == s["id"][1:]) == (s["reward"] == 1.0)
        assert s["prompt"] == [{"role": "user", "content": f"say {s['id'][1:]}"}]
    m = results["benchmarks"]["h6_bench"]
    assert m["pass@1"] == pytest.approx(expected_pass1())
    assert 0 < m["pass@1"] < 1
    per_problem = {}
    for s in samples:
        per_problem.setdefault(s["id"], []).append(s["correct"])
    assert m["pass@k"]["4"] == pytest.approx(sum(any(v) for v in per_problem.values()) / 10)
    assert m["pass@k"]["2"] == pytest.approx(sum(pass_at_k(4, sum(v), 2) for v in per_problem.values()) / 10)
    assert (m["n_samples"], m["total_samples"], m["n_problems"]) == (4, 40, 10)
    assert m["truncated"] == sum(s["finish_reason"] == "length" for s in samples)
    assert m["unparseable"] == sum(s["extracted"] is None for s in samples) > 0
    assert (m["version"], m["reward"]) == ("3", "h6_exact")
    on_disk = json.loads((run / "results.json").read_text())
    assert on_disk == json.loads(json.dumps(results))
    assert on_disk["config"]["benchmarks"]["h6_bench"]["generation"] == {
        "n": 4, "temperature": 0.6, "top_p": 0.95, "max_tokens": 64, "seed": 0, "stop": [],
        "policy": "neutral", "top_k": None, "min_p": 0.0, "repetition_penalty": 1.0}
    assert on_disk["versions"]["benchmarks"] == {"h6_bench": "3"}
    run_json = json.loads((run / "run.json").read_text())
    assert run_json.pop("stack") == on_disk["stack"] and on_disk["stack"]["system"]["python"]  # recorded, not fingerprinted
    assert run_json == on_disk["config"]
    report = (run / "report.md").read_text()
    assert "| h6_bench |" in report and f"{100 * m['pass@1']:.2f}" in report
    assert (run / "passk.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "h6_bench" in capsys.readouterr().out  # the results table
    assert max(len(call) for call in CALLS) <= 32 * 4  # an old-style generate backend gets chunks of 32 requests


def test_resume_generates_only_missing_and_never_duplicates(tmp_path):
    first = run_eval(opts(tmp_path))
    path = tmp_path / "run" / "samples" / "h6_bench.jsonl"
    kept = path.read_text().splitlines()
    # lose the last 11 samples, leave a torn line behind and a duplicate of the first line
    path.write_text("\n".join(kept[:29] + [kept[0]]) + "\n" + kept[29][:30])
    CALLS.clear()
    again = run_eval(opts(tmp_path))
    regenerated = [(pid, idx) for call in CALLS for pid, idx, _ in call]
    missing = {(s["id"], s["sample_index"]) for s in map(json.loads, kept[29:])}
    assert sorted(regenerated) == sorted(missing)
    samples = lines(path)
    keys = [(s["id"], s["sample_index"]) for s in samples]
    assert len(set(keys)) == 40 and len(keys) == 41  # the old duplicate line stays on disk but counts once
    assert again["benchmarks"] == first["benchmarks"]
    CALLS.clear()
    assert run_eval(opts(tmp_path))["benchmarks"] == first["benchmarks"]
    assert CALLS == []  # a complete run generates nothing


def test_resume_with_another_config_is_refused(tmp_path):
    run_eval(opts(tmp_path, limit=3))
    with pytest.raises(RunError, match=r"benchmarks\.h6_bench\.generation\.temperature"):
        run_eval(opts(tmp_path, limit=3, temperature=0.2))
    with pytest.raises(RunError, match="limit"):
        run_eval(opts(tmp_path, limit=4))


def test_generation_config_precedence():
    bench = GreedyBench()
    assert generation_config(bench, EvalOptions()).to_dict() == {
        "n": 1, "temperature": 0.0, "top_p": 0.95, "max_tokens": 256, "seed": 0, "stop": [],
        "policy": "neutral", "top_k": None, "min_p": 0.0, "repetition_penalty": 1.0}
    g = generation_config(FakeBench(), EvalOptions(n=2, temperature=1.0, top_p=0.5, max_tokens=9, seed=4))
    assert (g.n, g.temperature, g.top_p, g.max_tokens, g.seed) == (2, 1.0, 0.5, 9, 4)
    g = generation_config(FakeBench(), EvalOptions(greedy=True))
    assert (g.n, g.temperature, g.max_tokens) == (1, 0.0, 64)
    assert generation_config(FakeBench(), EvalOptions()).n == 4


def test_suites_aliases_and_data_sources(tmp_path):
    assert resolve_benchmark_names("all") == ["aime24", "math500", "gpqa_diamond", "countdown", "superclevr_counting"]
    assert resolve_benchmark_names("a, b,a") == ["a", "b"]
    with pytest.raises(ConfigError, match="--bench"):
        resolve_benchmark_names(" , ")
    results = run_eval(opts(tmp_path, bench="h6b,h6_greedy", data={"h6b": "5"}))
    assert set(results["benchmarks"]) == {"h6_bench", "h6_greedy"}
    assert results["benchmarks"]["h6_bench"]["n_problems"] == 5
    assert results["benchmarks"]["h6_greedy"]["n_samples"] == 1
    assert results["config"]["benchmarks"]["h6_bench"]["source"] == "5"
    with pytest.raises(ConfigError, match="--data nope"):
        run_eval(opts(tmp_path / "x", data={"nope": "1"}))
    with pytest.raises(DataError, match="no problems"):
        run_eval(opts(tmp_path / "y", data={"h6_bench": "0"}))


def test_reference_backend_scores_everything(tmp_path):
    results = run_eval(opts(tmp_path, backend="h6_goldlike", n=2))
    m = results["benchmarks"]["h6_bench"]
    assert m["pass@1"] == 1.0 and m["maj@n"] == 1.0 and m["pass@1_ci95"] == [1.0, 1.0]


def test_backend_returning_too_few_results_is_a_run_error(tmp_path):
    with pytest.raises(RunError, match="h6_broken"):
        run_eval(opts(tmp_path, backend="h6_broken"))


@pytest.mark.parametrize(
    "args, flag",
    [
        (["--backend-arg", "oops"], "--backend-arg"),
        (["--data", "=x"], "--data"),
        (["--limit", "0"], "--limit"),
        (["-n", "0"], "-n"),
        (["--top-p", "1.5"], "--top-p"),
        (["--temperature", "-1"], "--temperature"),
        (["--greedy", "-n", "4"], "--greedy"),
        (["--batch-size", "8"], "--batch-size"),  # removed: streaming made the save chunk obsolete
        (["--shard", "3/3"], "--shard"),
        (["--shard", "x"], "--shard"),
        (["--generation-config", "auto"], "--generation-config"),
        (["--merge"], "--merge"),
        (["--budget", "0"], "--budget"),
        (["--bench", "h6_benk"], "h6_bench"),  # did-you-mean
        (["--backend", "nope"], "nope"),
    ],
)
def test_bad_flags_are_one_line_errors_naming_the_flag(tmp_path, args, flag):
    from r1h.harness.cli.main import main

    result = CliRunner().invoke(main, ["eval", "--bench", "h6_bench", "--backend", "h6_fake", "--output",
                                       str(tmp_path / "r"), *args])
    assert result.exit_code != 0
    error_lines = [line for line in result.output.splitlines() if line.startswith("Error")]
    assert len(error_lines) == 1 and flag in error_lines[0], result.output


def test_eval_command_runs(tmp_path):
    from r1h.harness.cli.main import main

    result = CliRunner().invoke(main, ["eval", "--bench", "h6_bench", "--backend", "h6_fake", "--limit", "3",
                                       "-n", "2", "--output", str(tmp_path / "r"), "--no-progress"])
    assert result.exit_code == 0, result.output
    results = json.loads((tmp_path / "r" / "results.json").read_text())
    assert results["benchmarks"]["h6_bench"]["total_samples"] == 6
    assert "pass@1" in result.output
