"""``r1h eval --thinking-budget``: s1 budget forcing on real ``run_eval`` runs and the CLI, with a deterministic
thinking backend registered through the plugin API (what each phase asks the engine, what is stored, seeds, resume,
the fingerprint, the sweep and its plot, flag errors), the gold backend, and the real transformers backend on the
embedded model (the openai backend's test is in test_backend_openai.py, vLLM's in test_vllm_real_budget.py)."""

from __future__ import annotations

import json
import threading

import pytest
from click.testing import CliRunner

import r1h
from r1h import Backend, Benchmark, Completion, Reward, Sample, hookimpl
from r1h.harness.cli.main import main
from r1h.harness.core import plugins
from r1h.harness.core.errors import RunError
from r1h.harness.core.types import Generated, GenerationRequest
from r1h.harness.eval.budget import DEFAULT_CUE, ThinkingBudget, continuation, phase2_seed
from r1h.harness.eval.plan import EvalOptions
from r1h.harness.eval.runner import run_eval

THINK = {"p0": 4, "p1": 9, "p2": 12, "p3": 24}  # thinking words of each problem's samples
CUE = "\nSo:"


class BudgetBench(Benchmark):
    name = "bf_bench"
    default_samples = 2
    reward = "bf_last_word"
    answer_cue = CUE
    generation_overrides = {"max_tokens": 64}

    def load(self, source=None, limit=None):
        samples = [Sample(id=pid, columns={"answer": pid[1:]}) for pid in THINK]
        return samples[:limit] if limit else samples

    def prompt(self, sample):
        return [{"role": "user", "content": f"think, then say {sample.columns['answer']}"}]

    def reference_completion(self, sample):
        return "</think> " + sample.columns["answer"]


class LastWord(Reward):
    name = "bf_last_word"
    columns = ("answer",)

    def score(self, completion, prompt=None, **row):
        return 1.0 if completion.split()[-1:] == [row["answer"]] else 0.0


class Thinker(Backend):
    """Phase 1: the problem's THINK words, ``</think>``, the answer: one token each, cut at ``max_tokens``. Phase 2 (an
    assistant message to continue): the seed and the answer when at least half the thinking was done, else "x"."""

    name = "bf_thinker"
    seen: list[tuple[GenerationRequest, int]] = []
    made = 0
    fail_after: int | None = None  # raise KeyboardInterrupt after this many yields (a killed run)
    answer_asked = threading.Event()  # set when an answer-phase request reaches the backend

    def __init__(self, model=None, **args):
        super().__init__(model, **args)
        Thinker.made += 1
        self.yielded = 0

    def stream(self, requests, config):
        for request in requests:
            Thinker.seen.append((request, config.max_tokens))
            if request.continue_final_message:
                Thinker.answer_asked.set()
            for index, seed in zip(request.sample_indices, request.seeds, strict=True):
                if Thinker.fail_after is not None and self.yielded >= Thinker.fail_after:
                    raise KeyboardInterrupt
                self.yielded += 1
                yield Generated(request, index, self._one(request, seed, config.max_tokens))

    @staticmethod
    def _one(request, seed, max_tokens):
        words = THINK[request.id]
        answer = request.id[1:]
        if request.continue_final_message:
            done = request.messages[-1]["content"].count("w ")
            text = f" s{seed} " + (answer if 2 * done >= words else "x")
            return Completion(text, "stop", 2)
        tokens = ["w "] * words + ["</think>", f" {answer}"]
        if len(tokens) <= max_tokens:
            return Completion("".join(tokens), "stop", len(tokens))
        return Completion("".join(tokens[:max_tokens]), "length", max_tokens)


class AsyncThinker(Thinker):
    """An engine that serves two streams at once: its phase-1 stream, after yielding its first cut sample, waits (10 s
    at most) for that sample's answer-phase request to reach it before it goes on."""

    name = "bf_async"
    concurrent_streams = True
    overlapped: list[bool] = []
    answer_error = False

    def stream(self, requests, config):
        if AsyncThinker.answer_error and config.max_tokens == 3:
            raise RuntimeError("the server went away")
        for g in super().stream(requests, config):
            yield g
            if g.completion.finish_reason == "length" and not AsyncThinker.overlapped:
                AsyncThinker.overlapped.append(Thinker.answer_asked.wait(timeout=10))


class Plugin:
    @hookimpl
    def r1h_register_benchmarks(self, register):
        register("bf_bench", BudgetBench)

    @hookimpl
    def r1h_register_rewards(self, register):
        register("bf_last_word", LastWord)

    @hookimpl
    def r1h_register_backends(self, register):
        register("bf_thinker", Thinker)
        register("bf_async", AsyncThinker)


@pytest.fixture(autouse=True)
def fake_plugins():
    plugins._CURRENT = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(Plugin(),))
    Thinker.seen, Thinker.made, Thinker.fail_after = [], 0, None
    Thinker.answer_asked.clear()
    AsyncThinker.overlapped, AsyncThinker.answer_error = [], False
    yield
    plugins.reset()


def _opts(out, budget=10, backend="bf_thinker", **kw):
    return EvalOptions(bench="bf_bench", backend=backend, output=str(out), progress=False,
                       thinking_budget=budget, **kw)


def _records(out, bench="bf_bench"):
    lines = (out / "samples" / f"{bench}.jsonl").read_text().splitlines()
    return {(r["id"], r["sample_index"]): r for r in map(json.loads, lines)}


def test_each_phase_asks_what_budget_forcing_needs_and_the_sample_is_stored_whole(tmp_path):
    results = run_eval(_opts(tmp_path / "run", budget=10, answer_cap=3))
    records = _records(tmp_path / "run")
    assert len(records) == 8
    # p0 thinks 4 words: done within the budget in one phase
    p0 = records[("p0", 0)]
    assert p0["budget"] == {"thinking_budget": 10, "forced": False, "phases": 1, "phase1_tokens": 6,
                            "phase2_tokens": 0}
    assert p0["completion"] == "w " * 4 + "</think> 0" and p0["correct"]
    # p1 closed its thinking at token 10 but its answer was cut: continued as it is, no cue
    p1 = records[("p1", 1)]
    assert p1["budget"]["forced"] is False and p1["budget"]["phases"] == 2
    assert p1["completion"] == "w " * 9 + "</think>" + f" s{phase2_seed(p1['seed'])} 1"
    # p2 (12 words) and p3 (24) were cut inside their thinking: closed for them, the cue, the answer phase
    for pid, right in (("p2", True), ("p3", False)):
        rec = records[(pid, 0)]
        assert rec["budget"] == {"thinking_budget": 10, "forced": True, "phases": 2, "phase1_tokens": 10,
                                 "phase2_tokens": 2}
        seed2 = phase2_seed(rec["seed"])
        assert rec["completion"] == "w " * 10 + "\n</think>" + CUE + f" s{seed2} " + (pid[1:] if right else "x")
        assert rec["correct"] is right
        assert (rec["think_tokens"], rec["answer_tokens"]) == (10, 2)  # the phases' exact counts
        assert rec["think_closed"] is False  # the model did not close it: r1h did
    # what the engine was asked: phase 1 at the budget with the sample seeds, phase 2 at the answer cap with
    # derived seeds, continuing an assistant message
    first = [(r, m) for r, m in Thinker.seen if not r.continue_final_message]
    second = [(r, m) for r, m in Thinker.seen if r.continue_final_message]
    assert {m for _, m in first} == {10} and {m for _, m in second} == {3}
    assert len(second) == 6  # p1, p2, p3 times two samples; one request per sample
    for request, _ in second:
        rec = records[(request.id, request.sample_indices[0])]
        assert request.seeds == [phase2_seed(rec["seed"])]
        assert request.messages[:-1] == rec["prompt"]
        injected = "" if request.id == "p1" else "\n</think>" + CUE
        assert request.messages[-1] == {"role": "assistant", "content": "w " * (9 if injected == "" else 10)
                                        + ("</think>" if injected == "" else injected)}
    metrics = results["benchmarks"]["bf_bench"]
    assert metrics["thinking_budget"]["forced_rate"] == 0.5
    assert metrics["thinking_budget"]["answer_phase_rate"] == 0.75
    assert metrics["thinking_budget"]["cue"] == CUE and metrics["thinking_budget"]["answer_cap"] == 3
    report = (tmp_path / "run" / "report.md").read_text()
    assert "thinking budget 10 tokens (s1 budget forcing), answer cap 3 tokens" in report
    assert "forced in 50.00% of samples (pass@1 50.00% forced, 100.00% not)" in report


def test_a_concurrent_engine_gets_each_answer_phase_while_phase_one_still_runs(tmp_path):
    windowed = run_eval(_opts(tmp_path / "windowed", answer_cap=3))
    results = run_eval(_opts(tmp_path / "async", backend="bf_async", answer_cap=3))
    assert AsyncThinker.overlapped == [True]  # the answer phase reached the engine before phase 1 went on
    assert {k: r["completion"] for k, r in _records(tmp_path / "async").items()} == \
           {k: r["completion"] for k, r in _records(tmp_path / "windowed").items()}
    assert results["benchmarks"]["bf_bench"]["pass@1"] == windowed["benchmarks"]["bf_bench"]["pass@1"]
    AsyncThinker.answer_error = True
    with pytest.raises(RuntimeError, match="the server went away"):
        run_eval(_opts(tmp_path / "broken", backend="bf_async", answer_cap=3))


def test_a_prefilled_prompt_is_continued_in_its_own_assistant_message():
    prefill = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "Let me think.\n<think>"}]
    request = GenerationRequest("a", prefill, [3], [77], continue_final_message=True)
    follow, injected = continuation(Generated(request, 3, Completion("abc\n", "length", 8)), ThinkingBudget(8))
    assert injected == "</think>" + DEFAULT_CUE  # a text ending in a newline gets no second one (s1)
    assert follow.messages == [prefill[0], {"role": "assistant", "content": "Let me think.\n<think>abc\n" + injected}]
    assert (follow.sample_indices, follow.seeds, follow.continue_final_message) == ([3], [phase2_seed(77)], True)
    assert prefill[-1]["content"] == "Let me think.\n<think>"  # the request itself is left alone
    assert continuation(Generated(request, 3, Completion("abc", "stop", 3)), ThinkingBudget(8)) is None


def test_a_killed_budget_run_resumes_to_the_same_samples_and_other_budgets_are_refused(tmp_path):
    fresh = tmp_path / "fresh"
    run_eval(_opts(fresh))
    killed = tmp_path / "killed"
    Thinker.fail_after = 7  # in the middle of the answer phase
    with pytest.raises(KeyboardInterrupt):
        run_eval(_opts(killed))
    assert 0 < len(_records(killed)) < 8
    assert not json.loads((killed / "results.json").read_text())["complete"]
    Thinker.fail_after = None
    resumed = run_eval(_opts(killed))
    assert resumed["complete"]
    assert {k: r["completion"] for k, r in _records(killed).items()} == \
           {k: r["completion"] for k, r in _records(fresh).items()}
    for changed in (dict(budget=12), dict(answer_cap=7), dict(answer_cue="\nAnswer:"), dict(budget=None)):
        opts = _opts(killed, **{"budget": 10, **changed})
        with pytest.raises(RunError, match="different config"):
            run_eval(opts)


def test_a_sweep_runs_each_budget_on_one_backend_and_plots_accuracy_against_budget(tmp_path):
    out = tmp_path / "sweep"
    res = CliRunner().invoke(main, ["eval", "--bench", "bf_bench", "--backend", "bf_thinker", "--output", str(out),
                                    "--thinking-budget", "5,10,20", "--no-progress"])
    assert res.exit_code == 0, res.output
    assert Thinker.made == 1
    sweep = json.loads((out / "sweep.json").read_text())
    assert sweep["budgets"] == [5, 10, 20]
    curve = {b: v["pass@1"] for b, v in sweep["benchmarks"]["bf_bench"].items()}
    assert curve == {"5": 0.5, "10": 0.75, "20": 1.0}
    assert sweep["benchmarks"]["bf_bench"]["5"]["forced_rate"] == 0.75
    for budget in (5, 10, 20):
        results = json.loads((out / f"budget-{budget}" / "results.json").read_text())
        assert results["config"]["benchmarks"]["bf_bench"]["thinking_budget"]["budget"] == budget
    assert (out / "budget_sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| bf_bench | 10 | 75.00 |" in (out / "sweep.md").read_text()
    assert "| bf_bench | 10 | 75.00 |" in res.stdout
    again = CliRunner().invoke(main, ["eval", "--bench", "bf_bench", "--backend", "bf_thinker", "--output", str(out),
                                      "--thinking-budget", "5,10,20", "--no-progress"])
    assert again.exit_code == 0, again.output  # rerun: every budget's run resumes (nothing left to generate)
    assert "resuming" in again.output


@pytest.mark.parametrize("args, needle", [
    (["--thinking-budget", "0"], "--thinking-budget 0: 0 must be >= 1 token"),
    (["--thinking-budget", "-8"], "--thinking-budget -8: -8 must be >= 1 token"),
    (["--thinking-budget", "1.5"], "--thinking-budget 1.5: '1.5' is not a whole number of tokens"),
    (["--thinking-budget", "64,lots"], "'lots' is not a whole number"),
    (["--thinking-budget", "128", "--max-tokens", "64"], "--thinking-budget 128: larger than --max-tokens 64"),
    (["--thinking-budget", "16,128", "--max-tokens", "64"], "--thinking-budget 128: larger than --max-tokens 64"),
    (["--thinking-budget", "65"], "--thinking-budget 65: larger than --max-tokens 64 (bf_bench's max_tokens)"),
    (["--thinking-budget", "8,65"], "--thinking-budget 65: larger than --max-tokens 64 (bf_bench's max_tokens)"),
    (["--answer-cap", "8"], "--answer-cap and --answer-cue go with --thinking-budget"),
    (["--thinking-budget", "8", "--answer-cap", "0"], "--answer-cap 0: must be >= 1 token"),
])
def test_bad_budget_flags_are_one_line_usage_errors(args, needle, tmp_path):
    res = CliRunner().invoke(main, ["eval", "--bench", "bf_bench", "--backend", "bf_thinker",
                                    "--output", str(tmp_path / "run"), *args])
    assert res.exit_code == 2, res.output
    assert needle in res.output.splitlines()[-1], res.output
    assert not (tmp_path / "run").exists()


def test_the_gold_backend_still_scores_everything_under_a_budget(tmp_path):
    plugins.reset()
    results = run_eval(EvalOptions(bench="countdown", backend="gold", limit=4, n=2, output=str(tmp_path / "g"),
                                   progress=False, thinking_budget=64))
    assert results["benchmarks"]["countdown"]["pass@1"] == 1.0
    assert results["benchmarks"]["countdown"]["thinking_budget"]["cue"] == r1h.get_benchmark("countdown").answer_cue


def test_transformers_embedded_model_budget_forcing(tmp_path, smollm2, refdata):
    """The real transformers backend: phase 1 stops at the budget, phase 2 continues the assistant turn after the
    math cue (the chat template leaves it open), and a resumed run regenerates the same texts."""
    plugins.reset()
    backend = r1h.get_backend("transformers", None)
    opts = EvalOptions(bench="math500", data={"math500": str(refdata / "math500" / "test.jsonl")}, limit=3, n=2,
                       max_tokens=64, output=str(tmp_path / "run"), progress=False, thinking_budget=12, answer_cap=6)
    try:
        run_eval(opts, backend=backend)
        samples = tmp_path / "run" / "samples" / "math500.jsonl"
        records = {(r["id"], r["sample_index"]): r for r in map(json.loads, samples.read_text().splitlines())}
        cue = r1h.get_benchmark("math500").answer_cue
        forced = [r for r in records.values() if r["budget"]["forced"]]
        assert forced, "SmolLM2 answers a MATH-500 problem in more than 12 tokens"
        for rec in forced:
            assert rec["budget"]["phase1_tokens"] == 12 and 1 <= rec["budget"]["phase2_tokens"] <= 6
            assert "</think>" + cue in rec["completion"]
        rec = forced[0]
        request = GenerationRequest(rec["id"], rec["prompt"], [rec["sample_index"]], [rec["seed"]])
        cut = Generated(request, rec["sample_index"], Completion("Let us think", "length", 12))
        follow, _ = continuation(cut, ThinkingBudget(12, 6, cue))
        assert backend._prompt(follow).endswith(cue)  # continued, not closed by the template
        # resume: drop two samples, rerun, the same texts come back (per-sample seeds in both phases)
        lines = samples.read_text().splitlines()
        samples.write_text("\n".join(lines[:-2]) + "\n")
        run_eval(opts, backend=backend)
        again = {(r["id"], r["sample_index"]): r for r in map(json.loads, samples.read_text().splitlines())}
        assert {k: r["completion"] for k, r in again.items()} == {k: r["completion"] for k, r in records.items()}
    finally:
        backend.close()
