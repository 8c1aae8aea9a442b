"""Truncation-aware metrics and completeness on real ``r1h eval`` runs (run_eval and the CLI) with a deterministic
thinking backend registered through the plugin API: per-sample think fields, per-benchmark truncation metrics and
the accuracy-at-budget curve in results.json, report.md and budget.png; an interrupted run marked incomplete, and
``r1h check`` failing on it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from r1h import Backend, Benchmark, Completion, Reward, Sample, hookimpl
from r1h.harness.cli.main import main
from r1h.harness.core import plugins
from r1h.harness.eval.plan import EvalOptions
from r1h.harness.eval.runner import run_eval

N_PROBLEMS, N, MAX_TOKENS = 10, 4, 64


class ThinkBench(Benchmark):
    name = "t_think"
    default_samples = N
    reward = "t_after_think"
    generation_overrides = {"max_tokens": MAX_TOKENS}

    def load(self, source=None, limit=None):
        samples = [Sample(id=f"p{i}", columns={"answer": str(i)}) for i in range(N_PROBLEMS)]
        return samples[:limit] if limit else samples

    def prompt(self, sample):
        return [{"role": "user", "content": f"say {sample.columns['answer']}"}]

    def reference_completion(self, sample):
        return "ok </think> " + sample.columns["answer"]


class AfterThink(Reward):
    name = "t_after_think"
    columns = ("answer",)

    def score(self, completion, prompt=None, **row):
        return 1.0 if completion.rpartition("</think>")[2].strip() == row["answer"] else 0.0


def fake_completion(pid: str, index: int) -> Completion:
    """Sample j thinks 16(j+1) tokens then answers (1 token); the last sample is cut off at MAX_TOKENS without
    closing its thinking (an R1-Distill template opens <think> itself, so there is no tag). Even problems are right
    in every finished sample, odd ones only in sample 0."""
    if index == N - 1:
        return Completion(text="w " * MAX_TOKENS, finish_reason="length", num_tokens=MAX_TOKENS)
    right = int(pid[1:]) % 2 == 0 or index == 0
    think = 16 * (index + 1)
    return Completion(text="w " * think + "</think> " + (pid[1:] if right else "x"), num_tokens=think + 1)


class ThinkBackend(Backend):
    name = "t_backend"
    interrupt_on: str | None = None  # a benchmark whose generation is interrupted (Ctrl-C) halfway

    def generate(self, requests, config):
        out = []
        for r in requests:
            if ThinkBackend.interrupt_on and r.id == "p5" and ThinkBackend.interrupt_on in r.messages[0]["content"]:
                raise KeyboardInterrupt
            out.append([fake_completion(r.id, j) for j in r.sample_indices])
        return out


class SecondBench(ThinkBench):
    name = "t_second"

    def prompt(self, sample):
        return [{"role": "user", "content": f"second: say {sample.columns['answer']}"}]


class Plugin:
    @hookimpl
    def r1h_register_benchmarks(self, register):
        register("t_think", ThinkBench)
        register("t_second", SecondBench)

    @hookimpl
    def r1h_register_rewards(self, register):
        register("t_after_think", AfterThink)

    @hookimpl
    def r1h_register_backends(self, register):
        register("t_backend", ThinkBackend)


class AnchorPlugin:
    @hookimpl
    def r1h_register_anchors(self, register):
        from r1h.harness.core.anchor import Anchor, Published

        register("t_anchor", Anchor("t_anchor", "m", "test", {"t_think": Published(0.5)}, {"n": N}))


@pytest.fixture(autouse=True)
def fake_plugins():
    plugins._CURRENT = plugins.build(default_plugins=(), load_entry_points=False,
                                     extra_plugins=(Plugin(), AnchorPlugin()))
    ThinkBackend.interrupt_on = None
    yield
    plugins.reset()


def _run(tmp_path, bench="t_think"):
    return run_eval(EvalOptions(bench=bench, backend="t_backend", output=str(tmp_path / "run"), progress=False))


def test_per_sample_think_fields_are_stored(tmp_path):
    _run(tmp_path)
    lines = [json.loads(x) for x in (tmp_path / "run" / "samples" / "t_think.jsonl").read_text().splitlines()]
    by_key = {(r["id"], r["sample_index"]): r for r in lines}
    first = by_key[("p0", 0)]
    assert (first["think_tokens"], first["answer_tokens"], first["think_closed"]) == (16, 1, True)
    assert first["think_tokens"] + first["answer_tokens"] == first["num_tokens"]
    cut = by_key[("p0", N - 1)]
    assert cut["finish_reason"] == "length" and cut["think_closed"] is None  # no tag: decided per benchmark


def test_truncation_metrics_and_budget_curve_in_results(tmp_path):
    m = _run(tmp_path)["benchmarks"]["t_think"]
    assert m["pass@1"] == pytest.approx(0.5)  # even problems 3/4, odd 1/4
    assert m["truncated_rate"] == pytest.approx(1 / N)
    assert m["pass@1_finished"] == pytest.approx((5 * 3 + 5 * 1) / 30)
    assert m["pass@1_truncated"] == 0.0
    assert m["think_closed_rate"] == pytest.approx(0.75)  # the untagged cut-off sample counts as unclosed
    assert m["lengths"]["tokens"]["median"] == pytest.approx((33 + 49) / 2)
    assert m["lengths"]["think_tokens"]["p90"] == pytest.approx(MAX_TOKENS)
    assert m["lengths"]["answer_tokens"]["median"] == pytest.approx(1)
    # correct and finished within B: at 32 only sample 0 (17 tokens) of every problem; at 64 everything correct
    assert m["budget_curve"] == {"32": pytest.approx(0.25), "64": pytest.approx(0.5)}
    on_disk = json.loads((tmp_path / "run" / "results.json").read_text())
    assert on_disk["benchmarks"]["t_think"]["budget_curve"] == m["budget_curve"]
    assert on_disk["complete"] is True and on_disk["pending"] == []


def test_report_and_budget_plot(tmp_path):
    _run(tmp_path)
    report = (tmp_path / "run" / "report.md").read_text()
    assert "## Truncation and length" in report
    assert "| t_think | 25.00 | 66.67 | 0.00 | 41 / 64 | 75.00 |" in report
    assert "- t_think: 32: 25.00, 64: 50.00" in report
    assert (tmp_path / "run" / "budget.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Incomplete run" not in report


def test_an_interrupted_run_is_marked_incomplete_and_check_fails(tmp_path):
    ThinkBackend.interrupt_on = "second:"
    with pytest.raises(KeyboardInterrupt):
        _run(tmp_path, bench="t_think,t_second")
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["complete"] is False
    assert results["pending"] == ["t_second"]
    assert results["benchmarks"]["t_think"]["complete"] is True
    result = CliRunner().invoke(main, ["check", str(tmp_path / "run"), "--anchor", "t_anchor"])
    assert result.exit_code == 1, result.output
    assert "incomplete run: t_second: not finished" in result.output
    # resumed to the end, the same run is complete
    ThinkBackend.interrupt_on = None
    assert _run(tmp_path, bench="t_think,t_second")["complete"] is True


def test_check_passes_on_the_finished_run(tmp_path):
    _run(tmp_path)
    result = CliRunner().invoke(main, ["check", str(tmp_path / "run"), "--anchor", "t_anchor"])
    assert result.exit_code == 0, result.output
    assert "published 50.00 is inside" in result.output
    assert "truncated rate: 25.0% of the run's samples hit max_tokens (64)" in result.output
