"""Any OpenAI-compatible chat server (``vllm serve``, sglang, ``transformers serve``) through ``/v1/chat/completions``.

Standard library HTTP only (``urllib``), so the backend needs no extra package.

- ``--base-url`` (backend arg ``base_url``, else ``$OPENAI_BASE_URL``); ``/v1`` is appended when missing.
- ``api_key`` from the backend arg, else ``$OPENAI_API_KEY``, else ``EMPTY``. ``--model`` is the served model id
  (left out of the request when not given: single-model servers then use theirs).
- Per-sample seeds: by default one request per wanted sample with ``n=1`` and ``seed`` = that sample's seed, so a
  server that honours ``seed`` (vLLM does) reproduces a resumed run. ``use_n=true`` sends one request per problem with
  ``n`` = the number wanted and the first sample's seed; missing choices (servers that ignore ``n``, e.g.
  ``transformers serve``) are filled with per-sample requests. Greedy (temperature 0) sends one request per problem.
- Prefill (``continue_final_message``): the assistant prefill is sent as the last message with vLLM's extra body keys
  ``continue_final_message: true, add_generation_prompt: false``. Plain OpenAI servers may ignore them (the model then
  answers after the prefill instead of continuing it); a server that rejects them (HTTP 400/422 naming the key, e.g.
  ``transformers serve``) is retried once without them, with a warning. ``prefill_keys=false`` never sends them.
- ``concurrency`` (8) requests in flight; ``max_retries`` (5) retries with exponential backoff (``retry_backoff``
  seconds, 1.0) on connection errors, timeouts, HTTP 408/409/429 and 5xx; ``timeout`` (600 s) per request.
- Images: base64 ``data:`` URLs in ``image_url`` parts, in place of ``{"type": "image"}`` placeholders (or before the
  first user text when the messages have none).
"""

from __future__ import annotations

import base64
import json
import mimetypes
import os
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Any

from r1h.harness.backend import Backend
from r1h.harness.errors import ConfigError, R1HError
from r1h.harness.hookspecs import hookimpl
from r1h.harness.types import Completion, GenerationConfig, GenerationRequest

from .transformers import check_known, parse_bool, parse_int, truncate_at_stop

RETRY_STATUS = {408, 409, 429}


@hookimpl
def r1h_register_backends(register):
    register(
        "openai",
        "r1h.plugins.backends.openai:OpenAIBackend",
        version="1",
        description="any OpenAI-compatible server (vllm serve, sglang, transformers serve) by --base-url",
    )


class BackendError(R1HError):
    """A server that keeps failing or answers with an error."""


def normalize_base_url(url: str) -> str:
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ConfigError(f"--base-url {url}: expected an http:// or https:// URL")
    return url if url.endswith("/v1") else f"{url}/v1"


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


def build_body(
    request: GenerationRequest,
    config: GenerationConfig,
    *,
    model: str | None,
    seed: int | None,
    n: int = 1,
    prefill_keys: bool = True,
) -> dict[str, Any]:
    """The JSON body of one ``/v1/chat/completions`` request."""
    body: dict[str, Any] = {
        "messages": to_openai_messages(request.messages, request.images),
        "max_tokens": int(config.max_tokens),
        "temperature": float(config.temperature),
        "top_p": float(config.top_p),
    }
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


def parse_choices(response: dict[str, Any], stop: list[str]) -> list[Completion]:
    """Completions of a chat response. ``num_tokens`` comes from ``usage`` (split by text length when n > 1)."""
    choices = sorted(response.get("choices") or [], key=lambda c: c.get("index", 0))
    texts = []
    for choice in choices:
        message = choice.get("message") or {}
        text = message.get("content") or ""
        texts.append(truncate_at_stop(text, stop)[0] if stop else text)
    usage = (response.get("usage") or {}).get("completion_tokens")
    total_chars = sum(len(t) for t in texts) or 1
    completions = []
    for choice, text in zip(choices, texts, strict=True):
        reason = "length" if choice.get("finish_reason") == "length" else "stop"
        if isinstance(usage, int) and len(choices) == 1:
            num = usage
        elif isinstance(usage, int):
            num = round(usage * len(text) / total_chars)
        else:
            num = max(1, len(text) // 4) if text else 0  # no usage: a rough estimate
        completions.append(Completion(text=text, finish_reason=reason, num_tokens=num))
    return completions


@dataclass
class _Task:
    request: int
    slots: list[int]
    seed: int | None
    n: int


class OpenAIBackend(Backend):
    """Any OpenAI-compatible server by --base-url, with concurrent requests and retries."""

    name = "openai"
    description = "any OpenAI-compatible server (vllm serve, sglang, transformers serve) by --base-url"
    KNOWN_ARGS = {"base_url", "api_key", "concurrency", "max_retries", "retry_backoff", "timeout", "use_n",
                  "prefill_keys"}

    def __init__(self, model: str | None = None, **backend_args: Any):
        super().__init__(model, **backend_args)
        check_known(self.name, backend_args, self.KNOWN_ARGS)
        base_url = backend_args.get("base_url") or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ConfigError("backend 'openai' needs --base-url (or $OPENAI_BASE_URL), e.g. http://127.0.0.1:8000/v1")
        self.base_url = normalize_base_url(str(base_url))
        self.api_key = str(backend_args.get("api_key") or os.environ.get("OPENAI_API_KEY") or "EMPTY")
        self.concurrency = parse_int("concurrency", backend_args.get("concurrency", 8))
        self.max_retries = parse_int("max_retries", backend_args.get("max_retries", 5), minimum=0)
        self.use_n = parse_bool("use_n", backend_args.get("use_n", False))
        self.prefill_keys = parse_bool("prefill_keys", backend_args.get("prefill_keys", True))
        try:
            self.retry_backoff = float(backend_args.get("retry_backoff", 1.0))
            self.timeout = float(backend_args.get("timeout", 600))
        except ValueError as exc:
            raise ConfigError(f"--backend-arg retry_backoff/timeout: expected a number ({exc})") from None
        self.on_tokens: Callable[[int], None] | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.model or f"openai:{self.base_url}"

    # ----- HTTP -----

    def _post(self, body: dict[str, Any]) -> dict[str, Any]:
        url = f"{self.base_url}/chat/completions"
        data = json.dumps(body).encode("utf-8")
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {self.api_key}"}
        last = ""
        for attempt in range(self.max_retries + 1):
            if attempt:
                time.sleep(min(self.retry_backoff * 2 ** (attempt - 1), 60.0))
            req = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310 - http(s) only
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:  # noqa: S310
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as exc:
                detail = _error_detail(exc)
                if exc.code in RETRY_STATUS or exc.code >= 500:
                    last = f"HTTP {exc.code}: {detail}"
                    continue
                raise _ClientError(exc.code, detail) from None
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as exc:
                last = f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"
                continue
            except json.JSONDecodeError as exc:
                last = f"invalid JSON in the response: {exc}"
                continue
        raise BackendError(f"{url}: no answer after {self.max_retries + 1} tries ({last})")

    def _complete(self, body: dict[str, Any], request: GenerationRequest, config: GenerationConfig) -> list[Completion]:
        try:
            response = self._post(body)
        except _ClientError as exc:
            prefill = "continue_final_message" in body
            if prefill and exc.code in (400, 422) and "continue_final_message" in exc.detail:
                with self._lock:
                    if self.prefill_keys:
                        self.prefill_keys = False
                        print("r1h: warning: the server rejects 'continue_final_message'; sending the prefill as a "
                              "plain assistant message (the model may not continue it)", file=sys.stderr)
                body = {k: v for k, v in body.items() if k not in ("continue_final_message", "add_generation_prompt")}
                return self._complete(body, request, config)
            raise BackendError(f"{self.base_url}/chat/completions: HTTP {exc.code} for problem {request.id}: "
                               f"{exc.detail}") from None
        return parse_choices(response, list(config.stop))

    # ----- generation -----

    def _tasks(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[_Task]:
        tasks = []
        for i, request in enumerate(requests):
            wanted = request.wanted()
            if not wanted:
                continue
            if config.greedy:
                tasks.append(_Task(i, list(range(wanted)), None, 1))
            elif self.use_n and wanted > 1:
                tasks.append(_Task(i, list(range(wanted)), int(request.seeds[0]), wanted))
            else:
                tasks.extend(_Task(i, [slot], int(seed), 1) for slot, seed in enumerate(request.seeds))
        return tasks

    def _run(self, task: _Task, requests: list[GenerationRequest], config: GenerationConfig) -> list[Completion]:
        request = requests[task.request]
        body = build_body(request, config, model=self.model, seed=task.seed, n=task.n, prefill_keys=self.prefill_keys)
        got = self._complete(body, request, config)
        if not got:
            raise BackendError(f"{self.base_url}: the server returned no choices for problem {request.id}")
        if config.greedy:
            return [got[0]] * len(task.slots)
        for slot in task.slots[len(got):]:  # the server ignored n: one request per missing sample
            body = build_body(request, config, model=self.model, seed=int(request.seeds[slot]), n=1,
                              prefill_keys=self.prefill_keys)
            got.extend(self._complete(body, request, config)[:1])
        return got[: len(task.slots)]

    def generate(self, requests: list[GenerationRequest], config: GenerationConfig) -> list[list[Completion]]:
        results: list[list[Completion | None]] = [[None] * len(r.sample_indices) for r in requests]
        tasks = self._tasks(requests, config)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(self._run, task, requests, config): task for task in tasks}
            try:
                for future in as_completed(futures):
                    task = futures[future]
                    completions = future.result()
                    for slot, completion in zip(task.slots, completions, strict=True):
                        results[task.request][slot] = completion
                    if self.on_tokens is not None:
                        self.on_tokens(sum(c.num_tokens for c in completions))
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
        return [[c if c is not None else Completion("", "stop", 0) for c in per] for per in results]


class _ClientError(Exception):
    def __init__(self, code: int, detail: str):
        super().__init__(f"HTTP {code}: {detail}")
        self.code = code
        self.detail = detail


def _error_detail(exc: urllib.error.HTTPError) -> str:
    try:
        text = exc.read().decode("utf-8", "replace")
    except Exception:
        text = ""
    try:
        payload = json.loads(text)
        if isinstance(payload, dict):
            detail = payload.get("detail") or payload.get("error") or payload.get("message") or text
            if isinstance(detail, dict):
                detail = detail.get("message") or json.dumps(detail)
            text = str(detail)
    except json.JSONDecodeError:
        pass
    return " ".join((text or exc.reason or "").split())[:500]
