"""The HTTP side of the openai backend: replicas, in-flight windows, retries, deadlines and the body cap.

One asyncio loop in a background thread keeps hundreds of requests in flight without hundreds of threads, over a
small hand-written HTTP/1.1 client (keep-alive connections per replica, ``Content-Length``, chunked or read-to-close
bodies, TLS through ``ssl``). Why not a library:

- ``httpx`` (what ``openai`` uses; installed here as ``httpx2``) spends 4-9 ms of CPU per request in its connection
  pool at 64-256 requests in flight (measured with perf/stream_sim.py's simulator: its pool scan is linear in the
  open connections), so the client, not the engine, set the pace: 9x the engine's ideal time on the simulator,
  where this client is within a few percent. Eight replicas finishing short Countdown answers need hundreds of
  requests a second;
- the ``openai`` client adds that cost, has no response-size cap, validates bodies into models that either accept a
  string ``message`` and a numeric ``content`` or fail with a long traceback, and cannot move a retry to another
  replica.

What it does: a body cap (``max_body_mb``) checked against ``Content-Length`` and while reading; a per-try timeout
(``timeout``) and an overall deadline per request, retries included (``deadline``, ``asyncio.wait_for``), so a server
that trickles bytes or keeps answering 503 cannot hold a request forever; ``Retry-After`` (seconds or an HTTP date)
honoured in the backoff; each request to the replica with the most free room in its window, a retry to another
replica when one is up. No proxy support (``HTTP_PROXY`` is ignored): point ``--base-url`` at the servers.

Transient (retried): connection refused/reset/closed, a truncated body (``IncompleteRead``), a bad status line, a
try past ``timeout``, HTTP 408/409/429/5xx, a body that is not UTF-8 or not JSON. Fatal (one :class:`BackendError`
line naming the server and the problem): other 4xx, an oversize body, a JSON body of the wrong shape, the deadline.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import queue
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from r1h.harness.errors import R1HError

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


MAX_HEADER_BYTES = 64 * 1024


@dataclass
class Replica:
    url: str  # ".../v1"
    window: int
    in_flight: int = 0
    down_until: float = 0.0
    flags: dict[str, Any] = field(default_factory=dict)  # per-server body adaptations (max-tokens field, ...)
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = field(default_factory=list)

    def __post_init__(self):
        parts = urllib.parse.urlsplit(self.url)
        self.tls = parts.scheme == "https"
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if self.tls else 80)
        self.path = f"{parts.path.rstrip('/')}/chat/completions"
        self.host_header = parts.netloc

    def up(self, now: float) -> bool:
        return now >= self.down_until


class _Stale(Exception):
    """A reused keep-alive connection the server had closed: resend on a fresh one (not a failed try)."""


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str], cap: int, url: str) -> tuple[bytes, bool]:
    """The body, and whether the connection can be reused."""
    def over(size: int) -> BackendError:
        return BackendError(f"{url}: response body over the cap of {cap} bytes (--backend-arg max_body_mb)"
                            if size < 0 else
                            f"{url}: response body of {size} bytes is over the cap of {cap} bytes "
                            f"(--backend-arg max_body_mb)")

    try:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks, size = [], 0
            while True:
                line = await reader.readline()
                try:
                    n = int(line.split(b";")[0].strip(), 16)
                except ValueError:
                    raise Transient(f"bad chunk header {line[:40]!r}") from None
                if n == 0:
                    while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks), True
                size += n
                if size > cap:
                    raise over(-1)
                chunks.append(await reader.readexactly(n))
                await reader.readexactly(2)
        length = headers.get("content-length")
        if length is not None:
            if not length.strip().isdigit():
                raise Transient(f"bad Content-Length {length[:40]!r}")
            n = int(length)
            if n > cap:
                raise over(n)
            return await reader.readexactly(n), True
        chunks, size = [], 0  # no length: read to the end of the connection
        while chunk := await reader.read(65536):
            size += len(chunk)
            if size > cap:
                raise over(-1)
            chunks.append(chunk)
        return b"".join(chunks), False
    except asyncio.IncompleteReadError as exc:
        raise Transient(f"IncompleteRead: the connection closed after {len(exc.partial)} of "
                        f"{exc.expected} body bytes") from None


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

    async def _connect(self, replica: Replica) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
        if replica.idle:
            reader, writer = replica.idle.pop()
            if not reader.at_eof() and not writer.is_closing():
                return reader, writer, True
            writer.close()
        context = None
        if replica.tls:
            if self._ssl is None:
                self._ssl = ssl.create_default_context()
            context = self._ssl
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(replica.host, replica.port, ssl=context, limit=MAX_HEADER_BYTES),
            min(30.0, self.read_timeout))
        return reader, writer, False

    async def _exchange(self, replica: Replica, payload: bytes) -> tuple[int, dict[str, str], bytes]:
        url = f"{replica.url}/chat/completions"
        try:
            reader, writer, reused = await self._connect(replica)
        except OSError as exc:  # refused, unreachable, TLS handshake
            raise Transient(f"{type(exc).__name__}: {' '.join(str(exc).split())[:200] or 'no detail'}") from None
        keep = False
        try:
            head = (f"POST {replica.path} HTTP/1.1\r\nHost: {replica.host_header}\r\nContent-Type: application/json"
                    f"\r\nAccept: application/json\r\nAuthorization: Bearer {self.api_key}\r\n"
                    f"Content-Length: {len(payload)}\r\n\r\n")
            writer.write(head.encode("latin-1") + payload)
            await writer.drain()
            line = await reader.readline()
            if not line:
                if reused:
                    raise _Stale()
                raise Transient("ConnectionClosed: the server closed the connection without answering")
            parts = line.split(None, 2)
            if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
                raise Transient(f"BadStatusLine: {line[:60]!r}")
            status = int(parts[1])
            headers: dict[str, str] = {}
            while True:
                raw = await reader.readline()
                if raw in (b"\r\n", b"\n"):
                    break
                if not raw:
                    raise Transient("IncompleteRead: the connection closed inside the response headers")
                key, _, value = raw.decode("latin-1").partition(":")
                headers[key.strip().lower()] = value.strip()
            data, reusable = await _read_body(reader, headers, self.max_body, url)
            keep = reusable and headers.get("connection", "").lower() != "close"
            return status, headers, data
        except (ConnectionError, OSError) as exc:
            if reused and isinstance(exc, (ConnectionResetError, BrokenPipeError)):
                raise _Stale() from None
            raise Transient(f"{type(exc).__name__}: {' '.join(str(exc).split())[:200] or 'no detail'}") from None
        except ValueError as exc:  # a header line over the limit
            raise Transient(f"bad response headers ({exc})") from None
        finally:
            if keep:
                replica.idle.append((reader, writer))
            else:
                writer.close()

    async def _post_once(self, replica: Replica, body: dict[str, Any]) -> Any:
        url = f"{replica.url}/chat/completions"
        payload = json.dumps(body).encode("utf-8")
        for _ in range(3):
            try:
                status, headers, data = await asyncio.wait_for(self._exchange(replica, payload), self.read_timeout)
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
