"""The vllm backend's request building and output handling, with a fake ``vllm`` module (vLLM needs a GPU)."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field

import pytest

import r1h
from r1h.harness.errors import ConfigError
from r1h.harness.types import GenerationConfig, GenerationRequest
from r1h.plugins.backends.vllm import VLLMBackend, engine_kwargs, plan_calls, sampling_kwargs


@dataclass
class _Out:
    text: str
    finish_reason: str
    token_ids: list[int]


@dataclass
class _RequestOutput:
    outputs: list[_Out]


@dataclass
class FakeLLM:
    """Records what the backend asks; answers with text naming the conversation and its seed."""

    kwargs: dict
    calls: list = field(default_factory=list)

    def chat(self, messages, sampling_params=None, use_tqdm=True, add_generation_prompt=True,
             continue_final_message=False, **_):
        assert not (add_generation_prompt and continue_final_message)
        assert len(sampling_params) == len(messages)
        self.calls.append({"messages": messages, "params": sampling_params,
                           "add_generation_prompt": add_generation_prompt,
                           "continue_final_message": continue_final_message})
        outs = []
        for conv, params in zip(messages, sampling_params, strict=True):
            last = conv[-1]["content"]
            last = last if isinstance(last, str) else "+".join(p.get("type", "") for p in last)
            n_tokens = 5 if params.kwargs["max_tokens"] > 5 else params.kwargs["max_tokens"]
            reason = "length" if n_tokens == params.kwargs["max_tokens"] else "stop"
            outs.append(_RequestOutput([_Out(f"{last}|seed={params.kwargs.get('seed')}", reason, [0] * n_tokens)]))
        return outs


class FakeSamplingParams:
    def __init__(self, **kwargs):
        self.kwargs = kwargs


@pytest.fixture
def fake_vllm(monkeypatch):
    module = types.ModuleType("vllm")
    created = []

    def make_llm(**kwargs):
        llm = FakeLLM(kwargs)
        created.append(llm)
        return llm

    module.LLM = make_llm
    module.SamplingParams = FakeSamplingParams
    module.created = created
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


def _chat(text):
    return [{"role": "user", "content": text}]


def test_engine_kwargs_convert_types(tmp_path):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    kwargs = engine_kwargs(str(ckpt), {
        "tensor_parallel_size": "2", "data_parallel_size": "4", "gpu_memory_utilization": "0.85",
        "max_model_len": "32768", "dtype": "bfloat16", "seed": "0", "trust_remote_code": "true",
        "limit_mm_per_prompt": '{"image": 1}',
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


def test_gguf_model_is_passed_as_a_file_path(smollm2):
    assert engine_kwargs(None, {})["model"] == str(smollm2)


def test_sampling_kwargs():
    config = GenerationConfig(temperature=0.6, top_p=0.95, max_tokens=32768, stop=["</answer>"])
    assert sampling_kwargs(config, 42) == {"n": 1, "max_tokens": 32768, "temperature": 0.6, "top_p": 0.95,
                                           "seed": 42, "stop": ["</answer>"]}
    assert sampling_kwargs(GenerationConfig(temperature=0.0, max_tokens=7), 42) == {
        "n": 1, "max_tokens": 7, "temperature": 0.0, "top_p": 1.0}


def test_plan_one_conversation_per_seed_and_prefill_in_its_own_call(tmp_path):
    from PIL import Image

    image = tmp_path / "img.png"
    Image.new("RGB", (4, 4), "red").save(image)
    prefill = [*_chat("Solve it."), {"role": "assistant", "content": "Let me solve this step by step.\n<think>"}]
    requests = [
        GenerationRequest("a", _chat("q1"), [0, 1, 2], [10, 11, 12]),
        GenerationRequest("b", prefill, [3], [13], continue_final_message=True),
        GenerationRequest("c", [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "How many?"}]}],
                          [0], [14], images=[str(image)]),
        GenerationRequest("d", _chat("resumed, nothing missing"), [], []),
    ]
    calls = plan_calls(requests, GenerationConfig(temperature=0.6, top_p=0.95, max_tokens=100))
    assert [c.continue_final_message for c in calls] == [False, True]
    plain, cont = calls
    assert plain.chat_flags == {"add_generation_prompt": True, "continue_final_message": False}
    assert cont.chat_flags == {"add_generation_prompt": False, "continue_final_message": True}
    assert [p["seed"] for p in plain.params] == [10, 11, 12, 14]
    assert plain.targets == [(0, [0]), (0, [1]), (0, [2]), (2, [0])]
    assert cont.targets == [(1, [0])] and cont.conversations[0][-1]["role"] == "assistant"
    image_parts = plain.conversations[3][0]["content"]
    assert image_parts[0]["type"] == "image_url"
    assert image_parts[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert image_parts[1] == {"type": "text", "text": "How many?"}

    greedy = plan_calls(requests[:1], GenerationConfig(temperature=0.0, max_tokens=100))
    assert greedy[0].targets == [(0, [0, 1, 2])] and "seed" not in greedy[0].params[0]

    with pytest.raises(ConfigError, match="request x: 1 seeds for 2 samples"):
        plan_calls([GenerationRequest("x", _chat("q"), [0, 1], [5])], GenerationConfig())


def test_generate_through_fake_vllm(fake_vllm, tmp_path):
    backend = r1h.get_backend("vllm", "Qwen/Qwen2.5-Math-1.5B", tensor_parallel_size="2", max_model_len="4096")
    assert isinstance(backend, VLLMBackend)
    assert backend.model_id == "Qwen/Qwen2.5-Math-1.5B"
    counted = []
    backend.on_tokens = counted.append
    prefill = [*_chat("Solve it."), {"role": "assistant", "content": "<think>"}]
    requests = [
        GenerationRequest("a", _chat("q1"), [4, 7], [10, 11]),
        GenerationRequest("b", prefill, [0], [13], continue_final_message=True),
    ]
    out = backend.generate(requests, GenerationConfig(temperature=0.6, max_tokens=100))
    assert [[c.text for c in per] for per in out] == [["q1|seed=10", "q1|seed=11"], ["<think>|seed=13"]]
    assert all(c.finish_reason == "stop" and c.num_tokens == 5 for per in out for c in per)
    assert sum(counted) == 15
    (llm,) = fake_vllm.created  # loaded once, reused
    assert llm.kwargs == {"model": "Qwen/Qwen2.5-Math-1.5B", "tensor_parallel_size": 2, "max_model_len": 4096}
    assert [c["continue_final_message"] for c in llm.calls] == [False, True]

    truncated = backend.generate(requests[:1], GenerationConfig(temperature=0.0, max_tokens=3))
    assert [(c.finish_reason, c.num_tokens) for c in truncated[0]] == [("length", 3), ("length", 3)]
    assert len(llm.calls[-1]["messages"]) == 1  # greedy: one row for both samples
    assert len(fake_vllm.created) == 1


def test_missing_vllm_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    backend = VLLMBackend("Qwen/Qwen2.5-Math-1.5B")
    with pytest.raises(ConfigError, match=r"pip install 'r1h\[vllm\]'"):
        backend.generate([GenerationRequest("a", _chat("q"))], GenerationConfig())
