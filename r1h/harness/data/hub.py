"""Is the Hugging Face Hub reachable? One bounded probe per process, before any hub dataset is loaded.

Why not let ``datasets.load_dataset`` find out: on an unreachable endpoint huggingface_hub retries each request with
backoff (five retries, "Retrying in 8s [Retry 5/5]" on stderr), so one missing dataset costs about 30 s, and
``r1h eval --bench all`` pays it per benchmark. Here a single HEAD request to the endpoint (``HF_ENDPOINT``, default
https://huggingface.co) runs in a daemon thread with a hard deadline (``R1H_HUB_PROBE_S``, default 2 s; DNS lookups
ignore socket timeouts, the thread join does not). Any HTTP answer, even an error status, means reachable. The
standard library's urllib is used because httpx/requests are not r1h dependencies and huggingface_hub's own session
is the retrying one; a TLS failure (a corporate CA urllib does not know) counts as reachable, so the probe never
blocks a hub that huggingface_hub could use. ``R1H_HUB_PROBE_S=0`` turns the probe off. With ``HF_HUB_OFFLINE`` /
``HF_DATASETS_OFFLINE`` set nothing is probed: datasets then reads its cache only, and fails fast when the data is
not there.
"""

from __future__ import annotations

import os
import ssl
import threading
import urllib.error
import urllib.request

from r1h.harness.core.errors import DataError
from r1h.harness.system import settings

DEFAULT_ENDPOINT = "https://huggingface.co"
OFFLINE_HINT = "set HF_HUB_OFFLINE=1 to read them from the local cache without network retries"
_TRUE = {"1", "true", "yes", "on"}
_probed: dict[str, str | None] = {}  # endpoint -> None (reachable) or why not
_lock = threading.Lock()


class HubUnreachableError(DataError):
    """The hub endpoint did not answer the probe (the message names the endpoint and the reason)."""


def endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def offline_mode() -> bool:
    """Whether the user asked for no network (huggingface_hub's and datasets' variables)."""
    return any(os.environ.get(v, "").strip().lower() in _TRUE for v in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def probe_timeout() -> float:
    """Seconds the probe may take (``R1H_HUB_PROBE_S``, default 2; 0 turns the probe off)."""
    value = settings.get("R1H_HUB_PROBE_S")
    return 0.0 if value <= 0 else max(0.1, value)


def _head(url: str, timeout: float, out: list) -> None:
    try:
        request = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "r1h-hub-probe"})
        with urllib.request.urlopen(request, timeout=timeout):  # noqa: S310 - the user's HF endpoint
            out.append(None)
    except urllib.error.HTTPError:  # the server answered: reachable
        out.append(None)
    except Exception as exc:  # URLError, timeout, OSError, a bad endpoint URL
        reason = getattr(exc, "reason", None) or exc
        if isinstance(exc, ssl.SSLError) or isinstance(reason, ssl.SSLError):
            out.append(None)  # something answered TLS: leave certificates to huggingface_hub
        else:
            out.append(f"{type(exc).__name__}: {reason}")


def unreachable_reason(url: str | None = None, timeout: float | None = None) -> str | None:
    """None when ``url`` (the hub endpoint) answers within ``timeout`` seconds, else why not. Cached per URL."""
    url = url or endpoint()
    with _lock:
        if url in _probed:
            return _probed[url]
        timeout = probe_timeout() if timeout is None else timeout
        if timeout <= 0:
            return None  # probing turned off
        out: list = []
        worker = threading.Thread(target=_head, args=(url, timeout, out), daemon=True, name="r1h-hub-probe")
        worker.start()
        worker.join(timeout + 0.5)
        reason = out[0] if out else f"no answer within {timeout:g} s"
        _probed[url] = reason
        return reason


def require_hub(what: str) -> None:
    """Raise :class:`HubUnreachableError` naming ``what`` when the hub cannot be reached (no-op in offline mode)."""
    if offline_mode():
        return
    reason = unreachable_reason()
    if reason is not None:
        raise HubUnreachableError(f"{what}: the hub at {endpoint()} cannot be reached ({reason})")


def forget() -> None:
    """Drop cached probe results (tests; a network that came back)."""
    with _lock:
        _probed.clear()


def require_hub_model(name: str) -> None:
    """The same probe for a model id before any weights are fetched: one line with the way out, instead of
    huggingface_hub's retries (``Retrying in 8s``, about 26 s) and a traceback."""
    try:
        require_hub(f"--model {name}")
    except HubUnreachableError as exc:
        raise HubUnreachableError(f"{exc}; if the model is in the local cache, set HF_HUB_OFFLINE=1 to load it from "
                                  "there, or pass a local folder (--model /path/to/checkpoint)") from None
