"""The request side of the openai backend: replicas, in-flight windows, retries and deadlines.

One asyncio loop in a background thread keeps hundreds of requests in flight without hundreds of threads, over the
aiohttp client in ``openai_http.py`` (why aiohttp is said there). Each request goes to the replica with the most free
room in its window; a retry goes to another replica when one is up, and a replica that just failed is avoided by new
requests while it cools down. A per-try timeout (``timeout``: the whole try, connect to last byte) and an overall
deadline per request, retries included (``deadline``: each try gets what is left of it, at most ``timeout``), so a
server that trickles bytes or keeps answering 503 cannot hold a request forever; ``Retry-After`` (seconds or an HTTP date) is honoured in the backoff.

Transient (retried): connection refused/reset/closed, a truncated body, a bad status line or headers, a try past
``timeout``, HTTP 408/409/429/5xx, a body that is not UTF-8 or not JSON. Fatal (one :class:`BackendError` line naming
the server and the problem): other 4xx, an oversize body, a JSON body of the wrong shape, the deadline.

Nothing outlives an error: when the stream stops (the first fatal error, an interrupt, the consumer leaving), every
request still in flight is cancelled and awaited in the loop before the error is raised, and :meth:`close` ends every
task and the HTTP session before it stops the loop. So the one error line is all stderr gets.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from r1h.plugins.backends.openai_http import (
    MAX_RETRY_AFTER_S,
    RETRY_STATUS,
    BackendError,
    ClientError,
    HTTPClient,
    Replica,
    Transient,
    TryTimeout,
    error_detail,
    retry_after_seconds,
    ssl_setting,
)

__all__ = ["BackendError", "ClientError", "Replica", "ReplicaPool"]
_DEADLINE: contextvars.ContextVar[float | None] = contextvars.ContextVar("r1h_openai_deadline", default=None)


class ReplicaPool:
    """Requests to several OpenAI-compatible replicas, each with its own in-flight window."""

    def __init__(self, urls: list[str], *, window: int, api_key: str, max_retries: int, backoff: float,
                 timeout: float, deadline: float, max_body: int, verify: bool = True, ca_bundle: str | None = None):
        self.replicas = [Replica(url, window) for url in urls]
        self.api_key = api_key
        self.max_retries = max_retries
        self.backoff = backoff
        self.timeout = timeout
        self.deadline = deadline
        self.max_body = max_body
        self.tls = ssl_setting(verify, ca_bundle)  # a bad ca_bundle fails here, before any request
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._client: HTTPClient | None = None
        self._room: asyncio.Condition | None = None
        self._tasks: set[asyncio.Task] = set()

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
        self._client = HTTPClient(self.replicas, api_key=self.api_key, timeout=self.timeout, max_body=self.max_body,
                                  tls=self.tls)

    async def _cancel_all(self) -> None:
        """Cancel every request task and wait until each has finished (its connection released)."""
        tasks = [t for t in self._tasks if not t.done()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _shut(self) -> None:
        await self._cancel_all()
        current = asyncio.current_task()
        rest = [t for t in asyncio.all_tasks() if t is not current]  # anything else the libraries started
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)
        if self._client is not None:
            await self._client.close()
            self._client = None
        await asyncio.sleep(0)  # let the transports run their connection_lost callbacks

    def close(self) -> None:
        loop, self._loop = self._loop, None
        if loop is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._shut(), loop).result(timeout=30)
        except (concurrent.futures.TimeoutError, RuntimeError):  # closing anyway
            pass
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(timeout=10)
        if not loop.is_running():
            loop.run_until_complete(loop.shutdown_asyncgens())
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

    async def _post_once(self, replica: Replica, body: dict[str, Any], timeout: float) -> Any:
        assert self._client is not None
        url = replica.endpoint
        status, headers, data = await self._client.post(replica, json.dumps(body).encode("utf-8"), timeout)
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
        loop = asyncio.get_running_loop()
        end = _DEADLINE.get() or loop.time() + self.deadline

        def expired() -> BackendError:
            return BackendError(f"no answer for problem {problem} within the {self.deadline:g} s deadline "
                                f"(--backend-arg deadline); servers: {', '.join(r.url for r in self.replicas)}")

        while True:
            replica = await self._acquire(avoid)
            try:
                left = end - loop.time()
                if left <= 0:
                    raise expired()
                body = make_body(replica)
                try:
                    return replica, await self._post_once(replica, body, min(self.timeout, left))
                except ClientError as exc:
                    if adapt(replica, exc, body):  # the body was changed for this server: send again at once
                        continue
                    raise BackendError(f"{exc.url}: HTTP {exc.code} for problem {problem}: {exc.detail}") from None
            except Transient as exc:
                if isinstance(exc, TryTimeout) and loop.time() >= end - 0.01:  # the deadline, not the try, ran out
                    raise expired() from None
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
            await asyncio.sleep(max(0.0, min(delay, end - loop.time())))

    async def _bounded(self, job: Any, work: Callable[[Any], Any]) -> Any:
        """One job in its own task: registered for :meth:`_cancel_all`; its requests share one deadline. The deadline
        is arithmetic (each try gets ``min(timeout, time left)``), not a cancellation: a cancelled aiohttp try can
        turn into its own timeout error and the retry loop would go on."""
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        _DEADLINE.set(asyncio.get_running_loop().time() + self.deadline)
        try:
            return await work(job)
        finally:
            self._tasks.discard(task)

    # ----- the stream -----

    def run(self, jobs: Iterator[Any], work: Callable[[Any], Any]) -> Iterator[tuple[Any, Any]]:
        """Run ``await work(job)`` for every job, up to the pool's capacity at once; yield ``(job, result)`` as each
        finishes. The first error stops the stream: the requests in flight are cancelled and awaited, then it is
        raised from here."""
        loop = self._start()
        done: queue.Queue = queue.Queue()
        futures: set[Any] = set()

        def submit(job: Any) -> None:
            future = asyncio.run_coroutine_threadsafe(self._bounded(job, work), loop)
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
            if futures:  # an error, an interrupt or a consumer that stopped early: end them all before going on
                try:
                    asyncio.run_coroutine_threadsafe(self._cancel_all(), loop).result(timeout=30)
                except (concurrent.futures.TimeoutError, RuntimeError):
                    pass
