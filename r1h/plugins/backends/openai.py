"""Any OpenAI-compatible chat server (``vllm serve``, sglang, ``transformers serve``) through ``/v1/chat/completions``.

Streams: every wanted sample is one request, up to ``concurrency`` in flight per replica, and each is yielded as its
response arrives. HTTP, retries, deadlines and the body cap live in ``openai_pool.py``.

- ``--base-url`` (repeatable, or comma-separated in backend arg ``base_url``, else ``$OPENAI_BASE_URL``): one or
  more replicas; ``/v1`` is appended when missing. Requests go to the replica with the most free room in its window;
  a request that fails on one replica is retried on another. This is the multi-node evaluation path.
- ``concurrency`` (256 per replica): vLLM's default ``max_num_seqs`` is 256, so a default ``vllm serve`` has every
  scheduler slot filled and its own queue holds the rest; a larger engine wants ``concurrency`` = its
  ``max_num_seqs`` or more. A fixed number rather than adaptive: the server's continuous batching already adapts, and
  requests waiting in its queue cost only their prompt.
- ``api_key`` from the backend arg, else ``$OPENAI_API_KEY``, else ``EMPTY``. ``--model`` is the served model id
  (left out of the request when not given: single-model servers then use theirs).
- Max tokens: sent as ``max_completion_tokens`` (the OpenAI API's name; vLLM's protocol.py takes both and prefers it);
  a server answering 400/422 naming that field gets ``max_tokens`` from then on (once per server).
- One sampling policy: with ``policy="neutral"`` the body carries ``top_k: -1, min_p: 0.0, repetition_penalty: 1.0``
  (vLLM serve's and sglang's extra sampling params), so ``vllm serve`` does not fill them from the checkpoint's
  generation_config.json; with ``"model"`` only temperature, top-p and max tokens are sent. A server that rejects
  the extra keys (400/422 naming one) gets the body without them, with a warning, once per server.
- Per-sample seeds: one request per wanted sample with ``n=1`` and ``seed`` = that sample's seed, so a server that
  honours ``seed`` (vLLM does) reproduces a resumed run. ``use_n=true`` sends one request per problem with ``n`` =
  the number wanted and the first sample's seed; missing choices (servers that ignore ``n``) are filled with
  per-sample requests. Greedy (temperature 0) sends one request per problem.
- Prefill (``continue_final_message``): the assistant prefill is the last message with vLLM's extra body keys
  ``continue_final_message: true, add_generation_prompt: false``; a server that rejects them (400/422 naming the key,
  e.g. ``transformers serve``) is retried without them, with a warning. ``prefill_keys=false`` never sends them.
- Robustness: ``max_retries`` (5) with exponential backoff from ``retry_backoff`` (1 s) honouring ``Retry-After``;
  ``deadline`` (3600 s) bounds each request overall, retries included; ``timeout`` (per try, default the deadline)
  bounds one try as a whole, connect to last byte (a non-streamed response sends nothing until the whole completion
  is done, so a per-read bound would be the same except against a server that trickles bytes); ``max_body_mb`` (16)
  caps a body (after gzip/deflate decoding).
- Network: ``HTTP_PROXY``/``HTTPS_PROXY``/``NO_PROXY`` are honoured (the standard library's rules, which aiohttp's
  ``trust_env`` follows too; a ``user:password`` in the proxy URL becomes ``Proxy-Authorization``); ``ca_bundle=PATH``
  trusts that PEM file for ``https://`` servers; ``verify=false`` skips certificate checks (a self-signed test box).
  The HTTP client, its caps and why it is aiohttp: ``openai_http.py`` and docs/openai-backend.md.
- Images: base64 ``data:`` URLs in ``image_url`` parts, in place of ``{"type": "image"}`` placeholders (or before the
  first user text when the messages have none).
"""

from __future__ import annotations

import base64
import mimetypes
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from r1h.harness.core.backend import Backend
from r1h.harness.core.errors import ConfigError
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.sampling import NEUTRAL_KEYS, effective, engine_params
from r1h.harness.core.types import Completion, Generated, GenerationConfig, GenerationRequest
from r1h.plugins.backends.openai_options import OpenAIOptions
from r1h.plugins.backends.openai_pool import BackendError, ClientError, Replica, ReplicaPool
from r1h.plugins.backends.transformers_static import truncate_at_stop

__all__ = ["BackendError", "OpenAIBackend", "build_body", "parse_choices", "to_openai_messages"]
PREFILL_KEYS = ("continue_final_message", "add_generation_prompt")


@hookimpl
def r1h_register_backends(register):
    register(
        "openai",
        "r1h.plugins.backends.openai:OpenAIBackend",
        version="2",
        description="OpenAI-compatible servers (vllm serve, sglang, transformers serve) by --base-url; replicas",
    )


def normalize_base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--base-url {url}: expected an http:// or https:// URL")
    return url if url.endswith("/v1") else f"{url}/v1"


def base_urls(value: Any) -> list[str]:
    """One or more replicas: a list, or a comma-separated string."""
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    urls = [normalize_base_url(str(u)) for u in items if str(u).strip()]
    if not urls:
        raise ConfigError("backend 'openai' needs --base-url (or $OPENAI_BASE_URL), e.g. http://127.0.0.1:8000/v1")
    return list(dict.fromkeys(urls))


def image_data_url(image: Any) -> str:
    """A ``data:`` URL for an image given as a path, raw bytes, a data URL, or a PIL image (PNG)."""
    if isinstance(image, str) and image.startswith(("data:", "http://", "https://")):
        return image
    if isinstance(image, bytes):
        data, mime = image, "image/png"
    elif isinstance(image, str) or hasattr(image, "__fspath__"):
        path = os.fspath(image)
        try:
            with open(path, "rb") as fh:
                data = fh.read()
        except OSError as exc:
            raise ConfigError(f"image {path}: cannot read it ({exc.strerror})") from exc
        mime = mimetypes.guess_type(path)[0] or "image/png"
    else:  # a PIL image
        import io

        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        data, mime = buffer.getvalue(), "image/png"
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def to_openai_messages(messages: list[dict[str, Any]], images: list[Any]) -> list[dict[str, Any]]:
    """Chat messages in OpenAI form, request images inlined as ``image_url`` parts."""
    urls = [image_data_url(im) for im in images]
    pending = list(urls)
    out: list[dict[str, Any]] = []
    for m in messages:
        content = m.get("content", "")
        if isinstance(content, list):
            parts = []
            for p in content:
                if isinstance(p, dict) and p.get("type") == "image":
                    if pending:
                        parts.append({"type": "image_url", "image_url": {"url": pending.pop(0)}})
                else:
                    parts.append(p)
            content = parts
        out.append({**m, "content": content})
    if pending and len(pending) == len(urls):  # no placeholders: put the images before the first user text
        for m in out:
            if m.get("role") == "user":
                text = m["content"]
                text_parts = [{"type": "text", "text": text}] if isinstance(text, str) else list(text)
                m["content"] = [{"type": "image_url", "image_url": {"url": u}} for u in pending] + text_parts
                break
    return out


def sampling_fields(config: GenerationConfig) -> dict[str, Any]:
    """The sampling keys of a body: the core policy (:mod:`r1h.harness.core.sampling`) with top-k "off" as -1 (vLLM
    serve's and sglang's spelling); with policy "model" only temperature and top-p."""
    return engine_params(config, top_k_off=-1)


def effective_sampling(config: GenerationConfig) -> dict[str, Any]:
    """The test hook every backend mirrors: the distribution sent, in r1h's terms."""
    return effective(sampling_fields(config))


def build_body(
    request: GenerationRequest,
    config: GenerationConfig,
    *,
    model: str | None,
    seed: int | None,
    n: int = 1,
    prefill_keys: bool = True,
    tokens_field: str = "max_completion_tokens",
    extra_sampling: bool = True,
) -> dict[str, Any]:
    """The JSON body of one ``/v1/chat/completions`` request."""
    body: dict[str, Any] = {"messages": to_openai_messages(request.messages, request.images),
                            tokens_field: int(config.max_tokens)}
    fields = sampling_fields(config)
    if not extra_sampling:
        fields = {k: v for k, v in fields.items() if k not in NEUTRAL_KEYS}
    body.update(fields)
    if model:
        body["model"] = model
    if seed is not None and not config.greedy:
        body["seed"] = int(seed)
    if n > 1:
        body["n"] = n
    if config.stop:
        body["stop"] = list(config.stop)
    if request.continue_final_message and prefill_keys:
        body["continue_final_message"] = True
        body["add_generation_prompt"] = False
    return body


def _shape(url: str, problem: str, why: str) -> BackendError:
    return BackendError(f"{url}/chat/completions: malformed response for problem {problem}: {why}")


def parse_choices(response: Any, stop: list[str], *, url: str = "server", problem: str = "?") -> list[Completion]:
    """Completions of a chat response, checked for shape. ``num_tokens`` comes from ``usage`` (split by text length
    when n > 1)."""
    if not isinstance(response, dict):
        raise _shape(url, problem, f"the body is a JSON {type(response).__name__}, expected an object")
    raw = response.get("choices")
    if not isinstance(raw, list) or not raw:
        raise _shape(url, problem, "'choices' is missing or not a non-empty list")
    texts, reasons, indices = [], [], []
    for i, choice in enumerate(raw):
        if not isinstance(choice, dict):
            raise _shape(url, problem, f"choices[{i}] is a {type(choice).__name__}, expected an object")
        message = choice.get("message")
        if not isinstance(message, dict):
            raise _shape(url, problem, f"choices[{i}].message is a {type(message).__name__}, expected an object")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise _shape(url, problem, f"choices[{i}].message.content is a {type(content).__name__}, expected a "
                                       f"string")
        text = content or ""
        texts.append(truncate_at_stop(text, stop)[0] if stop else text)
        reasons.append("length" if choice.get("finish_reason") == "length" else "stop")
        index = choice.get("index", i)
        indices.append(index if isinstance(index, int) else i)
    usage = response.get("usage")
    tokens = usage.get("completion_tokens") if isinstance(usage, dict) else None
    if isinstance(tokens, bool) or not isinstance(tokens, int):
        tokens = None
    total_chars = sum(len(t) for t in texts) or 1
    completions = []
    for _, text, reason in sorted(zip(indices, texts, reasons, strict=True), key=lambda t: t[0]):
        if tokens is not None and len(texts) == 1:
            num = tokens
        elif tokens is not None:
            num = round(tokens * len(text) / total_chars)
        else:
            num = max(1, len(text) // 4) if text else 0  # no usage: a rough estimate
        completions.append(Completion(text=text, finish_reason=reason, num_tokens=num))
    return completions


@dataclass
class _Job:
    request: GenerationRequest
    indices: list[int]  # sample indices this job fills
    seed: int | None
    n: int


def _names(detail: str, keys: Iterable[str]) -> bool:
    return any(k in detail for k in keys)


class OpenAIBackend(Backend):
    """OpenAI-compatible servers by --base-url (one or more replicas), requests streamed as they complete."""

    name = "openai"
    description = "OpenAI-compatible servers (vllm serve, sglang, transformers serve) by --base-url; replicas"
    Options = OpenAIOptions
    concurrent_streams = True  # each stream has its own queue on the shared event loop

    def __init__(self, model: str | None = None, **backend_args: Any):
        super().__init__(model, **backend_args)
        opts = self.options
        raw = opts.base_url or os.environ.get("OPENAI_BASE_URL")
        if not raw:
            raise ConfigError("backend 'openai' needs --base-url (or $OPENAI_BASE_URL), e.g. http://127.0.0.1:8000/v1")
        self.base_urls = base_urls(raw)
        self.base_url = self.base_urls[0]
        self.api_key = opts.api_key or os.environ.get("OPENAI_API_KEY") or "EMPTY"
        self.concurrency = opts.concurrency
        self.max_retries = opts.max_retries
        self.use_n = opts.use_n
        self.prefill_keys = opts.prefill_keys
        self.verify = opts.verify
        self.ca_bundle = opts.ca_bundle or None
        if self.ca_bundle and not os.path.isfile(self.ca_bundle):
            raise ConfigError(f"--backend-arg ca_bundle={self.ca_bundle}: no such file")
        self.retry_backoff, self.deadline = opts.retry_backoff, opts.deadline
        self.max_body = int(opts.max_body_mb * 1024 * 1024)
        self.timeout = opts.timeout if opts.timeout is not None else opts.deadline
        self._lock = threading.Lock()
        self._pool: ReplicaPool | None = None
        self._last_sampling: dict[str, Any] | None = None

    @property
    def model_id(self) -> str:
        return self.model or f"openai:{self.base_url}"

    def _get_pool(self) -> ReplicaPool:
        if self._pool is None:
            self._pool = ReplicaPool(self.base_urls, window=self.concurrency, api_key=self.api_key,
                                     max_retries=self.max_retries, backoff=self.retry_backoff,
                                     timeout=self.timeout, deadline=self.deadline, max_body=self.max_body,
                                     verify=self.verify, ca_bundle=self.ca_bundle)
        return self._pool

    # ----- adapting the body to a server -----

    def _adapt(self, replica: Replica, exc: ClientError, body: dict[str, Any]) -> bool:
        """Change what this server gets after a 400/422 naming a field of the body we sent that we can rename or drop.
        Decided on the body (not on a flag) so concurrent requests that hit the same error all resend; the new body
        lacks the field, so each adaptation happens at most once per request."""
        if exc.code not in (400, 422):
            return False
        flags = replica.flags
        if "max_completion_tokens" in body and "max_completion_tokens" in exc.detail:
            flags["tokens_field"] = "max_tokens"
            return True
        if "continue_final_message" in body and _names(exc.detail, PREFILL_KEYS):
            with self._lock:
                if self.prefill_keys:
                    self.prefill_keys = False
                    print("r1h: warning: the server rejects 'continue_final_message'; sending the prefill as a "
                          "plain assistant message (the model may not continue it)", file=sys.stderr)
            return True
        if any(k in body for k in NEUTRAL_KEYS) and _names(exc.detail, NEUTRAL_KEYS):
            with self._lock:
                if "no_extra" not in flags:
                    flags["no_extra"] = True
                    print(f"r1h: warning: {replica.url} rejects top_k/min_p/repetition_penalty; it samples with its "
                          f"own defaults for them", file=sys.stderr)
            return True
        return False

    def _body(self, replica: Replica, job: _Job, config: GenerationConfig, seed: int | None, n: int) -> dict[str, Any]:
        return build_body(job.request, config, model=self.model, seed=seed, n=n, prefill_keys=self.prefill_keys,
                          tokens_field=replica.flags.get("tokens_field", "max_completion_tokens"),
                          extra_sampling="no_extra" not in replica.flags)

    async def _work(self, job: _Job, config: GenerationConfig) -> list[Completion]:
        pool = self._get_pool()
        stop = list(config.stop)

        async def one(seed: int | None, n: int) -> list[Completion]:
            replica, response = await pool._request(lambda r: self._body(r, job, config, seed, n), self._adapt,
                                                    job.request.id)
            return parse_choices(response, stop, url=replica.url, problem=job.request.id)

        got = await one(job.seed, job.n)
        if config.greedy:
            return [got[0]] * len(job.indices)
        seeds = job.request.seeds
        positions = {index: i for i, index in enumerate(job.request.sample_indices)}
        for index in job.indices[len(got):]:  # the server ignored n: one request per missing sample
            got.extend((await one(int(seeds[positions[index]]), 1))[:1])
        return got[: len(job.indices)]

    # ----- generation -----

    def _jobs(self, requests: Iterable[GenerationRequest], config: GenerationConfig) -> Iterator[_Job]:
        for request in requests:
            wanted = request.wanted()
            if not wanted:
                continue
            if config.greedy:
                yield _Job(request, list(request.sample_indices), None, 1)
            elif self.use_n and wanted > 1:
                yield _Job(request, list(request.sample_indices), int(request.seeds[0]), wanted)
            else:
                for index, seed in zip(request.sample_indices, request.seeds, strict=True):
                    yield _Job(request, [index], int(seed), 1)

    def stream(self, requests: Iterable[GenerationRequest], config: GenerationConfig) -> Iterator[Generated]:
        pool = self._get_pool()
        self._last_sampling = sampling_fields(config)
        jobs = self._jobs(requests, config)
        for job, completions in pool.run(jobs, lambda job: self._work(job, config)):
            for index, completion in zip(job.indices, completions, strict=True):
                yield Generated(job.request, index, completion)

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        """The batch form, collected from :meth:`stream`."""
        position = {id(r): (i, {index: k for k, index in enumerate(r.sample_indices)}) for i, r in enumerate(requests)}
        results: list[list[Completion | None]] = [[None] * len(r.sample_indices) for r in requests]
        for got in self.stream(requests, config):
            row, slots = position[id(got.request)]
            results[row][slots[got.sample_index]] = got.completion
        return [[c if c is not None else Completion("", "stop", 0) for c in per] for per in results]

    def describe(self) -> dict[str, Any]:
        pool = self._pool
        flags = {r.url: dict(r.flags) for r in pool.replicas if r.flags} if pool else {}
        return {"backend": self.name, "engine": "openai-compatible server", "base_urls": list(self.base_urls),
                "model": self.model, "concurrency_per_replica": self.concurrency, "deadline_s": self.deadline,
                "sampling": self._last_sampling, "server_adaptations": flags or None,
                "prefill_keys": self.prefill_keys}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
            self._pool = None
