"""The default backend: Hugging Face transformers (CPU or GPU), streamed in static or continuous batches.

- Loads an HF directory, a hub id or a .gguf file (``gguf_file=``); with no ``--model``, the embedded SmolLM2.
- Vision-language checkpoints (a config with ``vision_config``, e.g. Qwen2-VL) load with
  ``AutoModelForImageTextToText`` + ``AutoProcessor``; request images go through the processor.
- Prompts use the chat template (``add_generation_prompt=True``, or ``continue_final_message=True`` for a prefill).
- ``stream`` pulls requests lazily and yields each sample as it finishes, in one of two modes (``batching``):
  - **static**: rows (one per wanted sample) are buffered ``batch_size`` at a time, sorted by prompt length, LEFT
    padded and generated together; each chunk is yielded when it ends. Per-sample seeds: a logits processor draws
    each row's token with that row's own ``torch.Generator`` (:func:`.transformers_sampling.row_sampler`), so a
    sample's draws do not depend on which other samples share its batch (only floating-point differences of batched
    matmuls can, rarely, change a draw). Greedy decoding (temperature 0) deduplicates identical prompts.
  - **continuous**: transformers' own continuous batching (:mod:`.transformers_cb`): a finished row is replaced at
    the next step. Per-sample seeds hold there too: r1h swaps transformers' batch-wide sampler for the same per-row
    seeded one. No stop strings, images or sequence-reading logits processors (repetition penalty...): those
    settings fall back to static batches.
  - **auto** (default): continuous on CUDA where supported, static on CPU, where static batches were faster in
    ``perf/batch_tokps.py`` (see the README's figures).
- Sampling policy (:mod:`r1h.harness.core.sampling`; the HF generation configs: :mod:`.transformers_sampling`):
  ``neutral`` sends temperature/top-p and explicit neutral values for the rest; ``model`` uses the checkpoint's
  generation_config.json for the rest.

Backend args (``--backend-arg key=value``): :class:`TransformersOptions` (``r1h list backends --wide`` shows them).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from typing import Any, Literal

from r1h.harness.core.backend import Backend
from r1h.harness.core.errors import ConfigError, FlagError
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.options import Options, option
from r1h.harness.core.sampling import sampling_params
from r1h.harness.core.types import Completion, Generated, GenerationConfig, GenerationRequest, content_text
from r1h.harness.data.hub import require_hub_model
from r1h.plugins.backends.models import resolve_model
from r1h.plugins.backends.transformers_sampling import effective_sampling as effective_sampling  # the test hook
from r1h.plugins.backends.transformers_sampling import row_sampler
from r1h.plugins.backends.transformers_static import Row as _Row
from r1h.plugins.backends.transformers_static import generate_chunk, load_image, vision_messages
from r1h.plugins.backends.transformers_static import (
    truncate_at_stop as truncate_at_stop,  # re-exported: tests import it from here
)


@hookimpl
def r1h_register_backends(register):
    register(
        "transformers",
        "r1h.plugins.backends.transformers:TransformersBackend",
        aliases=("hf",),
        version="1",
        description="Hugging Face transformers, static or continuous batches, per-sample seeds (default)",
    )


@dataclasses.dataclass
class TransformersOptions(Options):
    """``--backend-arg``s of the transformers backend."""

    batch_size: int = option(16, "rows (samples) per static batch", ge=1)
    batching: Literal["auto", "continuous", "static"] = option(
        "auto", "continuous: transformers' continuous batching; auto: continuous on CUDA, static on CPU")
    inflight: int | None = option(None, "rows in the continuous batching manager (default: 256 on GPU, batch_size "
                                        "on CPU)", ge=1)
    device: str = option("auto", "auto (cuda if available), cpu, cuda or cuda:N")
    dtype: Literal["auto", "bfloat16", "bf16", "float16", "fp16", "float32", "fp32"] = option(
        "auto", "auto: bfloat16 on GPU, float32 on CPU")
    trust_remote_code: bool = option(False, "run the checkpoint's own modelling code")
    attn_implementation: str | None = option(None, "transformers' attn_implementation (sdpa, eager, "
                                                   "flash_attention_2...)")
    vision: Literal["auto"] | bool = option("auto", "load as a vision-language model (auto: when the config has "
                                                    "vision_config)")
    threads: int | None = option(None, "torch CPU threads (default: available CPUs - 1, at least 1)", ge=1)


def check_device(device: str) -> None:
    """``--backend-arg device=...``: a name torch knows and an accelerator this torch can use (``auto`` always is)."""
    if device == "auto":
        return
    import torch

    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise FlagError(f"--backend-arg device={device}: expected auto, cpu, cuda or cuda:N") from None
    if kind == "cuda" and not torch.cuda.is_available():
        why = (f"this torch ({torch.__version__}) was built without CUDA" if torch.version.cuda is None
               else "torch sees no GPU (check CUDA_VISIBLE_DEVICES and the driver)")
        raise ConfigError(f"--backend-arg device={device}: {why}; use device=cpu (or auto), or install a CUDA build "
                          "of torch")
    if kind == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"--backend-arg device={device}: MPS is not available here; use device=cpu (or auto)")


def _row_sampler(generators: list[Any], temperature: float, top_p: float, top_k_window: int = 512):
    """:func:`.transformers_sampling.row_sampler` with temperature and top-p only (the neutral policy)."""
    params = {"temperature": temperature, "top_p": top_p, "top_k": None, "min_p": 0.0, "repetition_penalty": 1.0}
    return row_sampler(generators, params, top_k_window)


class TransformersBackend(Backend):
    """Hugging Face transformers: static batches with per-sample seeds, or transformers' continuous batching."""

    name = "transformers"
    description = "Hugging Face transformers, static or continuous batches, per-sample seeds (default)"
    Options = TransformersOptions

    def __init__(self, model: str | None = None, **backend_args: Any):
        super().__init__(model, **backend_args)
        opts = self.options
        self.resolved = resolve_model(model)
        self.batch_size = opts.batch_size
        self.device_arg = opts.device
        self.dtype_arg = opts.dtype
        self.trust_remote_code = opts.trust_remote_code
        self.attn_implementation = opts.attn_implementation
        self.threads = opts.threads
        self.vision_arg = None if opts.vision == "auto" else opts.vision
        self.batching = opts.batching
        self.inflight = opts.inflight
        self.thread_info: dict[str, Any] = {}
        self._checkpoint_gen = None  # the checkpoint's generation_config (used by the "model" policy)
        self._last: dict[str, Any] = {}  # what the latest stream ran with, for describe()
        self._model = None
        self._tokenizer = None
        self._processor = None
        self.device = None
        check_device(self.device_arg)  # before any weights load: one line, not a traceback 20 s later
        if not self.resolved.is_local:
            require_hub_model(self.resolved.name)

    @property
    def model_id(self) -> str:
        return self.resolved.name

    # ----- loading -----

    def _torch_settings(self):
        import torch

        device = self.device_arg
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtypes = {"bfloat16": torch.bfloat16, "bf16": torch.bfloat16, "float16": torch.float16,
                  "fp16": torch.float16, "float32": torch.float32, "fp32": torch.float32}
        if self.dtype_arg == "auto":
            return device, torch.bfloat16 if device.startswith("cuda") else torch.float32
        return device, dtypes[self.dtype_arg]

    def _is_vision(self) -> bool:
        if self.vision_arg is not None:
            return self.vision_arg
        if self.resolved.gguf_file:
            return False
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(self.resolved.path_or_id, trust_remote_code=self.trust_remote_code)
        return getattr(config, "vision_config", None) is not None

    def _load_weights(self, r: Any, common: dict[str, Any], model_kwargs: dict[str, Any]) -> Any:
        """The processor or tokenizer (kept on self) and the model, as transformers loads them."""
        import transformers

        from r1h.plugins.backends.models import load_processor

        if self._is_vision():
            self._processor = load_processor(r.tokenizer, **common)
            self._tokenizer = self._processor.tokenizer
            self._processor.tokenizer.padding_side = "left"
            return transformers.AutoModelForImageTextToText.from_pretrained(r.path_or_id, **model_kwargs)
        self._tokenizer = transformers.AutoTokenizer.from_pretrained(r.tokenizer, **common)
        return transformers.AutoModelForCausalLM.from_pretrained(r.path_or_id, **model_kwargs)

    def load(self) -> None:
        """Load the model and tokenizer once (the first ``generate`` calls it)."""
        if self._model is not None:
            return
        from r1h.plugins.backends.threads import apply_threads

        self.thread_info = apply_threads(self.threads)
        device, dtype = self._torch_settings()
        r = self.resolved
        common = {"trust_remote_code": self.trust_remote_code, **r.load_kwargs()}
        model_kwargs: dict[str, Any] = {"dtype": dtype, **common}
        if self.attn_implementation:
            model_kwargs["attn_implementation"] = str(self.attn_implementation)
        from r1h.plugins.backends.models import quiet_loading

        try:
            with quiet_loading():
                model = self._load_weights(r, common, model_kwargs)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--model {r.name}: cannot load it with transformers: {first}") from exc
        tok = self._tokenizer
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self.device = device
        self._model = model.to(device).eval()
        # generate() fills every unset field from model.generation_config: keep the checkpoint's aside for the "model"
        # policy and leave a neutral one (token ids only) on the model, so nothing is inherited by accident
        from r1h.plugins.backends.transformers_sampling import neutral_generation_config

        self._checkpoint_gen = self._model.generation_config
        self._model.generation_config = neutral_generation_config(self._checkpoint_gen)

    # ----- prompts -----

    def _prompt(self, request: GenerationRequest) -> str:
        cont = bool(request.continue_final_message)
        flags = {"add_generation_prompt": not cont, "continue_final_message": cont, "tokenize": False}
        try:
            if self._processor is not None:
                messages = vision_messages(request.messages, len(request.images))
                return self._processor.apply_chat_template(messages, **flags)
            messages = [{**m, "content": content_text(m.get("content", ""))} for m in request.messages]
            return self._tokenizer.apply_chat_template(messages, **flags)
        except ValueError as exc:  # no chat template, or a prefill that is not an assistant message
            raise ConfigError(f"--model {self.resolved.name}, problem {request.id}: cannot apply the chat template: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc

    def _request_rows(self, index: int, request: GenerationRequest, greedy: bool, lengths: bool = True) -> list[_Row]:
        """The rows of one request (one per wanted sample; one for all of a greedy request's samples)."""
        request.wanted()
        prompt = self._prompt(request)
        if self._processor is None:
            length = len(self._tokenizer(prompt, add_special_tokens=False)["input_ids"]) if lengths else 0
        else:
            length = len(prompt)
        images = [load_image(im) for im in request.images] if self._processor is not None else []
        if greedy and request.sample_indices:  # every greedy sample of a prompt is the same: generate one
            return [_Row(index, list(range(len(request.sample_indices))), prompt, 0, length, images)]
        return [_Row(index, [slot], prompt, int(seed), length, images) for slot, seed in enumerate(request.seeds)]

    def _rows(self, requests: list[GenerationRequest], greedy: bool) -> list[_Row]:
        rows = [row for i, request in enumerate(requests) for row in self._request_rows(i, request, greedy)]
        rows.sort(key=lambda row: -row.length)  # similar lengths together: less padding
        return rows

    # ----- generation -----

    def stream(self, requests: Iterable[GenerationRequest], config: GenerationConfig) -> Iterator[Generated]:
        """Yield each wanted sample as it finishes; requests are pulled lazily (``batch_size`` rows ahead on the
        static path, ``inflight`` rows on the continuous one)."""
        self.load()
        mode, reason = self._mode(config)
        params = sampling_params(config, self._checkpoint_gen)
        self._last = {"batching_used": mode, "fallback": reason, "sampling": params, "policy": config.policy}
        if mode == "continuous":
            yield from self._stream_continuous(iter(requests), config, params)
        else:
            yield from self._stream_static(iter(requests), config, params)

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        self.load()
        mode, reason = self._mode(config)
        params = sampling_params(config, self._checkpoint_gen)
        self._last = {"batching_used": mode, "fallback": reason, "sampling": params, "policy": config.policy}
        results: list[list[Completion | None]] = [[None] * len(r.sample_indices) for r in requests]
        if mode == "continuous":
            position = {id(r): i for i, r in enumerate(requests)}
            for item in self._stream_continuous(iter(requests), config, params):
                req = item.request
                results[position[id(req)]][req.sample_indices.index(item.sample_index)] = item.completion
        else:  # every row sorted by length at once: the fewest padded positions
            rows = self._rows(requests, config.greedy)
            for start in range(0, len(rows), self.batch_size):
                chunk = rows[start : start + self.batch_size]
                for row, completion in zip(chunk, self._generate_chunk(chunk, config, params), strict=True):
                    for slot in row.slots:
                        results[row.request][slot] = completion
        return [[c if c is not None else Completion("", "stop", 0) for c in per] for per in results]

    def _mode(self, config: GenerationConfig) -> tuple[str, str | None]:
        """The batching mode for ``config``, and why continuous batching was not used where it was asked for."""
        if self.batching == "static":
            return "static", None
        if self.batching == "auto" and not str(self.device).startswith("cuda"):
            return "static", None
        reason = self._continuous_unsupported(config)
        if reason is None:
            return "continuous", None
        if self.batching == "continuous":
            import warnings

            warnings.warn(f"transformers backend: continuous batching unsupported here ({reason}); using static "
                          f"batches", stacklevel=2)
        return "static", reason

    def _continuous_unsupported(self, config: GenerationConfig) -> str | None:
        from r1h.plugins.backends.transformers_sampling import continuous_generation_config, continuous_unsupported

        if not hasattr(self._model, "init_continuous_batching"):
            return "the model has no init_continuous_batching"
        if self._processor is not None:
            return "a vision-language model (images)"
        if config.stop:
            return "stop strings"
        params = sampling_params(config, self._checkpoint_gen)
        gen = continuous_generation_config(self._checkpoint_gen, params, config.policy)
        dropped = continuous_unsupported(self._model._get_logits_processor(gen))
        return f"logits processors {', '.join(dropped)}" if dropped else None

    def _stream_static(self, requests: Iterator[GenerationRequest], config, params) -> Iterator[Generated]:
        buffered: list[_Row] = []
        pulled: dict[int, GenerationRequest] = {}  # requests with rows still buffered, by pull number
        exhausted = False
        count = 0
        while True:
            while not exhausted and len(buffered) < self.batch_size:
                request = next(requests, None)
                if request is None:
                    exhausted = True
                    break
                pulled[count] = request
                buffered.extend(self._request_rows(count, request, config.greedy))
                count += 1
            if not buffered:
                return
            buffered.sort(key=lambda row: -row.length)
            chunk, buffered = buffered[: self.batch_size], buffered[self.batch_size :]
            for row, completion in zip(chunk, self._generate_chunk(chunk, config, params), strict=True):
                request = pulled[row.request]
                for slot in row.slots:
                    yield Generated(request, request.sample_indices[slot], completion)
            live = {row.request for row in buffered}  # forget requests whose rows are all done
            pulled = {i: r for i, r in pulled.items() if i in live}

    def _stream_continuous(self, requests: Iterator[GenerationRequest], config, params) -> Iterator[Generated]:
        from r1h.plugins.backends.transformers_cb import CBRow, stream_rows
        from r1h.plugins.backends.transformers_sampling import continuous_generation_config

        max_new = max(1, int(config.max_tokens))
        limit = self._context_limit()
        tok = self._tokenizer
        inflight = self.inflight or (256 if str(self.device).startswith("cuda") else self.batch_size)

        def rows() -> Iterator[CBRow]:
            for number, request in enumerate(requests):
                for k, row in enumerate(self._request_rows(number, request, config.greedy, lengths=False)):
                    ids = tok(row.prompt, add_special_tokens=False)["input_ids"]
                    budget = max(1, min(max_new, limit - len(ids))) if limit else max_new
                    yield CBRow(f"r{number}_{k}", request, row.slots, ids, budget, row.seed)

        eos = sorted(self._eos_ids())
        # greedy manager: the seeded per-row sampler (transformers_cb.seeded_processors) makes every draw
        gen = continuous_generation_config(self._checkpoint_gen, {**params, "temperature": 0.0}, config.policy,
                                           max_new_tokens=max_new, eos_token_id=eos or None,
                                           pad_token_id=tok.pad_token_id)
        seeded = None if config.greedy else params
        for row, tokens, hit_eos in stream_rows(self._model, rows(), gen, eos, inflight, config.seed, max_new,
                                                seeded, tok.pad_token_id):
            reason = "stop" if hit_eos or len(tokens) < row.max_new else "length"
            completion = Completion(tok.decode(tokens, skip_special_tokens=True), reason,
                                    len(tokens) + (1 if hit_eos else 0))
            for slot in row.slots:
                yield Generated(row.request, row.request.sample_indices[slot], completion)

    def _eos_ids(self) -> set[int]:
        ids: set[int] = set()
        for source in (self._model.generation_config.eos_token_id, self._tokenizer.eos_token_id):
            if isinstance(source, int):
                ids.add(source)
            elif isinstance(source, (list, tuple)):
                ids.update(int(x) for x in source)
        return ids

    def _context_limit(self) -> int | None:
        config = self._model.config
        text_config = getattr(config, "text_config", None) or config
        limit = getattr(text_config, "max_position_embeddings", None) or getattr(config, "max_position_embeddings", None)
        return int(limit) if limit else None

    def _generate_chunk(self, chunk: list[_Row], config: GenerationConfig, params: dict[str, Any]) -> list[Completion]:
        return generate_chunk(self, chunk, config, params)

    def describe(self) -> dict[str, Any]:
        """Engine settings for run.json/results.json: versions, device, dtype, threads, batching, attention, whether
        per-sample seeds hold, and the sampling parameters sent (after the first stream/generate)."""
        import importlib.metadata as md

        info: dict[str, Any] = {"backend": self.name, "model": self.resolved.name, "batching": self.batching}
        for package in ("transformers", "torch"):
            try:
                info[f"{package}_version"] = md.version(package)
            except md.PackageNotFoundError:
                info[f"{package}_version"] = None
        if self._model is not None:
            info.update(device=str(self.device), dtype=str(self._model.dtype).replace("torch.", ""),
                        attn_implementation=getattr(self._model.config, "_attn_implementation", None))
        info.update(self.thread_info)
        info["batch_size"] = self.batch_size
        info.update(self._last)
        info["per_sample_seeds"] = True  # both paths draw each row with its own seeded generator
        return info

    def close(self) -> None:
        self._model = None
        self._tokenizer = None
        self._processor = None
