"""The openai backend: request bodies, retries against a scripted loopback server, and a real `transformers serve`."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import r1h
from r1h.harness.core.errors import ConfigError
from r1h.harness.core.types import GenerationConfig, GenerationRequest
from r1h.plugins.backends import openai as openai_backend
from r1h.plugins.backends import vllm as vllm_backend
from r1h.plugins.backends.openai import (
    BackendError,
    OpenAIBackend,
    build_body,
    normalize_base_url,
    parse_choices,
    to_openai_messages,
)
from r1h.plugins.backends.openai_http import retry_after_seconds

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "perf"))
from simserver import SimServer  # noqa: E402


def _chat(text):
    return [{"role": "user", "content": text}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ----- pure request building -----


def test_base_url_and_key(monkeypatch):
    assert normalize_base_url("http://127.0.0.1:8000/") == "http://127.0.0.1:8000/v1"
    assert normalize_base_url("https://h/v1") == "https://h/v1"
    with pytest.raises(ConfigError, match="--base-url localhost:8000"):
        normalize_base_url("localhost:8000")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(ConfigError, match="needs --base-url"):
        OpenAIBackend("m")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    backend = r1h.get_backend("openai", "served-model", concurrency="3")
    assert (backend.base_url, backend.api_key, backend.concurrency) == ("http://127.0.0.1:9/v1", "sk-test", 3)
    assert backend.model_id == "served-model"
    assert OpenAIBackend("m").concurrency == 256
    two = OpenAIBackend("m", base_url="http://a:1, http://b:2/v1,http://a:1")
    assert two.base_urls == ["http://a:1/v1", "http://b:2/v1"]
    with pytest.raises(ConfigError, match="max_body_mb=big"):
        OpenAIBackend("m", max_body_mb="big")
    with pytest.raises(ConfigError, match="concurrency=many"):
        OpenAIBackend("m", concurrency="many")
    with pytest.raises(ConfigError, match="does not know --backend-arg batch_size"):
        OpenAIBackend("m", batch_size="2")


def test_build_body_and_images(tmp_path):
    from PIL import Image

    config = GenerationConfig(temperature=0.6, top_p=0.95, max_tokens=99, stop=["</answer>"])
    prefill = [*_chat("q"), {"role": "assistant", "content": "<think>"}]
    body = build_body(GenerationRequest("a", prefill, continue_final_message=True), config, model="m", seed=7, n=3)
    assert body == {"messages": prefill, "max_completion_tokens": 99, "temperature": 0.6, "top_p": 0.95,
                    "top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0, "model": "m",
                    "seed": 7, "n": 3, "stop": ["</answer>"], "continue_final_message": True,
                    "add_generation_prompt": False}
    body = build_body(GenerationRequest("a", _chat("q")), GenerationConfig(temperature=0, max_tokens=5, policy="model"),
                      model=None, seed=7, prefill_keys=False, tokens_field="max_tokens")
    assert body == {"messages": _chat("q"), "max_tokens": 5, "temperature": 0.0, "top_p": 1.0}

    path = tmp_path / "a.png"
    Image.new("RGB", (2, 2)).save(path)
    pil = Image.new("RGB", (2, 2), "blue")
    messages = to_openai_messages(_chat("How many?"), [str(path), pil])
    parts = messages[0]["content"]
    assert [p["type"] for p in parts] == ["image_url", "image_url", "text"]
    assert all(p["image_url"]["url"].startswith("data:image/png;base64,") for p in parts[:2])
    placeholders = [{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image"}]}]
    assert [p["type"] for p in to_openai_messages(placeholders, [pil])[0]["content"]] == ["text", "image_url"]
    with pytest.raises(ConfigError, match="missing.png"):
        to_openai_messages(_chat("q"), [str(tmp_path / "missing.png")])


def test_parse_choices():
    response = {"choices": [{"index": 1, "message": {"content": "bb</answer> tail"}, "finish_reason": "stop"},
                            {"index": 0, "message": {"content": "a"}, "finish_reason": "length"}],
                "usage": {"completion_tokens": 30}}
    out = parse_choices(response, ["</answer>"])
    assert [(c.text, c.finish_reason, c.num_tokens) for c in out] == [("a", "length", 10), ("bb", "stop", 20)]
    single = parse_choices({"choices": [{"message": {"content": None}, "finish_reason": "stop"}],
                            "usage": {"completion_tokens": 4}}, [])
    assert (single[0].text, single[0].num_tokens) == ("", 4)
    for bad, why in [([1, 2], "the body is a JSON list"), ({"choices": []}, "'choices' is missing"),
                     ({"choices": [{"message": "hi"}]}, "choices\\[0\\].message is a str"),
                     ({"choices": [{"message": {"content": 5}}]}, "choices\\[0\\].message.content is a int")]:
        with pytest.raises(BackendError, match=f"http://h/v1/chat/completions: malformed response for problem p7: {why}"):
            parse_choices(bad, [], url="http://h/v1", problem="p7")


def test_neutral_sampling_is_the_same_for_vllm_and_openai():
    """The hook every backend mirrors (``effective_sampling``), and the raw values each sends."""
    for config in (GenerationConfig(temperature=0.6, top_p=0.95), GenerationConfig(temperature=0.0),
                   GenerationConfig(temperature=1.0, top_p=1.0, policy="model")):
        assert openai_backend.effective_sampling(config) == vllm_backend.effective_sampling(config)
        body = build_body(GenerationRequest("a", _chat("q")), config, model=None, seed=1)
        params = vllm_backend.sampling_kwargs(config, 1)
        keys = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")
        assert {k: body.get(k) for k in keys} == {k: params.get(k) for k in keys}
    neutral = openai_backend.effective_sampling(GenerationConfig(temperature=0.6, top_p=0.95))
    assert neutral == {"temperature": 0.6, "top_p": 0.95, "top_k": None, "min_p": 0.0, "repetition_penalty": 1.0}
    model = openai_backend.effective_sampling(GenerationConfig(policy="model"))
    assert model["top_k"] is None and model["min_p"] is None and model["repetition_penalty"] is None


def test_retry_after_forms():
    assert retry_after_seconds("3") == 3.0
    assert retry_after_seconds(None) is None and retry_after_seconds("soon") is None
    assert 59 <= retry_after_seconds("Wed, 21 Oct 2026 07:28:00 GMT", now=1792567620.0) <= 61


# ----- a scripted loopback server: retries, concurrency, seeds, fallbacks -----


class _Script:
    def __init__(self):
        self.bodies: list[dict] = []
        self.failures = 0  # answer 503 to this many requests first
        self.reject_prefill = False
        self.ignore_n = False
        self.lock = threading.Lock()


def _serving(server, script):
    """Serve on loopback in a thread while the fixture's test runs; ``script.url`` is the server's address."""
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    script.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield script
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def scripted():
    script = _Script()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _send(self, code, payload):
            data = json.dumps(payload).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.path == "/v1/chat/completions"
            assert self.headers["Authorization"] == "Bearer EMPTY"
            with script.lock:
                script.bodies.append(body)
                if script.failures > 0:
                    script.failures -= 1
                    return self._send(503, {"detail": "warming up"})
            if script.reject_prefill and "continue_final_message" in body:
                return self._send(422, {"detail": "Unexpected fields in the request: {'continue_final_message'}"})
            if body.get("model") == "wrong":
                return self._send(404, {"error": {"message": "model 'wrong' does not exist"}})
            n = 1 if script.ignore_n else body.get("n", 1)
            text = f"{body['messages'][-1]['content']}|seed={body.get('seed')}"
            choices = [{"index": i, "message": {"role": "assistant", "content": f"{text}#{i}"},
                        "finish_reason": "length" if body.get("max_completion_tokens", body.get("max_tokens")) <= 3 else "stop"}
                       for i in range(n)]
            self._send(200, {"choices": choices, "usage": {"completion_tokens": 3 * n}})

    yield from _serving(ThreadingHTTPServer(("127.0.0.1", 0), Handler), script)


def test_per_sample_seeds_concurrency_and_retries(scripted, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    backend = OpenAIBackend(None, base_url=scripted.url, retry_backoff="0.01", concurrency="4")
    scripted.failures = 3
    requests = [GenerationRequest("a", _chat("q1"), [0, 5], [10, 11]), GenerationRequest("b", _chat("q2"), [2], [12])]
    out = backend.generate(requests, GenerationConfig(temperature=0.6, max_tokens=50))
    assert [[c.text for c in per] for per in out] == [["q1|seed=10#0", "q1|seed=11#0"], ["q2|seed=12#0"]]
    assert all((c.finish_reason, c.num_tokens) == ("stop", 3) for per in out for c in per)
    assert sum(c.num_tokens for per in out for c in per) == 9  # usage.completion_tokens of each answer
    assert len(scripted.bodies) == 3 + 3 and all("model" not in b for b in scripted.bodies)

    greedy = backend.generate(requests[:1], GenerationConfig(temperature=0, max_tokens=3))
    assert [(c.text, c.finish_reason) for c in greedy[0]] == [("q1|seed=None#0", "length")] * 2
    assert len(scripted.bodies) == 7  # greedy: one request for both samples


def test_use_n_fills_what_the_server_ignored(scripted):
    backend = OpenAIBackend("m", base_url=scripted.url, use_n="true")
    request = GenerationRequest("a", _chat("q"), [0, 1, 2], [10, 11, 12])
    out = backend.generate([request], GenerationConfig(max_tokens=50))
    assert [c.text for c in out[0]] == ["q|seed=10#0", "q|seed=10#1", "q|seed=10#2"]
    assert scripted.bodies[-1]["n"] == 3
    scripted.ignore_n = True
    out = backend.generate([request], GenerationConfig(max_tokens=50))
    assert [c.text for c in out[0]] == ["q|seed=10#0", "q|seed=11#0", "q|seed=12#0"]


def test_prefill_fallback_and_errors(scripted):
    scripted.reject_prefill = True
    backend = OpenAIBackend("m", base_url=scripted.url, retry_backoff="0.01", max_retries="1")
    prefill = [*_chat("q"), {"role": "assistant", "content": "<think>"}]
    request = GenerationRequest("a", prefill, [0], [1], continue_final_message=True)
    out = backend.generate([request], GenerationConfig(max_tokens=50))
    assert out[0][0].text == "<think>|seed=1#0"
    assert backend.prefill_keys is False and "continue_final_message" not in scripted.bodies[-1]

    with pytest.raises(BackendError, match=r"/v1/chat/completions: HTTP 404 for problem a: model .wrong. does not exist"):
        OpenAIBackend("wrong", base_url=scripted.url).generate([request], GenerationConfig())
    dead = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(BackendError, match=r"no answer for problem a after 2 tries \(last: http.*ConnectionRefusedError"):
        OpenAIBackend("m", base_url=dead, retry_backoff="0.01", max_retries="1").generate(
            [GenerationRequest("a", _chat("q"))], GenerationConfig())


# ----- the continuous-batching simulator: streaming order and replicas -----


@pytest.fixture
def sim():
    servers = []

    def make(**kw):
        server = SimServer(**{"slots": 4, "step_s": 0.002, "max_requests": 500, **kw}).start()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def test_completions_stream_as_they_finish(sim):
    server = sim()
    backend = OpenAIBackend(None, base_url=server.url)
    lengths = [400, 2, 240, 1, 120]  # wide margins: the simulator's clock is real time
    requests = [GenerationRequest(f"p{i}", _chat(f"q len={n}"), [0], [i]) for i, n in enumerate(lengths)]
    order = [g.request.id for g in backend.stream(iter(requests), GenerationConfig(max_tokens=500))]
    assert order == ["p3", "p1", "p4", "p2", "p0"]  # shortest first, not the order sent
    assert server.engine.max_running == 4  # every slot busy: the backend kept more than the slots in flight
    backend.close()


def test_two_replicas_one_broken(sim):
    good, broken = sim(), sim(fail=True)
    backend = OpenAIBackend(None, base_url=f"{broken.url},{good.url}", retry_backoff="0.01", max_retries="2",
                            concurrency="3")
    requests = [GenerationRequest(f"p{i}", _chat(f"q{i} len=3"), [0, 1], [i, 100 + i]) for i in range(6)]
    got = list(backend.stream(iter(requests), GenerationConfig(max_tokens=10)))
    assert sorted((g.request.id, g.sample_index) for g in got) == sorted((f"p{i}", s) for i in range(6) for s in (0, 1))
    assert broken.bodies and len(good.bodies) == 12  # every sample retried on the good replica
    backend.close()


def test_two_healthy_replicas_share_the_work(sim):
    a, b = sim(), sim()
    backend = OpenAIBackend(None, base_url=f"{a.url},{b.url}", concurrency="2")
    requests = [GenerationRequest(f"p{i}", _chat(f"q{i} len={1 + i % 4}"), [0], [i]) for i in range(20)]
    got = list(backend.stream(iter(requests), GenerationConfig(max_tokens=10)))
    assert len(got) == 20 and len(a.bodies) + len(b.bodies) == 20 and min(len(a.bodies), len(b.bodies)) >= 5
    assert backend.describe()["base_urls"] == [f"{a.url}/v1", f"{b.url}/v1"]
    backend.close()


# ----- the real thing: transformers serve on loopback with SmolLM2 -----


@pytest.fixture(scope="module")
def smol_server(smollm2, tmp_path_factory):
    """`transformers serve` on 127.0.0.1 with SmolLM2. Serve cannot load a local GGUF (its config names no
    architecture), so the fixture converts the GGUF to an HF folder once."""
    cli = Path(sys.executable).with_name("transformers")
    if not cli.exists() and shutil.which("transformers") is None:
        pytest.skip("the transformers CLI is not installed")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path_factory.mktemp("smol_hf")
    model = AutoModelForCausalLM.from_pretrained(smollm2.parent, gguf_file=smollm2.name)
    tokenizer = AutoTokenizer.from_pretrained(smollm2.parent, gguf_file=smollm2.name)
    model.hf_quantizer = None  # the GGUF weights are de-quantized: save them as plain safetensors
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del model

    port = _free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_VERBOSITY": "error"}
    log = open(folder / "serve.log", "wb")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [str(cli) if cli.exists() else "transformers", "serve", str(folder), "--host", "127.0.0.1",
         "--port", str(port), "--device", "cpu"],
        stdout=log, stderr=subprocess.STDOUT, env=env,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"transformers serve exited: {(folder / 'serve.log').read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("transformers serve did not become ready in 120 s")
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.mark.slow
def test_real_transformers_serve(smol_server):
    backend = r1h.get_backend("openai", None, base_url=smol_server, concurrency="2", retry_backoff="0.2")
    requests = [
        GenerationRequest("a", _chat("What is 2+3?"), [0, 1], [10, 11]),
        GenerationRequest("b", _chat("Name a color."), [0], [12]),
    ]
    out = backend.generate(requests, GenerationConfig(temperature=0.7, max_tokens=6))
    assert [len(per) for per in out] == [2, 1]
    for per in out:
        for c in per:
            assert c.text.strip() and c.finish_reason in ("stop", "length") and 0 < c.num_tokens <= 6

    greedy = backend.generate(requests[:1], GenerationConfig(temperature=0, max_tokens=4))
    assert greedy[0][0].text == greedy[0][1].text and greedy[0][0].finish_reason == "length"
    assert greedy[0][0].num_tokens == 4

    # transformers serve rejects vLLM's prefill keys: the backend falls back to a plain assistant message
    prefill = [*_chat("Count from 1 to 10."), {"role": "assistant", "content": "1, 2, 3,"}]
    cont = backend.generate([GenerationRequest("p", prefill, [0], [0], continue_final_message=True)],
                            GenerationConfig(temperature=0, max_tokens=4))
    assert cont[0][0].text and backend.prefill_keys is False


def test_base_url_is_repeatable_on_the_command_line(monkeypatch):
    from click.testing import CliRunner

    from r1h.harness.cli.eval import eval_cmd
    from r1h.harness.eval import runner

    seen = {}
    monkeypatch.setattr(runner, "run_eval", lambda opts: seen.setdefault("opts", opts))
    result = CliRunner().invoke(eval_cmd, ["--backend", "openai", "--base-url", "http://a:1", "--base-url",
                                           "http://b:2/v1"])
    assert result.exit_code == 0, result.output
    assert seen["opts"].backend_args["base_url"] == "http://a:1,http://b:2/v1"
    backend = OpenAIBackend(None, **seen["opts"].backend_args)
    assert backend.base_urls == ["http://a:1/v1", "http://b:2/v1"]


def test_all_three_backends_send_the_same_sampling_distribution():
    """transformers, offline vLLM and the OpenAI client (so ``vllm serve``) sample the same distribution."""
    from r1h.plugins.backends import transformers_sampling

    for config in (GenerationConfig(temperature=0.6, top_p=0.95), GenerationConfig(temperature=0.0),
                   GenerationConfig(temperature=1.0, top_p=1.0, policy="model")):
        expected = vllm_backend.effective_sampling(config)
        assert transformers_sampling.effective_sampling(config) == expected, config
        assert openai_backend.effective_sampling(config) == expected, config
    neutral = transformers_sampling.effective_sampling(GenerationConfig())
    assert neutral == {"temperature": 0.6, "top_p": 0.95, "top_k": None, "min_p": 0.0, "repetition_penalty": 1.0}


def test_thinking_budget_continues_the_assistant_turn_on_the_server(scripted, tmp_path):
    """``--thinking-budget`` through the openai backend: phase 2 is a chat request whose last message is the assistant
    text so far, with vLLM's ``continue_final_message`` keys, the answer cap and a seed derived from the sample's."""
    from r1h.harness.eval.budget import phase2_seed
    from r1h.harness.eval.plan import EvalOptions
    from r1h.harness.eval.runner import run_eval

    out = tmp_path / "run"
    opts = EvalOptions(bench="countdown", backend="openai", backend_args={"base_url": scripted.url}, limit=2, n=2,
                       output=str(out), progress=False, thinking_budget=3, answer_cap=40)
    run_eval(opts)  # the server cuts every answer of 3 tokens or fewer ("length"): every sample is forced
    records = [json.loads(line) for line in (out / "samples" / "countdown.jsonl").read_text().splitlines()]
    assert len(records) == 4 and all(r["budget"]["forced"] for r in records)
    cue = r1h.get_benchmark("countdown").answer_cue
    first = [b for b in scripted.bodies if b["max_completion_tokens"] == 3]
    second = [b for b in scripted.bodies if b["max_completion_tokens"] == 40]
    assert len(first) == len(second) == 4
    for rec in records:
        prefill = rec["prompt"][-1]["content"]  # countdown's "...<think>" assistant prefill
        phase1 = f"{prefill}|seed={rec['seed']}#0"
        body = next(b for b in second if b["seed"] == phase2_seed(rec["seed"]))
        assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
        assert body["messages"][:-1] == rec["prompt"][:-1]
        assert body["messages"][-1] == {"role": "assistant", "content": prefill + phase1 + "\n</think>" + cue}
        assert rec["completion"] == phase1 + "\n</think>" + cue + f"{body['messages'][-1]['content']}|seed=" \
                                    f"{body['seed']}#0"
    run_eval(opts)  # resumed: nothing is asked again
    assert len(scripted.bodies) == 8
