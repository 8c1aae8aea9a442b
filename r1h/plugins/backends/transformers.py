"""The default backend: batched generation with Hugging Face transformers (CPU or GPU).

- Loads an HF directory, a hub id or a .gguf file (``gguf_file=``); with no ``--model``, the embedded SmolLM2.
- Vision-language checkpoints (a config with ``vision_config``, e.g. Qwen2-VL) load with
  ``AutoModelForImageTextToText`` + ``AutoProcessor``; request images go through the processor.
- Prompts use the chat template (``add_generation_prompt=True``, or ``continue_final_message=True`` for a prefill).
- Rows (one per wanted sample) are sorted by prompt length and generated ``batch_size`` at a time, LEFT padded.
- Per-sample seeds: sampling is done by a logits processor that draws each row's token with that row's own
  ``torch.Generator`` (seeded with the sample's seed), after temperature and top-p. A sample's draws therefore do not
  depend on which other samples share its batch; only floating-point differences of batched matmuls can (rarely)
  change a draw. Greedy decoding (temperature 0) deduplicates identical prompts.

Backend args (``--backend-arg key=value``): ``batch_size`` (16), ``device`` (auto: cuda if available), ``dtype``
(auto: bfloat16 on GPU, float32 on CPU), ``trust_remote_code`` (false), ``attn_implementation``, ``vision``
(auto|true|false), ``threads`` (torch CPU threads; default torch's own: lower it on a shared machine, since an
oversubscribed CPU slows generation many times over).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from r1h.harness.backend import Backend
from r1h.harness.errors import ConfigError
from r1h.harness.hookspecs import hookimpl
from r1h.harness.types import Completion, GenerationConfig, GenerationRequest, content_text

from .models import resolve_model


@hookimpl
def r1h_register_backends(register):
    register(
        "transformers",
        "r1h.plugins.backends.transformers:TransformersBackend",
        aliases=("hf",),
        version="1",
        description="Hugging Face transformers, batched with left padding and per-sample seeds (default)",
    )


def parse_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"--backend-arg {key}={value}: expected true or false")


def parse_int(key: str, value: Any, minimum: int = 1) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        raise ConfigError(f"--backend-arg {key}={value}: expected an integer") from None
    if number < minimum:
        raise ConfigError(f"--backend-arg {key}={value}: must be >= {minimum}")
    return number


def check_known(backend: str, args: dict[str, Any], known: set[str]) -> None:
    unknown = sorted(set(args) - known)
    if unknown:
        raise ConfigError(
            f"backend {backend!r} does not know --backend-arg {unknown[0]}; known: {', '.join(sorted(known))}"
        )


@dataclass
class _Row:
    """One generation row: which request and which of its wanted samples it fills."""

    request: int
    slots: list[int]  # positions in the request's wanted samples (several when greedy rows are deduplicated)
    prompt: str
    seed: int
    length: int
    images: list[Any]


def truncate_at_stop(text: str, stop: list[str]) -> tuple[str, bool]:
    """Cut ``text`` before the earliest stop string (excluded, as OpenAI and vLLM do)."""
    cut = min((i for i in (text.find(s) for s in stop if s) if i >= 0), default=-1)
    return (text[:cut], True) if cut >= 0 else (text, False)


def _row_sampler(generators: list[Any], temperature: float, top_p: float, top_k_window: int = 512):
    """A logits processor that samples each row with its own generator and returns a one-hot mask of the draw.

    ``generate`` then runs greedy (argmax) over the mask, which picks exactly the drawn token. Top-p is exact: the
    nucleus is searched among the ``top_k_window`` most likely tokens, and over the whole vocabulary for a row whose
    window holds less than ``top_p`` of the mass.
    """
    import torch
    from transformers import LogitsProcessor

    class RowSampler(LogitsProcessor):
        def __call__(self, input_ids, scores):
            probs = torch.softmax(scores.float() / max(temperature, 1e-6), dim=-1)
            picks = []
            if top_p < 1.0:
                window_probs, window_ids = torch.topk(probs, min(top_k_window, probs.shape[-1]), dim=-1)
                for i, generator in enumerate(generators):
                    values, ids = window_probs[i], window_ids[i]
                    if float(values.sum()) < top_p:  # a flat distribution: the nucleus is wider than the window
                        values, ids = torch.sort(probs[i], descending=True)
                    drop = (torch.cumsum(values, dim=-1) - values) > top_p  # keeps at least the top token
                    pick = torch.multinomial(values.masked_fill(drop, 0.0), 1, generator=generator)
                    picks.append(ids[pick])
            else:
                picks = [torch.multinomial(probs[i], 1, generator=g) for i, g in enumerate(generators)]
            choice = torch.stack(picks).to(scores.device)
            out = torch.full_like(scores, float("-inf"))
            return out.scatter_(1, choice, 0.0)

    return RowSampler()


class TransformersBackend(Backend):
    """Hugging Face transformers, batched with left padding and per-sample seeds."""

    name = "transformers"
    description = "Hugging Face transformers, batched with left padding and per-sample seeds (default)"
    KNOWN_ARGS = {"batch_size", "device", "dtype", "trust_remote_code", "attn_implementation", "vision", "threads"}

    def __init__(self, model: str | None = None, **backend_args: Any):
        super().__init__(model, **backend_args)
        check_known(self.name, backend_args, self.KNOWN_ARGS)
        self.resolved = resolve_model(model)
        self.batch_size = parse_int("batch_size", backend_args.get("batch_size", 16))
        self.device_arg = str(backend_args.get("device", "auto"))
        self.dtype_arg = str(backend_args.get("dtype", "auto"))
        self.trust_remote_code = parse_bool("trust_remote_code", backend_args.get("trust_remote_code", False))
        self.attn_implementation = backend_args.get("attn_implementation")
        self.threads = parse_int("threads", backend_args["threads"]) if backend_args.get("threads") else None
        vision = str(backend_args.get("vision", "auto")).lower()
        self.vision_arg = None if vision == "auto" else parse_bool("vision", vision)
        self.on_tokens: Callable[[int], None] | None = None  # the runner may set it to count generated tokens
        self._model = None
        self._tokenizer = None
        self._processor = None
        self.device = None

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
            dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
        elif self.dtype_arg in dtypes:
            dtype = dtypes[self.dtype_arg]
        else:
            raise ConfigError(f"--backend-arg dtype={self.dtype_arg}: expected auto, bfloat16, float16 or float32")
        return device, dtype

    def _is_vision(self) -> bool:
        if self.vision_arg is not None:
            return self.vision_arg
        if self.resolved.gguf_file:
            return False
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(self.resolved.path_or_id, trust_remote_code=self.trust_remote_code)
        return getattr(config, "vision_config", None) is not None

    def load(self) -> None:
        """Load the model and tokenizer once (the first ``generate`` calls it)."""
        if self._model is not None:
            return
        import transformers

        if self.threads:
            import torch

            torch.set_num_threads(self.threads)
        device, dtype = self._torch_settings()
        r = self.resolved
        common = {"trust_remote_code": self.trust_remote_code, **r.load_kwargs()}
        model_kwargs: dict[str, Any] = {"dtype": dtype, **common}
        if self.attn_implementation:
            model_kwargs["attn_implementation"] = str(self.attn_implementation)
        from .models import load_processor

        try:
            if self._is_vision():
                self._processor = load_processor(r.tokenizer, **common)
                self._tokenizer = self._processor.tokenizer
                self._processor.tokenizer.padding_side = "left"
                model = transformers.AutoModelForImageTextToText.from_pretrained(r.path_or_id, **model_kwargs)
            else:
                self._tokenizer = transformers.AutoTokenizer.from_pretrained(r.tokenizer, **common)
                model = transformers.AutoModelForCausalLM.from_pretrained(r.path_or_id, **model_kwargs)
        except (OSError, ValueError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"--model {r.name}: cannot load it with transformers: {first}") from exc
        tok = self._tokenizer
        tok.padding_side = "left"
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self.device = device
        self._model = model.to(device).eval()

    # ----- prompts -----

    def _prompt(self, request: GenerationRequest) -> str:
        cont = bool(request.continue_final_message)
        flags = {"add_generation_prompt": not cont, "continue_final_message": cont, "tokenize": False}
        try:
            if self._processor is not None:
                messages = _vision_messages(request.messages, len(request.images))
                return self._processor.apply_chat_template(messages, **flags)
            messages = [{**m, "content": content_text(m.get("content", ""))} for m in request.messages]
            return self._tokenizer.apply_chat_template(messages, **flags)
        except ValueError as exc:  # no chat template, or a prefill that is not an assistant message
            raise ConfigError(f"--model {self.resolved.name}, problem {request.id}: cannot apply the chat template: "
                              f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from exc

    def _rows(self, requests: list[GenerationRequest], greedy: bool) -> list[_Row]:
        rows: list[_Row] = []
        prompts = [self._prompt(r) for r in requests]
        if self._processor is None:
            lengths = [len(ids) for ids in self._tokenizer(prompts, add_special_tokens=False)["input_ids"]]
        else:
            lengths = [len(p) for p in prompts]
        for i, request in enumerate(requests):
            request.wanted()
            images = [_load_image(im) for im in request.images] if self._processor is not None else []
            if greedy and request.sample_indices:  # every greedy sample of a prompt is the same: generate one
                rows.append(_Row(i, list(range(len(request.sample_indices))), prompts[i], 0, lengths[i], images))
                continue
            for slot, seed in enumerate(request.seeds):
                rows.append(_Row(i, [slot], prompts[i], int(seed), lengths[i], images))
        rows.sort(key=lambda row: -row.length)  # similar lengths together: less padding
        return rows

    # ----- generation -----

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        self.load()
        results: list[list[Completion | None]] = [[None] * len(r.sample_indices) for r in requests]
        rows = self._rows(requests, config.greedy)
        for start in range(0, len(rows), self.batch_size):
            chunk = rows[start : start + self.batch_size]
            completions = self._generate_chunk(chunk, config)
            for row, completion in zip(chunk, completions, strict=True):
                for slot in row.slots:
                    results[row.request][slot] = completion
            if self.on_tokens is not None:
                self.on_tokens(sum(c.num_tokens for c in completions))
        return [[c if c is not None else Completion("", "stop", 0) for c in per] for per in results]

    def _inputs(self, chunk: list[_Row]):
        import torch

        if self._processor is not None:
            texts = [row.prompt for row in chunk]
            images = [row.images for row in chunk] if any(row.images for row in chunk) else None
            return self._processor(text=texts, images=images, padding=True, return_tensors="pt")
        tok = self._tokenizer
        ids = tok([row.prompt for row in chunk], add_special_tokens=False)["input_ids"]
        width = max(len(x) for x in ids)
        pad = tok.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(x)) + list(x) for x in ids], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], dtype=torch.long)
        return {"input_ids": input_ids, "attention_mask": mask}

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

    def _generate_chunk(self, chunk: list[_Row], config: GenerationConfig) -> list[Completion]:
        import torch
        from transformers import GenerationConfig as HFGenerationConfig
        from transformers import LogitsProcessorList

        inputs = {k: v.to(self.device) for k, v in self._inputs(chunk).items()}
        width = inputs["input_ids"].shape[1]
        max_new = max(1, int(config.max_tokens))
        limit = self._context_limit()
        if limit:
            max_new = max(1, min(max_new, limit - width))
        eos = self._eos_ids()
        pad_id = self._tokenizer.pad_token_id
        gen_config = HFGenerationConfig(
            max_new_tokens=max_new, do_sample=False, num_beams=1, pad_token_id=pad_id,
            eos_token_id=sorted(eos) or None, temperature=None, top_p=None, top_k=None,
        )
        processors = LogitsProcessorList()
        if not config.greedy:
            generators = [torch.Generator(device=self.device).manual_seed(row.seed) for row in chunk]
            processors.append(_row_sampler(generators, float(config.temperature), float(config.top_p)))
        extra: dict[str, Any] = {}
        if config.stop:
            gen_config.stop_strings = list(config.stop)
            extra["tokenizer"] = self._tokenizer
        with torch.inference_mode():
            output = self._model.generate(**inputs, generation_config=gen_config, logits_processor=processors, **extra)
        new_tokens = output[:, width:].tolist()
        done = eos | ({pad_id} if pad_id is not None else set())
        completions = []
        for tokens in new_tokens:
            end = next((i for i, t in enumerate(tokens) if t in done), None)
            kept = tokens if end is None else tokens[:end]
            num = len(kept) + (1 if end is not None and tokens[end] in eos else 0)
            text = self._tokenizer.decode(kept, skip_special_tokens=True)
            text, stopped = truncate_at_stop(text, config.stop)
            if end is None and not stopped and len(tokens) >= max_new:
                reason = "length"
            else:
                reason = "stop"
            completions.append(Completion(text=text, finish_reason=reason, num_tokens=num))
        return completions

    def close(self) -> None:
        self._model = None
        self._tokenizer = None
        self._processor = None


def _vision_messages(messages: list[dict[str, Any]], n_images: int) -> list[dict[str, Any]]:
    """Messages as typed parts, with one image placeholder per request image (in the first user turn if absent)."""
    out = []
    for m in messages:
        content = m.get("content", "")
        parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content or [])
        out.append({**m, "content": parts})
    has_image = any(p.get("type") in ("image", "image_url") for m in out for p in m["content"] if isinstance(p, dict))
    if n_images and not has_image:
        for m in out:
            if m.get("role") == "user":
                m["content"] = [{"type": "image"} for _ in range(n_images)] + m["content"]
                break
    return out


def _load_image(image: Any):
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        from PIL import Image

        with Image.open(image) as im:
            return im.convert("RGB")
    return image
