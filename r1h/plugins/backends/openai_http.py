"""HTTP for the openai backend: one aiohttp ``ClientSession`` with a keep-alive pool of ``concurrency`` connections per
replica, and every failure sorted into transient (:class:`Transient`, retried by ``openai_pool.ReplicaPool``, on
another replica when one is up) or fatal (:class:`BackendError`, one line).

Why aiohttp (a core dependency: prebuilt or pure-Python wheels, about 2 MB with its six small dependencies)? vLLM's
serving benchmark (``vllm/benchmarks/lib/endpoint_request_func.py``) and lm-eval's API models
(``lm_eval/models/api_models.py``) use it for the same job, many requests in flight over pooled keep-alive
connections. Its C parser (llhttp) does what r1h's earlier hand-written asyncio client got wrong: interim 1xx
responses are skipped, 204 has no body, gzip/deflate are decoded, duplicate ``Content-Length`` or
``Transfer-Encoding`` with ``Content-Length`` are rejected (RFC 9112 6.3), header lines and counts are capped.

Its measured cost (docs/openai-backend.md has every figure and command): 0.12 ms of CPU per request against the
hand-written client's 0.04 ms (``perf/http_cpu.py``, 256 in flight), plus about 0.2 s to import aiohttp once. End to
end (``perf/stream_sim.py --only-e2e``, 2,000 R1-length samples, 256 in flight) that is the same run time within the
shared box's noise (medians of nine runs: 15.74 s against 15.32 s, 1.03x), and about 0.5 s more CPU per run
(3.1-3.4 s against 2.6-3.2 s), which shows on short runs: Countdown-length answers, 4.9 s against 4.6 s (1.07x).

Why not the ``openai`` package's client (``AsyncOpenAI(http_client=DefaultAioHttpClient())``,
``openai/_base_client.py``: an httpx ``AsyncClient`` over aiohttp): 0.96 ms of CPU per request (``perf/http_cpu.py``),
8x this client, spent in httpx's request/response objects and the pydantic models every body is validated into,
which buy r1h nothing (``parse_choices`` checks the shape it needs and names the field that is wrong); its retries
stay on one ``base_url``, where a retry here moves to another replica; and it has no response-size cap.

Caps: header lines ``MAX_LINE`` bytes, ``MAX_HEADERS`` headers (aiohttp's defaults, named here), the body
``max_body`` bytes after decoding (so a gzip bomb is stopped too). ``timeout`` bounds each try as a whole (connect,
send, the complete answer), so a server that trickles bytes (slowloris) cannot hold a try longer.

Transient: connection refused/reset/closed, an empty reply, a truncated or malformed body, a bad status line or
header block (over the caps included), a try past ``timeout``. Fatal: a body over the cap, a bad ``ca_bundle``.
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import json
import ssl
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

from r1h.harness.core.errors import ConfigError, R1HError

RETRY_STATUS = {408, 409, 429}
MAX_RETRY_AFTER_S = 120.0
MAX_LINE = 8190  # bytes in the status line or one header line
MAX_HEADERS = 128  # header fields in one response
CONNECT_TIMEOUT_S = 30.0


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


class TryTimeout(Transient):
    """One try ran past its time (``timeout``, or what was left of the deadline)."""


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


def one_line(text: Any, limit: int = 200) -> str:
    return " ".join(str(text).split())[:limit] or "no detail"


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
    return one_line(text, 500)


@dataclass
class Replica:
    url: str  # ".../v1"
    window: int
    in_flight: int = 0
    down_until: float = 0.0
    flags: dict[str, Any] = field(default_factory=dict)  # per-server body adaptations (max-tokens field, ...)

    @property
    def endpoint(self) -> str:
        return f"{self.url}/chat/completions"

    def up(self, now: float) -> bool:
        return now >= self.down_until


def ssl_setting(verify: bool, ca_bundle: str | None) -> ssl.SSLContext | bool:
    """aiohttp's ``ssl=``: False skips verification; a context trusts ``ca_bundle``; True is the system store."""
    if not verify:
        return False
    if not ca_bundle:
        return True
    try:
        return ssl.create_default_context(cafile=ca_bundle)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"--backend-arg ca_bundle={ca_bundle}: cannot load it "
                          f"({one_line(getattr(exc, 'strerror', None) or exc)})") from None


def env_proxy(url: str) -> tuple[str | None, tuple[str, str] | None]:
    """The proxy ``HTTP_PROXY``/``HTTPS_PROXY`` name for ``url`` unless ``NO_PROXY`` exempts its host (the standard
    library's rules, which aiohttp's ``trust_env`` uses too), without its credentials, and those credentials."""
    from urllib.request import getproxies, proxy_bypass

    parts = urllib.parse.urlsplit(url)
    if parts.hostname and proxy_bypass(parts.hostname):
        return None, None
    proxy = getproxies().get(parts.scheme)
    if not proxy:
        return None, None
    found = urllib.parse.urlsplit(proxy if "://" in proxy else f"http://{proxy}")
    if found.username is None:
        return found.geturl(), None
    bare = found._replace(netloc=found.netloc.rpartition("@")[2]).geturl()
    return bare, (urllib.parse.unquote(found.username), urllib.parse.unquote(found.password or ""))


class HTTPClient:
    """POSTs JSON to replicas over one aiohttp session; made and closed inside the pool's event loop.

    Proxies are looked up once per replica here, not by aiohttp's ``trust_env``: that reads ~/.netrc and the
    environment in a worker thread on every request (two executor round trips: 0.49 against 0.27 ms of CPU per
    request under cProfile, 3,000 requests), and a ~/.netrc entry for the server would clash with the
    ``Authorization`` header (aiohttp raises ``ValueError``)."""

    def __init__(self, replicas: list[Replica], *, api_key: str, timeout: float, max_body: int,
                 tls: ssl.SSLContext | bool = True):
        """``timeout``: the most one try may take (each post may ask for less: what is left of a deadline)."""
        try:  # here, not at import: `r1h --help` and the other backends never load it
            import aiohttp
            import yarl
        except ImportError as exc:  # a core dependency, so only a broken environment gets here
            raise ConfigError(f"the openai backend needs aiohttp ({exc}): pip install 'aiohttp>=3.13.4'") from None

        self._aiohttp = aiohttp
        self.timeout = timeout
        self.max_body = max_body
        headers = {"Content-Type": "application/json", "Accept": "application/json",
                   "Authorization": f"Bearer {api_key}"}
        self._options: dict[str, dict[str, Any]] = {}  # per replica: headers, and the proxy with its credentials
        for replica in replicas:
            proxy, auth = env_proxy(replica.url)
            options: dict[str, Any] = {"headers": headers, "url": yarl.URL(replica.endpoint)}  # parsed once
            if proxy is not None:
                options["proxy"] = proxy
            if auth is not None:  # a plain-HTTP proxy reads it in the request; an HTTPS tunnel in its CONNECT
                basic = {"Proxy-Authorization": "Basic " + base64.b64encode(":".join(auth).encode()).decode()}
                if replica.url.startswith("https:"):
                    options["proxy_headers"] = basic
                else:
                    options["headers"] = {**headers, **basic}
            self._options[replica.url] = options
        window = max(r.window for r in replicas)
        connector = aiohttp.TCPConnector(limit=sum(r.window for r in replicas), limit_per_host=window, ssl=tls)
        self.session = aiohttp.ClientSession(  # no session-wide headers: aiohttp would copy them to the proxy
            connector=connector,
            timeout=aiohttp.ClientTimeout(total=timeout, sock_connect=min(CONNECT_TIMEOUT_S, timeout)),
            max_line_size=MAX_LINE, max_field_size=MAX_LINE, max_headers=MAX_HEADERS)

    async def close(self) -> None:
        await self.session.close()

    def _over(self, url: str, size: int | None) -> BackendError:
        what = "response body" if size is None else f"response body of {size} bytes is"
        return BackendError(f"{url}: {what} over the cap of {self.max_body} bytes (--backend-arg max_body_mb)")

    async def post(self, replica: Replica, payload: bytes, timeout: float | None = None) -> tuple[int, Any, bytes]:
        """POST one JSON payload to the replica's chat endpoint: (status, headers, body)."""
        aiohttp, url = self._aiohttp, replica.endpoint
        seconds = self.timeout if timeout is None else timeout
        options = self._options[replica.url]
        if seconds < self.timeout:  # else the session's
            options = {**options, "timeout": aiohttp.ClientTimeout(total=seconds,
                                                                   sock_connect=min(CONNECT_TIMEOUT_S, seconds))}
        try:
            async with self.session.post(data=payload, **options) as resp:
                length = resp.content_length
                if length is not None and "Content-Encoding" not in resp.headers:
                    if length > self.max_body:
                        raise self._over(url, length)
                    return resp.status, resp.headers, await resp.read()  # the parser stops at the length
                chunks, size = [], 0
                async for chunk in resp.content.iter_any():  # decoded bytes: the cap holds for gzip too
                    size += len(chunk)
                    if size > self.max_body:
                        raise self._over(url, None)
                    chunks.append(chunk)
                return resp.status, resp.headers, b"".join(chunks)
        except asyncio.TimeoutError:
            raise TryTimeout(f"Timeout: no complete answer within {seconds:g} s (--backend-arg timeout)") from None
        except aiohttp.ClientResponseError as exc:  # raised only by the parser: a real 4xx/5xx is returned above
            raise Transient(f"bad response: {one_line(exc.message)}") from None
        except aiohttp.ClientPayloadError as exc:  # its cause: the parser's typed error
            inner = exc.__cause__ or exc
            kind = "IncompleteRead" if type(inner).__name__ in ("ContentLengthError", "TransferEncodingError") \
                else "bad body"
            raise Transient(f"{kind}: {one_line(getattr(inner, 'message', None) or inner)}") from None
        except aiohttp.ServerDisconnectedError:
            raise Transient("ConnectionClosed: the server closed the connection without a complete answer") from None
        except aiohttp.ClientConnectorError as exc:  # refused, unreachable, DNS, TLS handshake
            error = exc.os_error
            raise Transient(f"{type(error).__name__}: {one_line(error)}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Transient(f"{type(exc).__name__}: {one_line(exc)}") from None
