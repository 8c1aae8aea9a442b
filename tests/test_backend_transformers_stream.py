"""The transformers backend as a stream: static chunks pulled lazily, continuous batching with its fallback, the
sampling policy (neutral vs the checkpoint's generation_config.json) and the thread default."""

from __future__ import annotations

import json
import shutil

import pytest

from r1h.harness.core.errors import ConfigError
from r1h.harness.core.sampling import sampling_params
from r1h.harness.core.types import GenerationConfig, GenerationRequest
from r1h.plugins.backends.threads import default_threads
from r1h.plugins.backends.transformers import TransformersBackend
from r1h.plugins.backends.transformers_sampling import continuous_unsupported, row_sampler

NEUTRAL = {"temperature": 0.6, "top_p": 0.95, "top_k": None, "min_p": 0.0, "repetition_penalty": 1.0}

# ----- pure pieces -----


def test_neutral_sampling_params_are_the_common_ones():
    assert sampling_params(GenerationConfig()) == NEUTRAL
    # the checkpoint's values are ignored under the neutral policy ...
    checkpoint = {"top_k": 20, "min_p": 0.05, "repetition_penalty": 1.3}
    assert sampling_params(GenerationConfig(), checkpoint) == NEUTRAL
    # ... and used under "model", with temperature and top-p still as given
    model = sampling_params(GenerationConfig(policy="model", temperature=0.7, top_p=0.9), checkpoint)
    assert model == {"temperature": 0.7, "top_p": 0.9, "top_k": 20, "min_p": 0.05, "repetition_penalty": 1.3}
    assert sampling_params(GenerationConfig(top_k=-1))["top_k"] is None  # vLLM's "disabled" spelling
    greedy = sampling_params(GenerationConfig(temperature=0.0))
    assert (greedy["temperature"], greedy["top_p"]) == (0.0, 1.0)
    left = sampling_params(GenerationConfig(policy="model"))  # no checkpoint at hand: left to it
    assert (left["top_k"], left["min_p"], left["repetition_penalty"]) == (None, None, None)
    with pytest.raises(ConfigError, match="policy 'bogus'"):
        sampling_params(GenerationConfig(policy="bogus"))


def test_thread_default_leaves_a_core_and_never_exceeds_torch():
    assert default_threads(cpus=1) == 1
    assert default_threads(cpus=2, torch_default=2) == 1  # the shared 2-core box: 1 thread (perf/main_job.py)
    assert default_threads(cpus=8, torch_default=8) == 7
    assert default_threads(cpus=128, torch_default=64) == 64


def test_row_sampler_honours_top_k_and_min_p():
    import torch

    scores = torch.randn(4, 300, generator=torch.Generator().manual_seed(1))
    best = scores.argmax(dim=1).tolist()
    allowed = [set(scores[i].topk(3).indices.tolist()) for i in range(4)]

    def draws(params, steps=30):
        gens = [torch.Generator().manual_seed(s) for s in range(4)]
        sampler = row_sampler(gens, params)
        return [sampler(None, scores).argmax(dim=1).tolist() for _ in range(steps)]

    base = {"temperature": 1.0, "top_p": 1.0, "top_k": None, "min_p": 0.0, "repetition_penalty": 1.0}
    assert all(d == best for d in draws({**base, "top_k": 1}))
    assert all(d == best for d in draws({**base, "min_p": 0.999}))
    k3 = draws({**base, "top_k": 3})
    assert all(tok in allowed[i] for d in k3 for i, tok in enumerate(d))
    assert len({tuple(d) for d in k3}) > 1  # still sampling
    assert any(tok not in allowed[i] for d in draws(base) for i, tok in enumerate(d))  # unrestricted draws are wider


def test_continuous_batching_support_check():
    class RepetitionPenaltyLogitsProcessor:
        pass

    class TemperatureLogitsWarper:
        pass

    assert continuous_unsupported([TemperatureLogitsWarper()]) == []
    assert continuous_unsupported([TemperatureLogitsWarper(), RepetitionPenaltyLogitsProcessor()]) == [
        "RepetitionPenaltyLogitsProcessor"]


def test_batching_arg_checked(smollm2):
    with pytest.raises(ConfigError, match="batching=fast"):
        TransformersBackend(batching="fast")
    with pytest.raises(ConfigError, match="inflight=0"):
        TransformersBackend(inflight="0")
    assert TransformersBackend(batching="Static").batching == "static"


# ----- a tiny local model -----


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from r1h.trainers.tiny import build_text_model

    return build_text_model(tmp_path_factory.mktemp("tiny") / "qwen2", seed=0)


@pytest.fixture(scope="module")
def tiny_rp(tiny, tmp_path_factory):
    """The same weights with a generation_config.json that sets repetition_penalty=1.3 and top_k=5."""
    folder = tmp_path_factory.mktemp("tiny-rp") / "qwen2"
    shutil.copytree(tiny, folder)
    path = folder / "generation_config.json"
    config = json.loads(path.read_text()) if path.exists() else {}
    config.update(repetition_penalty=1.3, top_k=5)
    path.write_text(json.dumps(config))
    return folder


def _chat(text):
    return [{"role": "user", "content": text}]


def _requests(count=5, samples=1):
    return [GenerationRequest(f"q{i}", _chat(f"Using the numbers [1, 2, {i}], create an equation"),
                              list(range(samples)), [100 * i + s for s in range(samples)]) for i in range(count)]


class Pulls:
    """An iterator over requests that records how many were pulled when each result came out."""

    def __init__(self, requests):
        self.requests, self.pulled = requests, 0

    def __iter__(self):
        for request in self.requests:
            self.pulled += 1
            yield request


def _collect(backend, requests, config):
    source = Pulls(requests)
    seen = []
    for item in backend.stream(iter(source), config):
        seen.append((item.request.id, item.sample_index, item.completion, source.pulled))
    return seen


@pytest.fixture(scope="module")
def static(tiny):
    backend = TransformersBackend(str(tiny), batch_size="2", device="cpu", batching="static", threads="1")
    backend.load()
    yield backend
    backend.close()


@pytest.mark.slow
def test_static_stream_yields_per_chunk_pulls_lazily_and_reproduces_seeds(static):
    config = GenerationConfig(temperature=0.8, max_tokens=6)
    seen = _collect(static, _requests(5), config)
    assert sorted((i, s) for i, s, _, _ in seen) == [(f"q{i}", 0) for i in range(5)]
    # batch_size 2: the first chunk comes out after 2 pulls, not after all 5
    assert [p for *_, p in seen] == [2, 2, 4, 4, 5]
    for *_, completion, _ in seen:
        assert completion.finish_reason in ("stop", "length") and 0 < completion.num_tokens <= 6
    # per-sample seeds: the same samples from generate() (other chunks) and one alone (a resumed run)
    by_key = {(i, s): c.text for i, s, c, _ in seen}
    batch = static.generate(_requests(5), config)
    assert {(f"q{i}", 0): per[0].text for i, per in enumerate(batch)} == by_key
    alone = static.generate([_requests(5)[3]], config)[0][0]
    assert alone.text == by_key[("q3", 0)]
    info = static.describe()
    assert info["per_sample_seeds"] is True and info["batching_used"] == "static"
    assert info["sampling"] == {**NEUTRAL, "temperature": 0.8} and info["threads"] == 1


@pytest.mark.slow
def test_continuous_stream_valid_completions_and_lazy(tiny):
    backend = TransformersBackend(str(tiny), device="cpu", batching="continuous", inflight="2", threads="1")
    try:
        config = GenerationConfig(temperature=0.8, max_tokens=8)
        seen = _collect(backend, _requests(4, samples=2), config)
        keys = sorted((i, s) for i, s, _, _ in seen)
        assert keys == [(f"q{i}", s) for i in range(4) for s in range(2)]  # every sample exactly once
        for *_, completion, _ in seen:
            assert completion.finish_reason in ("stop", "length") and 0 < completion.num_tokens <= 8
            assert completion.finish_reason == "stop" or completion.num_tokens == 8
            assert isinstance(completion.text, str)
        assert seen[0][3] < 4  # two rows in flight: the first result came before every request was pulled
        info = backend.describe()
        assert info["batching_used"] == "continuous" and info["per_sample_seeds"] is True
        # per-sample seeds: the same texts with another in-flight window, and the same as the static path's
        texts = {(i, s): c.text for i, s, c, _ in seen}
        backend.inflight = 5
        assert {(i, s): c.text for i, s, c, _ in _collect(backend, _requests(4, samples=2), config)} == texts
        backend.batching = "static"
        assert {(i, s): c.text for i, s, c, _ in _collect(backend, _requests(4, samples=2), config)} == texts
        assert len(set(texts.values())) > 1
        # greedy: transformers' own argmax, the same text as the static path
        greedy = GenerationConfig(temperature=0.0, max_tokens=6)
        st = {(i, s): c.text for i, s, c, _ in _collect(backend, _requests(3), greedy)}
        backend.batching = "continuous"
        cb = {(i, s): c.text for i, s, c, _ in _collect(backend, _requests(3), greedy)}
        assert cb == st
        # generate() goes through the same stream
        out = backend.generate(_requests(2, samples=2), config)
        assert [len(per) for per in out] == [2, 2]
    finally:
        backend.close()


@pytest.mark.slow
def test_continuous_falls_back_to_static_where_unsupported(tiny, tiny_rp):
    backend = TransformersBackend(str(tiny), device="cpu", batching="continuous", threads="1")
    try:
        with pytest.warns(UserWarning, match="stop strings"):
            out = backend.generate(_requests(1), GenerationConfig(temperature=0.0, max_tokens=4, stop=["x"]))
        assert len(out[0]) == 1
        assert backend.describe()["fallback"] == "stop strings"
        assert backend.describe()["per_sample_seeds"] is True
    finally:
        backend.close()
    backend = TransformersBackend(str(tiny_rp), device="cpu", batching="continuous", threads="1")
    try:
        config = GenerationConfig(temperature=0.0, max_tokens=4, policy="model")
        backend.load()
        assert "RepetitionPenaltyLogitsProcessor" in backend._continuous_unsupported(config)
        with pytest.warns(UserWarning, match="RepetitionPenalty"):
            list(backend.stream(iter(_requests(1)), config))
        assert backend.describe()["batching_used"] == "static"
        # the neutral policy sends repetition_penalty 1.0: continuous batching supports it
        list(backend.stream(iter(_requests(1)), GenerationConfig(temperature=0.0, max_tokens=4)))
        assert backend.describe()["batching_used"] == "continuous"
    finally:
        backend.close()


@pytest.mark.slow
def test_neutral_policy_ignores_the_checkpoints_generation_config(tiny, tiny_rp):
    def texts(folder, policy):
        backend = TransformersBackend(str(folder), device="cpu", batching="static", threads="1")
        try:
            config = GenerationConfig(temperature=1.0, top_p=1.0, max_tokens=12, policy=policy)
            out = [per[0].text for per in backend.generate(_requests(4), config)]
            return out, backend.describe()["sampling"]
        finally:
            backend.close()

    plain, _ = texts(tiny, "neutral")
    neutral, sent = texts(tiny_rp, "neutral")
    model, sent_model = texts(tiny_rp, "model")
    assert neutral == plain  # repetition_penalty=1.3 in generation_config.json changed nothing
    assert sent["repetition_penalty"] == 1.0 and sent["top_k"] is None
    assert sent_model["repetition_penalty"] == 1.3 and sent_model["top_k"] == 5
    assert model != neutral  # ... and "model" applies it


def test_apply_threads_sets_the_default_and_records_it(monkeypatch):
    import torch

    from r1h.plugins.backends import threads

    before = torch.get_num_threads()
    monkeypatch.setattr(threads, "available_cpus", lambda: 2)
    try:
        info = threads.apply_threads(None)
        assert info["threads"] == torch.get_num_threads() == 1
        assert "2 CPUs available - 1" in info["threads_source"]
        assert threads.apply_threads(3)["threads"] == 3
    finally:
        torch.set_num_threads(before)
