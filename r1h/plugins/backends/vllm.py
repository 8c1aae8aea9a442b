"""Offline vLLM, the fast backend for GPUs, streamed request by request. Optional extra: ``pip install 'r1h[vllm]'``.

``stream`` drives vLLM's request-level engine (``LLM.llm_engine``: ``add_request`` / ``step``; see
``vllm_engine.py`` for the upstream names): every wanted sample is one engine request, up to ``max_in_flight`` of
them in the engine at once (default: twice the engine's ``max_num_seqs``), pulled lazily from the runner's iterator,
and each is yielded the step it finishes. ``data_parallel_size=N`` runs N engine processes (``vllm_dp.py``).

- Per-sample seeds: one ``SamplingParams(n=1, seed=s)`` per wanted sample, so every sample reproduces on its own
  whatever else is in flight (a resumed run regenerates the same text); vLLM's prefix caching shares the prompt
  between a problem's samples. Greedy decoding (temperature 0) runs one request per problem, copied to every sample.
- Prefill: ``continue_final_message`` requests are rendered with ``add_generation_prompt=False,
  continue_final_message=True``, as ``LLM.chat`` does.
- Images (Qwen2-VL): ``{"type": "image"}`` parts rendered by the chat template, PIL images in ``multi_modal_data``.
- One sampling policy: with ``policy="neutral"`` every request sends ``top_k=-1`` (vLLM: "0 or -1 considers all
  tokens"; -1 is also what vLLM before 0.8 accepted), ``min_p=0.0``, ``repetition_penalty=1.0``; with ``"model"``
  those three come from ``LLM.get_default_sampling_params()`` (the checkpoint's generation_config.json).

Backend args: any ``vllm.EngineArgs`` field (checked against ``dataclasses.fields(vllm.EngineArgs)`` when vLLM is
importable; typed conversions for the common ones below), plus ``max_in_flight`` (per engine) and ``device_env``
(the device variable for data-parallel ranks). ``swap_space`` is gone from current vLLM and is refused. A GGUF
``--model`` needs the base model's HF tokenizer: ``tokenizer=`` (hub id or folder); the embedded SmolLM2 GGUF
defaults to ``HuggingFaceTB/SmolLM2-135M-Instruct``, a GGUF whose folder holds tokenizer files uses that folder.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from r1h.harness.backend import Backend
from r1h.harness.errors import ConfigError
from r1h.harness.hookspecs import hookimpl
from r1h.harness.types import Completion, Generated, GenerationConfig, GenerationRequest

from .models import DEFAULT_ALIAS, resolve_model
from .transformers import parse_bool, parse_int
from .vllm_engine import EngineStream, WorkItem, engine_window, output_fields

INSTALL_HINT = "pip install 'r1h[vllm]'"
DEFAULT_GGUF_TOKENIZER = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the base model of the embedded SmolLM2 GGUF
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@hookimpl
def r1h_register_backends(register):
    register(
        "vllm",
        "r1h.plugins.backends.vllm:VLLMBackend",
        version="2",
        description="offline vLLM (GPU), streamed through LLMEngine, data parallel by processes; extra r1h[vllm]",
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


def _scalar(_key: str, value: Any) -> Any:
    """Another EngineArgs field: a JSON scalar/object where the text is one (8, 0.5, true, {...}), else the string."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


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
    "limit_mm_per_prompt": _json_dict,
}
BACKEND_ARGS = {"max_in_flight", "device_env"}  # ours, not vLLM's


def engine_fields() -> set[str] | None:
    """The field names of ``vllm.EngineArgs`` when vLLM is importable, else None."""
    try:
        import vllm
    except ImportError:
        return None
    args = getattr(vllm, "EngineArgs", None)
    if args is None or not dataclasses.is_dataclass(args):
        return None
    return {f.name for f in dataclasses.fields(args)}


def _unknown(key: str, known: Iterable[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    return ConfigError(f"backend 'vllm' does not know --backend-arg {key} ({where}){hint}")


def gguf_tokenizer(model: str | None, resolved: Any) -> str:
    """The HF tokenizer vLLM needs next to a GGUF file (vLLM recommends the base model's over the GGUF's own)."""
    if model is None or model == DEFAULT_ALIAS:
        return DEFAULT_GGUF_TOKENIZER
    folder = Path(resolved.path_or_id)
    if folder.is_dir() and any((folder / name).exists() for name in TOKENIZER_FILES):
        return str(folder)
    raise ConfigError(
        f"--model {model}: a GGUF file needs its base model's tokenizer for vLLM; pass --backend-arg tokenizer=<hub id "
        f"or folder>"
    )


def engine_kwargs(model: str | None, backend_args: dict[str, Any], fields: set[str] | None = None) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments from ``--model`` and the (string) backend args, converted to their types.

    With vLLM importable (or ``fields`` given) every key must be an ``EngineArgs`` field; without it only the typed
    ones in ``ENGINE_ARGS`` are accepted (the error then comes before a GPU is touched either way)."""
    fields = engine_fields() if fields is None else fields
    for key in backend_args:
        if key in BACKEND_ARGS:
            continue
        if key == "swap_space" and (fields is None or key not in fields):
            raise ConfigError("--backend-arg swap_space: not an EngineArgs field in current vLLM (V1 has no CPU swap); "
                              "drop it")
        if fields is not None and key not in fields:
            raise _unknown(key, fields | BACKEND_ARGS, "not a vllm.EngineArgs field")
        if fields is None and key not in ENGINE_ARGS:
            raise _unknown(key, set(ENGINE_ARGS) | BACKEND_ARGS, f"known: {', '.join([*ENGINE_ARGS, *BACKEND_ARGS])}")
    resolved = resolve_model(model)
    kwargs: dict[str, Any] = {}
    if resolved.gguf_file:  # vLLM loads GGUF from the file path; the tokenizer must be the base model's
        kwargs["model"] = f"{resolved.path_or_id.rstrip('/')}/{resolved.gguf_file}"
        if not backend_args.get("tokenizer"):
            kwargs["tokenizer"] = gguf_tokenizer(model, resolved)
    else:
        kwargs["model"] = resolved.path_or_id
    for key, value in backend_args.items():
        if value is not None and key not in BACKEND_ARGS:
            kwargs[key] = ENGINE_ARGS.get(key, _scalar)(key, value)
    if "gpu_memory_utilization" in kwargs and not 0 < kwargs["gpu_memory_utilization"] <= 1:
        raise ConfigError(f"--backend-arg gpu_memory_utilization={kwargs['gpu_memory_utilization']}: expected (0, 1]")
    return kwargs


def neutral_top_k(config: GenerationConfig) -> int:
    return -1 if not config.top_k else int(config.top_k)


def sampling_kwargs(config: GenerationConfig, seed: int | None) -> dict[str, Any]:
    """``SamplingParams`` keyword arguments for one sample. With ``policy="model"`` top-k, min-p and the repetition
    penalty are left out here and filled from the checkpoint (``LLM.get_default_sampling_params()``)."""
    kwargs: dict[str, Any] = {"n": 1, "max_tokens": int(config.max_tokens)}
    if config.greedy:
        kwargs.update(temperature=0.0, top_p=1.0)
    else:
        kwargs.update(temperature=float(config.temperature), top_p=float(config.top_p))
        if seed is not None:
            kwargs["seed"] = int(seed)
    if config.policy != "model":
        kwargs.update(top_k=neutral_top_k(config), min_p=float(config.min_p),
                      repetition_penalty=float(config.repetition_penalty))
    if config.stop:
        kwargs["stop"] = list(config.stop)
    return kwargs


def effective_sampling(config: GenerationConfig) -> dict[str, Any]:
    """The test hook every backend mirrors: the sampling distribution sent, in r1h's terms (top_k None = off);
    None for a field left to the checkpoint."""
    kw = sampling_kwargs(config, None)
    top_k = kw.get("top_k")
    return {"temperature": kw["temperature"], "top_p": kw["top_p"],
            "top_k": None if top_k is None or top_k <= 0 else top_k,
            "min_p": kw.get("min_p"), "repetition_penalty": kw.get("repetition_penalty")}


def work_items(requests: Iterable[GenerationRequest], config: GenerationConfig) -> Iterator[WorkItem]:
    """One engine request per wanted sample (one per problem when greedy), keyed (request, sample indices)."""
    model_defaults = config.policy == "model"
    for request in requests:
        wanted = request.wanted()
        if not wanted:
            continue
        common = dict(messages=request.messages, images=list(request.images),
                      continue_final_message=bool(request.continue_final_message), model_defaults=model_defaults)
        if config.greedy:
            yield WorkItem((request, list(request.sample_indices)), params=sampling_kwargs(config, None), **common)
            continue
        for index, seed in zip(request.sample_indices, request.seeds, strict=True):
            yield WorkItem((request, [index]), params=sampling_kwargs(config, int(seed)), **common)


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise ConfigError(f"the vllm backend needs vLLM, which is not installed ({exc}); install it with: "
                          f"{INSTALL_HINT}") from None
    return vllm


class VLLMBackend(Backend):
    """Offline vLLM streamed through its request-level engine; data parallel by one process per rank."""

    name = "vllm"
    description = "offline vLLM (GPU), streamed through LLMEngine, data parallel by processes; extra r1h[vllm]"

    def __init__(self, model: str | None = None, **backend_args: Any):
        super().__init__(model, **backend_args)
        self.llm_kwargs = engine_kwargs(model, backend_args)
        window = backend_args.get("max_in_flight")
        self.max_in_flight = parse_int("max_in_flight", window) if window is not None else None
        self.dp = int(self.llm_kwargs.pop("data_parallel_size", 1) or 1)
        self.per_rank = int(self.llm_kwargs.get("tensor_parallel_size", 1) or 1) * int(
            self.llm_kwargs.get("pipeline_parallel_size", 1) or 1)
        from .vllm_dp import device_env_name

        self.device_env = device_env_name(backend_args.get("device_env"))
        self.on_tokens: Callable[[int], None] | None = None
        self._llm = None
        self._vllm = None
        self._engine: EngineStream | None = None
        self._pool = None
        self._last_sampling: dict[str, Any] | None = None

    @property
    def model_id(self) -> str:
        return resolve_model(self.model).name

    def load(self) -> None:
        if self.dp > 1:
            if self._pool is None:
                from .vllm_dp import DataParallelPool

                self._vllm = _import_vllm()  # fail here, with the install hint, not in N children
                self._pool = DataParallelPool(self.llm_kwargs, self.dp, self.per_rank, self.device_env,
                                              self.max_in_flight)
            return
        if self._llm is None:
            self._vllm = _import_vllm()
            self._llm = self._vllm.LLM(**self.llm_kwargs)
            self._engine = EngineStream(self._llm, self._vllm, self.max_in_flight or engine_window(self._llm))

    def stream(self, requests: Iterable[GenerationRequest], config: GenerationConfig) -> Iterator[Generated]:
        self.load()
        self._last_sampling = sampling_kwargs(config, None)
        items = work_items(requests, config)
        if self._pool is not None:
            results = self._pool.stream(items)
        else:
            engine = self._engine
            assert engine is not None

            def pull(_block: bool) -> WorkItem:
                return next(items)

            results = ((key, *output_fields(output)) for key, output in engine.run(pull))
        for (request, indices), text, reason, tokens in results:
            if self.on_tokens is not None:
                self.on_tokens(tokens)
            completion = Completion(text=text, finish_reason=reason, num_tokens=tokens)
            for index in indices:
                yield Generated(request, index, completion)

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        """The batch form, collected from :meth:`stream` (for callers that still want whole batches)."""
        slots = {id(r): {index: i for i, index in enumerate(r.sample_indices)} for r in requests}
        results: list[list[Completion | None]] = [[None] * len(r.sample_indices) for r in requests]
        position = {id(r): i for i, r in enumerate(requests)}
        for got in self.stream(requests, config):
            results[position[id(got.request)]][slots[id(got.request)][got.sample_index]] = got.completion
        return [[c if c is not None else Completion("", "stop", 0) for c in per] for per in results]

    def describe(self) -> dict[str, Any]:
        version = None
        try:
            import importlib.metadata

            version = importlib.metadata.version("vllm")
        except Exception:  # noqa: BLE001 - not installed, or a fake in tests
            version = getattr(self._vllm, "__version__", None)
        kw = self.llm_kwargs
        return {
            "backend": self.name, "engine": "vllm", "version": version, "model": kw.get("model"),
            "tokenizer": kw.get("tokenizer"), "dtype": kw.get("dtype", "auto"),
            "tensor_parallel_size": kw.get("tensor_parallel_size", 1),
            "pipeline_parallel_size": kw.get("pipeline_parallel_size", 1), "data_parallel_size": self.dp,
            "device_env": self.device_env if self.dp > 1 else None, "max_in_flight": self.max_in_flight,
            "sampling": self._sampling_sent(),
        }

    def _sampling_sent(self) -> dict[str, Any] | None:
        """The sampling parameters sent; with the model policy, the checkpoint's values where this process knows
        them (in-process engine; data-parallel ranks read them in their own process)."""
        if self._last_sampling is None:
            return None
        sent = dict(self._last_sampling)
        if "top_k" not in sent and self._engine is not None and self._engine._defaults_loaded:
            defaults = self._engine._defaults
            sent.update({k: getattr(defaults, k) for k in ("top_k", "min_p", "repetition_penalty")
                         if hasattr(defaults, k)})
            sent["from_generation_config"] = True
        return sent

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
        self._llm = None
        self._engine = None
