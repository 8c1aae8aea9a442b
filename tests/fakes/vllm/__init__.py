"""A fake ``vllm`` package for tests and ``perf/stream_sim.py``: exactly the API r1h's vllm backend calls, with a
continuous-batching scheduler (``sim.ClockedEngine``) behind ``LLMEngine.step``.

Put ``tests/fakes`` first on ``sys.path`` (or ``PYTHONPATH`` for data-parallel worker processes). Knobs, read from the
environment when an ``LLM`` is built: ``FAKE_VLLM_SLOTS`` (default 8), ``FAKE_VLLM_STEP_S`` (0.001),
(0: a virtual clock, one step per ``step()`` call, for deterministic tests), ``FAKE_VLLM_LENGTHS`` (a JSON file holding a list of output lengths; a request's length is drawn from it by its prompt
and seed; without it a prompt containing ``len=K`` generates K tokens, else 5), ``FAKE_VLLM_CRASH_DEVICE`` with
``FAKE_VLLM_CRASH_AFTER`` (the engine whose ``CUDA_VISIBLE_DEVICES`` equals it exits the process with code 3 after
that many finished requests, and once the file ``FAKE_VLLM_CRASH_FILE`` exists where that is set),
``FAKE_VLLM_GENCONFIG`` (JSON: the checkpoint's generation-config sampling defaults), ``FAKE_VLLM_STATS`` (a file
the process writes at exit: every engine's output lengths in arrival order and its busy span, for the ideal time of
``perf/stream_sim.py --e2e`` when ``r1h eval`` runs in a subprocess).

Upstream shapes followed (vllm-project/vllm): ``vllm/entrypoints/llm.py`` (``LLM.llm_engine``, ``get_tokenizer``,
``get_default_sampling_params``, and its refusal of ``data_parallel_size > 1``), ``vllm/v1/engine/llm_engine.py``
(``add_request(request_id, prompt, params)``, ``step() -> list[RequestOutput]``, ``has_unfinished_requests``,
``abort_request``), ``vllm/outputs.py`` (``RequestOutput.request_id/outputs/finished``, ``CompletionOutput.index/
text/token_ids/finish_reason``), ``vllm/sampling_params.py`` (``SamplingParams`` fields, ``RequestOutputKind``).
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import re
import time
from typing import Any

from .sampling_params import RequestOutputKind as RequestOutputKind
from .sampling_params import SamplingParams
from .sim import ClockedEngine, output_length

__version__ = "0.0.0+fake"
created: list[LLM] = []  # every LLM built in this process


@dataclasses.dataclass
class EngineArgs:
    """The EngineArgs fields r1h validates backend args against (a subset of vLLM's; vllm/engine/arg_utils.py)."""

    model: str = ""
    tokenizer: str | None = None
    trust_remote_code: bool = False
    dtype: str = "auto"
    seed: int | None = None
    max_model_len: int | None = None
    tensor_parallel_size: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    gpu_memory_utilization: float = 0.9
    max_num_seqs: int | None = None
    max_num_batched_tokens: int | None = None
    enable_prefix_caching: bool | None = None
    enforce_eager: bool = False
    quantization: str | None = None
    limit_mm_per_prompt: dict | None = None
    generation_config: str = "auto"
    kv_cache_dtype: str = "auto"


@dataclasses.dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    cumulative_logprob: float | None = None
    logprobs: Any = None
    finish_reason: str | None = None


@dataclasses.dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    outputs: list[CompletionOutput]
    finished: bool


class FakeTokenizer:
    """``apply_chat_template`` the way HF tokenizers render a ChatML template (enough to see what r1h passes)."""

    def apply_chat_template(self, messages, tokenize=True, add_generation_prompt=False, continue_final_message=False,
                            **_):
        assert tokenize is False
        assert not (add_generation_prompt and continue_final_message)
        parts = []
        for i, m in enumerate(messages):
            content = m["content"]
            if isinstance(content, list):
                content = "".join("<image>" if p.get("type") == "image" else p.get("text", "") for p in content)
            last = i == len(messages) - 1
            end = "" if (last and continue_final_message) else "<|im_end|>\n"
            parts.append(f"<|im_start|>{m['role']}\n{content}{end}")
        if add_generation_prompt:
            parts.append("<|im_start|>assistant\n")
        return "".join(parts)


class LLMEngine:
    def __init__(self, slots: int, step_s: float, lengths: list[int] | None, max_num_seqs: int):
        self.virtual = step_s <= 0  # each step() call is one step, whatever the wall time (deterministic tests)
        self.vtime = 0.0
        self.engine = ClockedEngine(slots, 1.0, clock=lambda: self.vtime) if self.virtual else ClockedEngine(
            slots, step_s)
        self.lengths = lengths
        self.requests: dict[str, tuple[Any, SamplingParams, int]] = {}
        self.added: list[tuple[str, float]] = []  # (request id, time) in add order
        self.finished_order: list[str] = []
        self.lengths_seen: dict[str, int] = {}  # request id -> output length (perf/stream_sim.py's ideal time)
        self.vllm_config = type("VllmConfig", (), {})()
        self.vllm_config.scheduler_config = type("SchedulerConfig", (), {"max_num_seqs": max_num_seqs})()
        self.crash_after = None
        crash = os.environ.get("FAKE_VLLM_CRASH_DEVICE")
        if crash is not None and os.environ.get("CUDA_VISIBLE_DEVICES") == crash:
            self.crash_after = int(os.environ.get("FAKE_VLLM_CRASH_AFTER", "0"))

    def _length(self, prompt: Any, params: SamplingParams) -> int:
        text = prompt["prompt"] if isinstance(prompt, dict) else str(prompt)
        if self.lengths:
            return output_length(f"{text}|{params.seed}", self.lengths)
        found = re.findall(r"len=(\d+)", text)
        return int(found[-1]) if found else 5

    def add_request(self, request_id: str, prompt: Any, params: SamplingParams, arrival_time=None, **_) -> None:
        if not isinstance(request_id, str):
            raise TypeError("request_id must be a str")
        if request_id in self.requests:
            raise ValueError(f"request {request_id} already exists")
        if not isinstance(params, SamplingParams):
            raise TypeError("params must be SamplingParams")
        if isinstance(prompt, dict) and "multi_modal_data" in prompt:
            images = prompt["multi_modal_data"].get("image", [])
            assert prompt["prompt"].count("<image>") == len(images), "one image placeholder per image"
        length = min(self._length(prompt, params), params.max_tokens or 16)
        self.requests[request_id] = (prompt, params, length)
        self.added.append((request_id, time.monotonic()))
        self.lengths_seen[request_id] = length
        self.engine.add(request_id, length)

    def abort_request(self, request_ids) -> None:
        for rid in [request_ids] if isinstance(request_ids, str) else list(request_ids):
            self.requests.pop(rid, None)
            self.engine.abort(rid)

    def has_unfinished_requests(self) -> bool:
        return bool(self.requests)

    def get_num_unfinished_requests(self) -> int:
        return len(self.requests)

    def step(self) -> list[RequestOutput]:
        """Block until at least one engine step has run; return the requests that finished."""
        if not self.engine.busy:
            return []
        if self.virtual:
            self.vtime = self.engine.next_tick()
        while not self.virtual:
            now = time.monotonic()
            if now >= self.engine.next_tick():
                break
            time.sleep(self.engine.next_tick() - now)
        outputs = []
        self.last_finish = time.monotonic()
        for rid, tokens in self.engine.advance(self.vtime if self.virtual else None):
            prompt, params, _ = self.requests.pop(rid)
            text = prompt["prompt"] if isinstance(prompt, dict) else str(prompt)
            tail = text.rstrip("\n").rsplit("\n", 1)[-1]
            reason = "length" if tokens >= (params.max_tokens or 16) else "stop"
            completion = CompletionOutput(0, f"{tail}|seed={params.seed}|n={tokens}|dev={os.environ.get('CUDA_VISIBLE_DEVICES')}", list(range(tokens)),
                                          finish_reason=reason)
            outputs.append(RequestOutput(rid, text, [completion], True))
            self.finished_order.append(rid)
            if self.crash_after is not None and len(self.finished_order) > self.crash_after:
                flag = os.environ.get("FAKE_VLLM_CRASH_FILE")
                if not flag or os.path.exists(flag):
                    os._exit(3)
        return outputs


class LLM:
    def __init__(self, model: str, **kwargs: Any):
        names = {f.name for f in dataclasses.fields(EngineArgs)}
        unknown = set(kwargs) - names
        if unknown:
            raise TypeError(f"EngineArgs.__init__() got an unexpected keyword argument {sorted(unknown)[0]!r}")
        if int(kwargs.get("data_parallel_size", 1)) > 1:  # as vllm/entrypoints/llm.py does
            raise ValueError("LLM(data_parallel_size=N>1) is not supported for single-process usage")
        self.model = model
        self.kwargs = kwargs
        slots = int(os.environ.get("FAKE_VLLM_SLOTS", "8"))
        step_s = float(os.environ.get("FAKE_VLLM_STEP_S", "0.001"))
        lengths = None
        if os.environ.get("FAKE_VLLM_LENGTHS"):
            with open(os.environ["FAKE_VLLM_LENGTHS"]) as fh:
                lengths = [int(x) for x in json.load(fh)]
        self.llm_engine = LLMEngine(slots, step_s, lengths, int(kwargs.get("max_num_seqs") or slots))
        self.default_sampling_params = None
        created.append(self)
        if os.environ.get("FAKE_VLLM_STATS") and len(created) == 1:
            atexit.register(_write_stats, os.environ["FAKE_VLLM_STATS"])

    def get_tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    def get_default_sampling_params(self) -> SamplingParams:
        overrides = json.loads(os.environ.get("FAKE_VLLM_GENCONFIG", "{}"))
        return SamplingParams(**overrides)


def _write_stats(path: str) -> None:
    engines = [llm.llm_engine for llm in created]
    lengths = [e.lengths_seen[rid] for e in engines for rid, _ in e.added]
    starts = [e.added[0][1] for e in engines if e.added]
    ends = [getattr(e, "last_finish", 0.0) for e in engines if e.added]
    span = max(ends) - min(starts) if starts else 0.0
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"lengths": lengths, "span_s": span, "max_running": max(
            (e.engine.max_running for e in engines), default=0)}, fh)
