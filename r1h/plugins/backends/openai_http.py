"""A small asyncio HTTP/1.1 client for the openai backend: keep-alive connections per replica, ``Content-Length``,
chunked or read-to-close bodies, TLS through ``ssl``, a body cap, and errors sorted into transient and fatal.

Why not a library:

- ``httpx`` (what ``openai`` uses; installed here as ``httpx2``) spends 4-9 ms of CPU per request in its connection
  pool at 64-256 requests in flight (measured with perf/stream_sim.py's simulator: its pool scan is linear in the
  open connections), so the client, not the engine, set the pace: 9x the engine's ideal time on the simulator,
  where this client is within a few percent (0.5 ms per request). Eight replicas finishing short Countdown answers
  need hundreds of requests a second;
- the ``openai`` client adds that cost, has no response-size cap, validates bodies into models that either accept a
  string ``message`` and a numeric ``content`` or fail with a long traceback, and cannot move a retry to another
  replica.

No proxy support (``HTTP_PROXY`` is ignored) and no HTTP/2: point ``--base-url`` at the servers.
Transient (:class:`Transient`, retried by the pool): connection refused/reset/closed, a truncated body
(``IncompleteRead``), a bad status line or headers. Fatal (:class:`BackendError`): a body over the cap.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from functools import lru_cache
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



@lru_cache(maxsize=1)
def _ssl_context() -> ssl.SSLContext:
    return ssl.create_default_context()


async def connect(replica: Replica, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, bool]:
    """An idle keep-alive connection of the replica (reused: True), else a new one."""
    if replica.idle:
        reader, writer = replica.idle.pop()
        if not reader.at_eof() and not writer.is_closing():
            return reader, writer, True
        writer.close()
    context = _ssl_context() if replica.tls else None
    reader, writer = await asyncio.wait_for(
        asyncio.open_connection(replica.host, replica.port, ssl=context, limit=MAX_HEADER_BYTES),
        min(30.0, timeout))
    return reader, writer, False


async def exchange(replica: Replica, payload: bytes, *, api_key: str, max_body: int,
                   timeout: float) -> tuple[int, dict[str, str], bytes]:
    """POST one JSON payload to the replica's chat endpoint: (status, headers, body)."""
    url = f"{replica.url}/chat/completions"
    try:
        reader, writer, reused = await connect(replica, timeout)
    except OSError as exc:  # refused, unreachable, TLS handshake
        raise Transient(f"{type(exc).__name__}: {' '.join(str(exc).split())[:200] or 'no detail'}") from None
    keep = False
    try:
        head = (f"POST {replica.path} HTTP/1.1\r\nHost: {replica.host_header}\r\nContent-Type: application/json"
                f"\r\nAccept: application/json\r\nAuthorization: Bearer {api_key}\r\n"
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
        data, reusable = await _read_body(reader, headers, max_body, url)
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
