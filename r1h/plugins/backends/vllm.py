"""Offline vLLM (``vllm.LLM``), the fast backend for GPUs. Optional extra: ``pip install 'r1h[vllm]'``.

Written against vLLM's documented API: ``LLM(model=..., **engine_args)`` and
``LLM.chat(conversations, sampling_params=[...], add_generation_prompt=..., continue_final_message=...)``.

- Per-sample seeds: one conversation entry and one ``SamplingParams(n=1, seed=s)`` per wanted sample, so every sample
  reproduces on its own whatever else is in the batch (a resumed run regenerates the same text); vLLM's prefix caching
  shares the prompt between a problem's samples. Greedy decoding (temperature 0) generates one row per problem.
- Prefill: requests with ``continue_final_message`` go in their own ``chat`` call with ``add_generation_prompt=False,
  continue_final_message=True``.
- Images (superclevr_counting): OpenAI-style ``image_url`` parts with base64 data URLs, which ``LLM.chat`` parses
  into multimodal inputs.

Backend args, passed to ``vllm.LLM``: ``tensor_parallel_size``, ``data_parallel_size``, ``gpu_memory_utilization``,
``max_model_len``, ``dtype``, ``seed``, ``trust_remote_code``, ``enforce_eager``, ``max_num_seqs``,
``max_num_batched_tokens``, ``enable_prefix_caching``, ``quantization``, ``tokenizer``, ``swap_space``,
``limit_mm_per_prompt`` (JSON, e.g. ``{"image": 1}``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from r1h.harness.backend import Backend
from r1h.harness.errors import ConfigError
from r1h.harness.hookspecs import hookimpl
from r1h.harness.types import Completion, GenerationConfig, GenerationRequest

from .models import resolve_model
from .openai import to_openai_messages
from .transformers import parse_bool, parse_int

INSTALL_HINT = "pip install 'r1h[vllm]'"


@hookimpl
def r1h_register_backends(register):
    register(
        "vllm",
        "r1h.plugins.backends.vllm:VLLMBackend",
        version="1",
        description="offline vLLM (GPU), one SamplingParams per sample seed; optional extra r1h[vllm]",
    )


def _float(key: str, value: Any) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise ConfigError(f"--backend-arg {key}={value}: expected a number") from None


def _json_dict(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    try:
        parsed = json.loads(str(value))
    except json.JSONDecodeError:
        parsed = None
    if not isinstance(parsed, dict):
        raise ConfigError(f"--backend-arg {key}={value}: expected a JSON object, e.g. {key}='{{\"image\": 1}}'")
    return parsed


ENGINE_ARGS: dict[str, Callable[[str, Any], Any]] = {
    "tensor_parallel_size": parse_int,
    "data_parallel_size": parse_int,
    "pipeline_parallel_size": parse_int,
    "gpu_memory_utilization": _float,
    "max_model_len": parse_int,
    "dtype": lambda _k, v: str(v),
    "seed": lambda k, v: parse_int(k, v, minimum=0),
    "trust_remote_code": parse_bool,
    "enforce_eager": parse_bool,
    "max_num_seqs": parse_int,
    "max_num_batched_tokens": parse_int,
    "enable_prefix_caching": parse_bool,
    "quantization": lambda _k, v: str(v),
    "tokenizer": lambda _k, v: str(v),
    "swap_space": _float,
    "limit_mm_per_prompt": _json_dict,
}


def engine_kwargs(model: str | None, backend_args: dict[str, Any]) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments from ``--model`` and the (string) backend args, converted to their types."""
    unknown = sorted(set(backend_args) - set(ENGINE_ARGS))
    if unknown:
        raise ConfigError(f"backend 'vllm' does not know --backend-arg {unknown[0]}; known: {', '.join(ENGINE_ARGS)}")
    resolved = resolve_model(model)
    kwargs: dict[str, Any] = {}
    if resolved.gguf_file:  # vLLM loads GGUF from the file path; the tokenizer should be the base model's
        kwargs["model"] = f"{resolved.path_or_id.rstrip('/')}/{resolved.gguf_file}"
    else:
        kwargs["model"] = resolved.path_or_id
    for key, value in backend_args.items():
        if value is not None:
            kwargs[key] = ENGINE_ARGS[key](key, value)
    if "gpu_memory_utilization" in kwargs and not 0 < kwargs["gpu_memory_utilization"] <= 1:
        raise ConfigError(f"--backend-arg gpu_memory_utilization={kwargs['gpu_memory_utilization']}: expected (0, 1]")
    return kwargs


def sampling_kwargs(config: GenerationConfig, seed: int | None) -> dict[str, Any]:
    """``SamplingParams`` keyword arguments for one sample."""
    kwargs: dict[str, Any] = {"n": 1, "max_tokens": int(config.max_tokens)}
    if config.greedy:
        kwargs.update(temperature=0.0, top_p=1.0)
    else:
        kwargs.update(temperature=float(config.temperature), top_p=float(config.top_p))
        if seed is not None:
            kwargs["seed"] = int(seed)
    if config.stop:
        kwargs["stop"] = list(config.stop)
    return kwargs


@dataclass
class ChatCall:
    """One ``LLM.chat`` call: conversations with one sampling-params dict each, and where each output goes."""

    continue_final_message: bool
    conversations: list[list[dict[str, Any]]] = field(default_factory=list)
    params: list[dict[str, Any]] = field(default_factory=list)
    targets: list[tuple[int, list[int]]] = field(default_factory=list)  # (request index, wanted-sample slots)

    @property
    def chat_flags(self) -> dict[str, bool]:
        cont = self.continue_final_message
        return {"add_generation_prompt": not cont, "continue_final_message": cont}


def plan_calls(requests: list[GenerationRequest], config: GenerationConfig) -> list[ChatCall]:
    """Turn requests into ``LLM.chat`` calls (one per prefill mode): one conversation per wanted sample."""
    calls: dict[bool, ChatCall] = {}
    for i, request in enumerate(requests):
        wanted = request.wanted()
        if not wanted:
            continue
        cont = bool(request.continue_final_message)
        call = calls.setdefault(cont, ChatCall(cont))
        messages = to_openai_messages(request.messages, request.images)
        if config.greedy:
            call.conversations.append(messages)
            call.params.append(sampling_kwargs(config, None))
            call.targets.append((i, list(range(wanted))))
            continue
        for slot, seed in enumerate(request.seeds):
            call.conversations.append(messages)
            call.params.append(sampling_kwargs(config, int(seed)))
            call.targets.append((i, [slot]))
    return [calls[k] for k in sorted(calls)]


def to_completion(output: Any) -> Completion:
    """A Completion from a vLLM ``RequestOutput`` (its first ``CompletionOutput``)."""
    first = output.outputs[0]
    reason = "length" if getattr(first, "finish_reason", None) == "length" else "stop"
    token_ids = getattr(first, "token_ids", None)
    return Completion(text=first.text or "", finish_reason=reason, num_tokens=len(token_ids or ()))


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError(f"the vllm backend needs vLLM, which is not installed ({exc}); install it with: "
                          f"{INSTALL_HINT}") from None
    return vllm


class VLLMBackend(Backend):
    """Offline vLLM with one SamplingParams per sample seed."""

    name = "vllm"
    description = "offline vLLM (GPU), one SamplingParams per sample seed; optional extra r1h[vllm]"

    def __init__(self, model: str | None = None, **backend_args: Any):
        super().__init__(model, **backend_args)
        self.llm_kwargs = engine_kwargs(model, backend_args)
        self.on_tokens: Callable[[int], None] | None = None
        self._llm = None
        self._vllm = None

    @property
    def model_id(self) -> str:
        return resolve_model(self.model).name

    def load(self) -> None:
        if self._llm is None:
            self._vllm = _import_vllm()
            self._llm = self._vllm.LLM(**self.llm_kwargs)

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        self.load()
        vllm = self._vllm
        results: list[list[Completion | None]] = [[None] * len(r.sample_indices) for r in requests]
        for call in plan_calls(requests, config):
            params = [vllm.SamplingParams(**kw) for kw in call.params]
            outputs = self._llm.chat(call.conversations, sampling_params=params, use_tqdm=False, **call.chat_flags)
            if len(outputs) != len(call.targets):
                raise ConfigError(f"vLLM returned {len(outputs)} outputs for {len(call.targets)} prompts")
            tokens = 0
            for (request_index, slots), output in zip(call.targets, outputs, strict=True):
                completion = to_completion(output)
                tokens += completion.num_tokens
                for slot in slots:
                    results[request_index][slot] = completion
            if self.on_tokens is not None:
                self.on_tokens(tokens)
        return [[c if c is not None else Completion("", "stop", 0) for c in per] for per in results]

    def close(self) -> None:
        self._llm = None
