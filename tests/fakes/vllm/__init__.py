"""A fake ``vllm`` package for tests and ``perf/stream_sim.py``: exactly the API r1h's vllm backend calls
(``AsyncLLMEngine`` with its renderer), with a continuous-batching scheduler (``sim.ClockedEngine``) per data-parallel
engine, stepped in real time by a core thread as vLLM's engine cores run beside the client.

Put ``tests/fakes`` first on ``sys.path`` (or ``PYTHONPATH`` for ``r1h eval`` in a subprocess). Knobs, read from the
environment when an engine is built: ``FAKE_VLLM_SLOTS`` (default 8), ``FAKE_VLLM_STEP_S`` (0.001; at least 0.0005),
``FAKE_VLLM_LENGTHS`` (a JSON file holding a list of output lengths; a request's length is drawn from it by its prompt
and seed; without it a prompt containing ``len=K`` generates K tokens, else 5), ``FAKE_VLLM_CRASH_RANK`` with
``FAKE_VLLM_CRASH_AFTER`` (that data-parallel rank dies after so many finished requests, once the file
``FAKE_VLLM_CRASH_FILE`` exists where that is set), ``FAKE_VLLM_GENCONFIG`` (JSON: the checkpoint's generation-config
sampling defaults), ``FAKE_VLLM_STATS`` (a file the process writes at exit: every engine's output lengths in arrival
order and its busy span, for the ideal time of ``perf/stream_sim.py --e2e`` when ``r1h eval`` runs in a subprocess).

Upstream shapes followed (vllm-project/vllm 0.32): ``vllm/v1/engine/async_llm.py`` (``AsyncLLM.from_engine_args``,
``generate(prompt, params, request_id)`` as an async generator that aborts on cancellation, ``renderer``,
``model_config.get_diff_sampling_param``, ``errored``/``dead_error``, ``shutdown``), ``vllm/renderers``
(``ChatParams``, ``render_chat_async``), ``vllm/outputs.py`` (``RequestOutput.request_id/outputs/finished``,
``CompletionOutput.index/text/token_ids/finish_reason``), ``vllm/sampling_params.py`` (``SamplingParams`` fields,
``RequestOutputKind``, ``from_optional``).
"""

from __future__ import annotations

import asyncio
import atexit
import dataclasses
import json
import os
import re
import threading
import time
from typing import Any

from .sampling_params import RequestOutputKind as RequestOutputKind
from .sampling_params import SamplingParams
from .sim import ClockedEngine, output_length

__version__ = "0.0.0+fake"
created: list[AsyncLLMEngine] = []  # every engine built in this process


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
    def __init__(self, slots: int, step_s: float, lengths: list[int] | None, max_num_seqs: int, rank: int = 0):
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
        self.rank = rank
        self.crashed = False
        self.crash_after = None
        crash = os.environ.get("FAKE_VLLM_CRASH_RANK")
        if crash is not None and int(crash) == rank:
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

    def step(self, block: bool = True) -> list[RequestOutput]:
        """Run the steps due (at least one when ``block``); return the requests that finished."""
        if not self.engine.busy or self.crashed:
            return []
        if self.virtual:
            self.vtime = self.engine.next_tick()
        while block and not self.virtual:
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
            completion = CompletionOutput(0, f"{tail}|seed={params.seed}|n={tokens}|dp={self.rank}", list(range(tokens)),
                                          finish_reason=reason)
            outputs.append(RequestOutput(rid, text, [completion], True))
            self.finished_order.append(rid)
            if self.crash_after is not None and len(self.finished_order) > self.crash_after:
                flag = os.environ.get("FAKE_VLLM_CRASH_FILE")
                if not flag or os.path.exists(flag):
                    self.crashed = True
                    return []
        return outputs


class AsyncEngineArgs(EngineArgs):
    """vllm/engine/arg_utils.py: the async engine's arguments (the same fields here)."""


class ModelConfig:
    def get_diff_sampling_param(self) -> dict:
        """The checkpoint's generation-config sampling defaults (``FAKE_VLLM_GENCONFIG``)."""
        return json.loads(os.environ.get("FAKE_VLLM_GENCONFIG", "{}"))


class EngineDeadError(Exception):
    """vllm/v1/engine/exceptions.py."""

    def __init__(self, *args, **kwargs):
        super().__init__("EngineCore encountered an issue. See stack trace (above) for the root cause.")


class AsyncLLMEngine:
    """vllm/v1/engine/async_llm.py's ``AsyncLLM``: ``data_parallel_size`` clocked engines behind one client, stepped
    by a core thread (vLLM's engine cores run in their own processes), each request an async generator.

    ``FAKE_VLLM_CRASH_RANK`` with ``FAKE_VLLM_CRASH_AFTER``: that rank dies after so many finished requests (once the
    file ``FAKE_VLLM_CRASH_FILE`` exists, where that is set); every request then raises ``EngineDeadError``."""

    def __init__(self, args: AsyncEngineArgs):
        self.args = args
        self.dp = max(1, int(args.data_parallel_size or 1))
        slots = int(os.environ.get("FAKE_VLLM_SLOTS", "8"))
        step_s = float(os.environ.get("FAKE_VLLM_STEP_S", "0.001"))
        lengths = None
        if os.environ.get("FAKE_VLLM_LENGTHS"):
            with open(os.environ["FAKE_VLLM_LENGTHS"]) as fh:
                lengths = [int(x) for x in json.load(fh)]
        self.step_s = max(step_s, 0.0005)
        seqs = int(args.max_num_seqs or slots)
        self.engines = [LLMEngine(slots, step_s, lengths, seqs, rank) for rank in range(self.dp)]
        self.vllm_config = self.engines[0].vllm_config
        self.model_config = ModelConfig()
        self.renderer = Renderer()
        self.errored = False
        self.dead_error = None
        self._waiters: dict[str, tuple[Any, Any]] = {}  # request id -> (loop, future)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._loop = asyncio.get_running_loop()
        self._core = threading.Thread(target=self._run_core, name="fake-engine-core", daemon=True)
        self._core.start()
        created.append(self)
        if os.environ.get("FAKE_VLLM_STATS") and len(created) == 1:
            atexit.register(_write_stats, os.environ["FAKE_VLLM_STATS"])

    @classmethod
    def from_engine_args(cls, args: AsyncEngineArgs) -> AsyncLLMEngine:
        names = {f.name for f in dataclasses.fields(EngineArgs)}
        unknown = set(vars(args)) - names
        if unknown:
            raise TypeError(f"unexpected keyword argument {sorted(unknown)[0]!r}")
        return cls(args)

    def _run_core(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                busy = [e for e in self.engines if e.engine.busy]
            if not busy:
                time.sleep(self.step_s / 2)
                continue
            time.sleep(self.step_s)
            for engine in busy:
                with self._lock:
                    outputs = engine.step(block=False)
                for output in outputs:
                    self._deliver(output.request_id, output)
                if engine.crashed:
                    self._die()
                    return

    def _deliver(self, request_id: str, result: Any) -> None:
        waiter = self._waiters.pop(request_id, None)
        if waiter is not None:
            loop, future = waiter
            loop.call_soon_threadsafe(lambda: future.done() or future.set_result(result))

    def _die(self) -> None:
        self.errored = True
        self.dead_error = EngineDeadError()
        for request_id in list(self._waiters):
            self._deliver(request_id, self.dead_error)

    async def generate(self, prompt: Any, sampling_params: SamplingParams, request_id: str):
        if self.errored:
            raise EngineDeadError()
        if not isinstance(prompt, dict) or prompt.get("type") != "rendered":
            raise TypeError("pass the output of Renderer.render_chat() (raw prompts are deprecated)")
        future = asyncio.get_running_loop().create_future()
        with self._lock:
            engine = min(self.engines, key=lambda e: len(e.requests))
            self._waiters[request_id] = (asyncio.get_running_loop(), future)
            engine.add_request(request_id, prompt, sampling_params)
        try:
            result = await future
        except asyncio.CancelledError:
            with self._lock:
                engine.abort_request([request_id])
            self._waiters.pop(request_id, None)
            raise
        if isinstance(result, BaseException):
            raise result
        yield result

    def shutdown(self) -> None:
        self._stop.set()


class Renderer:
    """vllm/renderers/base.py: ``render_chat_async`` renders with the chat template (the fake ChatML one)."""

    tokenizer = FakeTokenizer()

    class default_chat_tok_params:  # noqa: N801 - an attribute of vLLM's renderer
        @staticmethod
        def with_kwargs(**kwargs):
            return dict(kwargs)

    async def render_chat_async(self, conversations, chat_params, tok_params=None):
        flags = dict(chat_params.chat_template_kwargs)
        prompts = []
        for conversation in conversations:
            images = [p["image_pil"] for m in conversation if isinstance(m.get("content"), list)
                      for p in m["content"] if p.get("type") == "image_pil"]
            messages = [{**m, "content": [{"type": "image"} if p.get("type") == "image_pil" else p
                                          for p in m["content"]]} if isinstance(m.get("content"), list) else m
                        for m in conversation]
            text = self.tokenizer.apply_chat_template(messages, tokenize=False, **flags)
            prompt = {"type": "rendered", "prompt": text, "tok_params": tok_params}
            if images:
                prompt["multi_modal_data"] = {"image": images}
            prompts.append(prompt)
        return conversations, prompts


def _write_stats(path: str) -> None:
    engines = [e for llm in created for e in llm.engines]
    lengths = [e.lengths_seen[rid] for e in engines for rid, _ in e.added]
    starts = [e.added[0][1] for e in engines if e.added]
    ends = [getattr(e, "last_finish", 0.0) for e in engines if e.added]
    span = max(ends) - min(starts) if starts else 0.0
    with open(path, "w", encoding="utf-8") as fh:
        json.dump({"lengths": lengths, "span_s": span, "max_running": max(
            (e.engine.max_running for e in engines), default=0)}, fh)
