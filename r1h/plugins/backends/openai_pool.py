"""The HTTP side of the openai backend: replicas, in-flight windows, retries, deadlines and the body cap.

Built on ``httpx`` (the package ``openai`` itself uses; installed as ``httpx2``, the name current ``openai`` releases
depend on, or as ``httpx``), driven by one asyncio loop in a background thread so hundreds of requests can be in
flight without hundreds of threads. We do not use the ``openai`` client: it has no response-size cap, it validates
bodies into models that accept a string ``message`` or a numeric ``content`` silently or fail with a long traceback,
and its retries cannot move a request to another replica. What is hand-written here, and why:

- the body cap (``max_body_mb``): httpx has none; the body is read in chunks and abandoned past the cap;
- the overall deadline per request (``deadline``): httpx timeouts are per read/connect, so a server that trickles
  bytes or keeps answering 503 could hold a request forever; ``asyncio.wait_for`` bounds the whole request, retries
  included;
- ``Retry-After`` (seconds or an HTTP date) honoured in the backoff between tries;
- replica choice: each request goes to the replica with the most free room in its window, and a retry avoids the
  replica that just failed when another one is up.

Transient (retried): transport errors (connection refused/reset, ``RemoteProtocolError``: a truncated body (Python's
``IncompleteRead``), a bad status line), timeouts, HTTP 408/409/429/5xx, a body that is not UTF-8 or not JSON.
Fatal (one :class:`BackendError` line naming the server and the problem): other 4xx, an oversize body, a JSON body of
the wrong shape, the deadline.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from r1h.harness.errors import ConfigError, R1HError

RETRY_STATUS = {408, 409, 429}
MAX_RETRY_AFTER_S = 120.0


class BackendError(R1HError):
    """A server that keeps failing or answers with an error or a malformed body."""


class ClientError(Exception):
    """HTTP 4xx other than the retried ones: the caller may adapt the body once (prefill keys, max-tokens field)."""

    def __init__(self, url: str, code: int, detail: str):
        super().__init__(f"HTTP {code}: {detail}")
        self.url = url
        self.code = code
        self.detail = detail


class Transient(Exception):
    def __init__(self, why: str, retry_after: float | None = None):
        super().__init__(why)
        self.retry_after = retry_after


def import_httpx():
    try:
        import httpx2 as httpx
    except ImportError:
        try:
            import httpx
        except ImportError:
            raise ConfigError("the openai backend needs httpx; install it with: pip install 'r1h[openai]'") from None
    return httpx


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: a number, or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_detail(data: bytes) -> str:
    text = data.decode("utf-8", "replace")
    try:
        payload = json.loads(text)
    except json.JSONDecodeError:
        payload = None
    if isinstance(payload, dict):
        detail = payload.get("detail") or payload.get("error") or payload.get("message") or text
        if isinstance(detail, dict):
            detail = detail.get("message") or json.dumps(detail)
        text = str(detail)
    return " ".join(text.split())[:500]


@dataclass
class Replica:
    url: str  # ".../v1"
    window: int
    in_flight: int = 0
    down_until: float = 0.0
    flags: dict[str, Any] = field(default_factory=dict)  # per-server body adaptations (max-tokens field, ...)

    def up(self, now: float) -> bool:
        return now >= self.down_until


class ReplicaPool:
    """Requests to several OpenAI-compatible replicas, each with its own in-flight window."""

    def __init__(self, urls: list[str], *, window: int, api_key: str, max_retries: int, backoff: float,
                 read_timeout: float, deadline: float, max_body: int):
        self.replicas = [Replica(url, window) for url in urls]
        self.api_key = api_key
        self.max_retries = max_retries
        self.backoff = backoff
        self.read_timeout = read_timeout
        self.deadline = deadline
        self.max_body = max_body
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: Any = None
        self._room: asyncio.Condition | None = None

    @property
    def capacity(self) -> int:
        return sum(r.window for r in self.replicas)

    # ----- the loop thread -----

    def _start(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            loop = asyncio.new_event_loop()
            ready = threading.Event()

            def run():
                asyncio.set_event_loop(loop)
                loop.call_soon(ready.set)
                loop.run_forever()

            self._thread = threading.Thread(target=run, name="r1h-openai", daemon=True)
            self._thread.start()
            ready.wait()
            self._loop = loop
            asyncio.run_coroutine_threadsafe(self._setup(), loop).result()
        return self._loop

    async def _setup(self) -> None:
        httpx = import_httpx()
        self._httpx = httpx
        limit = self.capacity + 8
        self._client = httpx.AsyncClient(
            timeout=httpx.Timeout(self.read_timeout, connect=min(30.0, self.read_timeout)),
            limits=httpx.Limits(max_connections=limit, max_keepalive_connections=limit),
            headers={"Authorization": f"Bearer {self.api_key}"},
        )
        self._room = asyncio.Condition()

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._client.aclose(), loop).result(timeout=10)
        except Exception:  # noqa: BLE001,S110 - closing anyway
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()

    # ----- one request -----

    async def _acquire(self, avoid: Replica | None) -> Replica:
        assert self._room is not None
        async with self._room:
            while True:
                now = time.monotonic()
                free = [r for r in self.replicas if r.in_flight < r.window]
                preferred = [r for r in free if r is not avoid and r.up(now)] or [r for r in free if r.up(now)]
                choice = preferred or ([r for r in free if r is not avoid] or free)
                if choice:
                    best = min(choice, key=lambda r: r.in_flight / r.window)
                    best.in_flight += 1
                    return best
                await self._room.wait()

    async def _release(self, replica: Replica) -> None:
        assert self._room is not None
        async with self._room:
            replica.in_flight -= 1
            self._room.notify()

    async def _post_once(self, replica: Replica, body: dict[str, Any]) -> Any:
        httpx = self._httpx
        url = f"{replica.url}/chat/completions"
        try:
            async with self._client.stream("POST", url, json=body) as resp:
                length = resp.headers.get("content-length")
                if length and length.isdigit() and int(length) > self.max_body:
                    raise BackendError(f"{url}: response body of {int(length)} bytes is over the cap of "
                                       f"{self.max_body} bytes (--backend-arg max_body_mb)")
                chunks, size = [], 0
                async for chunk in resp.aiter_bytes():
                    size += len(chunk)
                    if size > self.max_body:
                        raise BackendError(f"{url}: response body over the cap of {self.max_body} bytes "
                                           f"(--backend-arg max_body_mb)")
                    chunks.append(chunk)
                data = b"".join(chunks)
                status = resp.status_code
                retry_after = retry_after_seconds(resp.headers.get("retry-after"))
        except httpx.TransportError as exc:  # refused, reset, truncated body, bad status line, timeouts
            raise Transient(f"{type(exc).__name__}: {' '.join(str(exc).split())[:200] or 'no detail'}") from None
        if status in RETRY_STATUS or status >= 500:
            raise Transient(f"HTTP {status}: {error_detail(data)}", retry_after)
        if status >= 400:
            raise ClientError(url, status, error_detail(data))
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise Transient(f"the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise Transient(f"the body is not JSON ({exc.msg} at char {exc.pos})") from None

    async def _request(self, make_body: Callable[[Replica], dict[str, Any]],
                       adapt: Callable[[Replica, ClientError, dict[str, Any]], bool],
                       problem: str = "?") -> tuple[Replica, Any]:
        last, avoid = "", None
        tries = 0
        while True:
            replica = await self._acquire(avoid)
            try:
                body = make_body(replica)
                try:
                    return replica, await self._post_once(replica, body)
                except ClientError as exc:
                    if adapt(replica, exc, body):  # the body was changed for this server: send again at once
                        continue
                    raise BackendError(f"{exc.url}: HTTP {exc.code} for problem {problem}: {exc.detail}") from None
            except Transient as exc:
                last, avoid = f"{replica.url}: {exc}", replica
                tries += 1
                delay = min(self.backoff * 2 ** (tries - 1), 60.0)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER_S))
                if str(exc).startswith(("ConnectError", "ConnectTimeout")):
                    replica.down_until = time.monotonic() + delay
                if tries > self.max_retries:
                    raise BackendError(f"no answer for problem {problem} after {tries} tries (last: {last})") from None
            finally:
                await self._release(replica)
            await asyncio.sleep(delay)

    async def _bounded(self, job: Any, work: Callable[[Any], Any], label: Callable[[Any], str]) -> Any:
        try:
            return await asyncio.wait_for(work(job), self.deadline)
        except asyncio.TimeoutError:
            raise BackendError(f"no answer for problem {label(job)} within the {self.deadline:g} s deadline "
                               f"(--backend-arg deadline); servers: {', '.join(r.url for r in self.replicas)}") from None

    # ----- the stream -----

    def run(self, jobs: Iterator[Any], work: Callable[[Any], Any],
            label: Callable[[Any], str] = str) -> Iterator[tuple[Any, Any]]:
        """Run ``await work(job)`` for every job, up to the pool's capacity at once; yield ``(job, result)`` as each
        finishes. The first error stops the stream (in-flight requests are cancelled) and is raised from it."""
        loop = self._start()
        done: queue.Queue = queue.Queue()
        futures: set[Any] = set()

        def submit(job: Any) -> None:
            future = asyncio.run_coroutine_threadsafe(self._bounded(job, work, label), loop)
            futures.add(future)
            future.add_done_callback(lambda f, j=job: done.put((j, f)))

        exhausted = False
        try:
            while True:
                while not exhausted and len(futures) < self.capacity:
                    job = next(jobs, None)
                    if job is None:
                        exhausted = True
                        break
                    submit(job)
                if not futures:
                    return
                job, future = done.get()
                futures.discard(future)
                if future.cancelled():
                    continue
                exc = future.exception()
                if exc is not None:
                    raise exc
                yield job, future.result()
        finally:
            for future in futures:
                future.cancel()
