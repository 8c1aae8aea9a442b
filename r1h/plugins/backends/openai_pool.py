"""The request side of the openai backend: replicas, in-flight windows, retries and deadlines.

One asyncio loop in a background thread keeps hundreds of requests in flight without hundreds of threads, over the
small HTTP/1.1 client in ``openai_http.py`` (why it is hand-written is said there). Each request goes to the replica
with the most free room in its window; a retry goes to another replica when one is up, and a replica that just failed
is avoided by new requests while it cools down. A per-try timeout (``timeout``) and an overall deadline per request,
retries included (``deadline``, ``asyncio.wait_for``), so a server that trickles bytes or keeps answering 503 cannot
hold a request forever; ``Retry-After`` (seconds or an HTTP date) is honoured in the backoff.

Transient (retried): connection refused/reset/closed, a truncated body (``IncompleteRead``), a bad status line, a
try past ``timeout``, HTTP 408/409/429/5xx, a body that is not UTF-8 or not JSON. Fatal (one :class:`BackendError`
line naming the server and the problem): other 4xx, an oversize body, a JSON body of the wrong shape, the deadline.
"""

from __future__ import annotations

import asyncio
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from .openai_http import (
    MAX_RETRY_AFTER_S,
    RETRY_STATUS,
    BackendError,
    ClientError,
    Replica,
    Transient,
    _Stale,
    error_detail,
    exchange,
    retry_after_seconds,
)

__all__ = ["BackendError", "ClientError", "Replica", "ReplicaPool"]


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
        self._room = asyncio.Condition()
        self._ssl = None

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return

        async def shut():
            writers = [w for replica in self.replicas for _, w in replica.idle]
            for replica in self.replicas:
                replica.idle.clear()
            for writer in writers:
                writer.close()
            if writers:
                await asyncio.wait([asyncio.ensure_future(w.wait_closed()) for w in writers], timeout=2)

        try:
            asyncio.run_coroutine_threadsafe(shut(), loop).result(timeout=10)
        except Exception:  # noqa: BLE001,S110 - closing anyway
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        loop.close()

    # ----- one request -----

    async def _acquire(self, avoid: Replica | None) -> Replica:
        """A slot on the replica with the most free room: among the others that are up when this request just failed
        on ``avoid`` (waiting for their room rather than going back), else among those up, else any."""
        assert self._room is not None
        async with self._room:
            while True:
                now = time.monotonic()
                others = [r for r in self.replicas if r is not avoid]
                groups = ([r for r in others if r.up(now)], [r for r in self.replicas if r.up(now)],
                          others or self.replicas)
                group = next(g for g in groups if g)
                free = [r for r in group if r.in_flight < r.window]
                if free:
                    best = min(free, key=lambda r: r.in_flight / r.window)
                    best.in_flight += 1
                    return best
                await self._room.wait()

    async def _release(self, replica: Replica) -> None:
        assert self._room is not None
        async with self._room:
            replica.in_flight -= 1
            self._room.notify_all()

    async def _post_once(self, replica: Replica, body: dict[str, Any]) -> Any:
        url = f"{replica.url}/chat/completions"
        payload = json.dumps(body).encode("utf-8")
        for _ in range(3):
            try:
                status, headers, data = await asyncio.wait_for(
                    exchange(replica, payload, api_key=self.api_key, max_body=self.max_body, timeout=self.read_timeout),
                    self.read_timeout)
                break
            except _Stale:
                continue
            except asyncio.TimeoutError:
                raise Transient(f"Timeout: no complete answer within {self.read_timeout:g} s (--backend-arg "
                                f"timeout)") from None
        else:
            raise Transient("ConnectionClosed: the server keeps closing connections")
        retry_after = retry_after_seconds(headers.get("retry-after"))
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
                replica.down_until = time.monotonic() + delay  # new requests prefer the other replicas meanwhile
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
