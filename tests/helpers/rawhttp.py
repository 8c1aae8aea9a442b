"""A loopback HTTP/1.1 server on raw sockets for the openai backend's fault tests: each request takes the next mode
of ``modes`` (``"ok"`` once they run out, or ``then``), and a mode writes whatever bytes the fault needs.

Bounded everywhere: a socket timeout on every read, at most ``MAX_REQUESTS`` requests per connection, endless or slow
modes stop after a fixed count. Listens on 127.0.0.1 only.
"""

from __future__ import annotations

import gzip
import json
import socket
import struct
import threading
import time
import zlib

MAX_REQUESTS = 200
READ_TIMEOUT_S = 10.0


def answer(body: dict, text: str | None = None) -> bytes:
    """A chat completion that names the request: ``<last message>|seed=<seed>``."""
    if text is None:
        text = f"{body['messages'][-1]['content']}|seed={body.get('seed')}"
    return json.dumps({"choices": [{"index": 0, "message": {"content": text}, "finish_reason": "stop"}],
                       "usage": {"completion_tokens": 2}}).encode()


def response(status: str, payload: bytes, extra: str = "", close: bool = False) -> bytes:
    return (f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {len(payload)}\r\n{extra}"
            + ("Connection: close\r\n" if close else "") + "\r\n").encode() + payload


def _chunked(payload: bytes, trailer: bytes = b"") -> bytes:
    half = len(payload) // 2
    parts = [payload[:half], payload[half:]]
    return b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n" + trailer + b"\r\n"


def _reset(conn: socket.socket) -> None:
    """Close with RST rather than FIN."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


class RawServer:
    """``modes``: a list consumed one per request; a mode is a name of :meth:`_mode` below. ``then``: the mode once the
    list is empty. ``bodies``/``times``/``modes_used``: what came, in arrival order; ``connections``: accepted."""

    def __init__(self, then: str = "ok", answer_text: str | None = None):
        self.modes: list[str] = []
        self.then = then
        self.answer_text = answer_text
        self.bodies: list[dict] = []
        self.heads: list[bytes] = []  # request line and headers
        self.times: list[float] = []
        self.modes_used: list[str] = []
        self.connections = 0
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._sock = socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self._sock.settimeout(0.2)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._threads: list[threading.Thread] = []
        accept = threading.Thread(target=self._accept, daemon=True)
        accept.start()
        self._threads.append(accept)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=5)
        self._sock.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.lock:
                self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read_request(self, conn: socket.socket, buffer: bytes) -> tuple[dict | None, bytes, bytes]:
        while b"\r\n\r\n" not in buffer:
            chunk = conn.recv(65536)
            if not chunk or len(buffer) > 1 << 20:
                return None, b"", b""
            buffer += chunk
        head, _, rest = buffer.partition(b"\r\n\r\n")
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        while len(rest) < length:
            chunk = conn.recv(65536)
            if not chunk:
                return None, b"", b""
            rest += chunk
        return json.loads(rest[:length]), rest[length:], head

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(READ_TIMEOUT_S)
        buffer = b""
        try:
            for _ in range(MAX_REQUESTS):
                body, buffer, head = self._read_request(conn, buffer)
                if body is None or self._stop.is_set():
                    return
                with self.lock:
                    mode = self.modes.pop(0) if self.modes else self.then
                    self.bodies.append(body)
                    self.heads.append(head)
                    self.times.append(time.monotonic())
                    self.modes_used.append(mode)
                if not self._mode(mode, conn, body):
                    return
        except OSError:
            return
        finally:
            conn.close()

    def _mode(self, mode: str, conn: socket.socket, body: dict) -> bool:
        """Answer one request; False ends the connection."""
        send = conn.sendall
        ok = answer(body, self.answer_text)
        if mode == "ok":
            send(response("200 OK", ok))
        elif mode == "ok_close":  # announced
            send(response("200 OK", ok, close=True))
            return False
        elif mode == "close_unannounced":  # a keep-alive answer, then the server closes anyway
            send(response("200 OK", ok))
            return False
        elif mode == "reset_after_good":
            send(response("200 OK", ok))
            time.sleep(0.05)
            _reset(conn)
            return False
        elif mode in ("100", "103"):
            interim = b"HTTP/1.1 100 Continue\r\n\r\n" if mode == "100" else \
                b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n"
            send(interim + response("200 OK", ok))
        elif mode == "204":
            send(b"HTTP/1.1 204 No Content\r\n\r\n")
        elif mode == "gzip":
            send(response("200 OK", gzip.compress(ok), "Content-Encoding: gzip\r\n"))
        elif mode == "gzip_bomb":  # 3 MB of answer in a few KB
            send(response("200 OK", gzip.compress(answer(body, "x" * (3 << 20))), "Content-Encoding: gzip\r\n"))
        elif mode == "deflate":
            send(response("200 OK", zlib.compress(ok), "Content-Encoding: deflate\r\n"))
        elif mode in ("chunked", "chunked_trailers"):
            trailer = b"X-Checksum: 1\r\n" if mode == "chunked_trailers" else b""
            send(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
                 + (b"Trailer: X-Checksum\r\n" if trailer else b"") + b"\r\n" + _chunked(ok, trailer))
        elif mode == "two_lengths":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Length: %d\r\n\r\n%s" % (len(ok), ok))
        elif mode == "te_and_length":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n" + _chunked(ok))
        elif mode == "endless_headers":
            send(b"HTTP/1.1 200 OK\r\n")
            for i in range(20000):  # bounded: 20,000 header lines, far past any cap
                send(b"X-H%d: v\r\n" % i)
        elif mode == "huge_header":
            send(b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * (1 << 20) + b"\r\n\r\n")
        elif mode == "slowloris":  # the answer's bytes, one every 50 ms: about 10 s for the whole
            data = response("200 OK", ok)
            for i in range(len(data)):
                if self._stop.is_set():
                    return False
                send(data[i:i + 1])
                time.sleep(0.05)
        elif mode == "short_then_silence":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + ok[:20])
            self._stop.wait(5)
            return False
        elif mode == "reset_mid_body":
            send(b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + ok[:20])
            time.sleep(0.05)
            _reset(conn)
            return False
        elif mode == "html":
            send(response("200 OK", b"<html><body>502 Bad Gateway</body></html>", "Content-Type: text/html\r\n"))
        elif mode == "wrong_shape":
            send(response("200 OK", b'{"choices": [{"message": "hi"}]}'))
        elif mode == "list":
            send(response("200 OK", b"[1, 2]"))
        elif mode == "content_number":
            send(response("200 OK", b'{"choices": [{"message": {"content": 5}}]}'))
        elif mode == "not_utf8":
            send(response("200 OK", b'\xff\xfe{"choices": \xc3\x28}'))
        elif mode == "oversize":
            send(response("200 OK", b" " * (1024 * 1024 + 10)))
        elif mode == "oversize_stream":  # no Content-Length: read to the close, so only the cap stops it
            send(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            for _ in range(40):
                send(b" " * 65536)
            return False
        elif mode == "hang":
            self._stop.wait(5)
            return False
        elif mode in ("reject_tokens_field", "reject_extra"):  # vLLM-era servers; transformers serve
            key, detail = ("max_completion_tokens", b'{"detail": "Unrecognized request argument: '
                                                    b'max_completion_tokens"}') if mode == "reject_tokens_field" \
                else ("top_k", b'{"detail": "Unexpected fields in the request: {\'top_k\', \'min_p\', '
                               b'\'repetition_penalty\'}"}')
            send(response("422 Unprocessable Entity", detail) if key in body else response("200 OK", ok))
        elif mode == "bad_status":
            send(b"GARBAGE NOT HTTP\r\n\r\n")
            return False
        elif mode == "empty":
            return False
        elif mode in ("429", "503"):
            status = "429 Too Many Requests" if mode == "429" else "503 Service Unavailable"
            send(response(status, b'{"detail": "busy"}', "Retry-After: 1\r\n"))
        else:
            raise ValueError(f"unknown mode {mode!r}")
        return True
