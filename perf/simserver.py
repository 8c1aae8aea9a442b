"""A loopback OpenAI-compatible server that simulates a continuous-batching engine (for tests and stream_sim.py).

``/v1/chat/completions`` requests join one ``ClockedEngine`` (tests/fakes/vllm/sim.py, shared with the fake offline
vLLM): ``slots`` sequences at once, one token per ``step_s`` each, a finished one answered and its slot refilled at
the next step. A request's output length is ``len=K`` in its last message, else drawn from ``lengths`` by prompt and
seed. The response text names the prompt tail, seed and length; ``usage.completion_tokens`` is the length.

Standard library asyncio HTTP/1.1 (keep-alive, Content-Length bodies only), hand-written so the simulator runs
without the serve extra and adds no framework overhead to the timing it measures. Listens on 127.0.0.1 only.
``fail`` makes it answer every request with HTTP 503 (a broken replica); ``max_requests`` bounds a test server.

Run standalone: ``python perf/simserver.py --port 8123 --slots 128 --step-ms 2``.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import re
import sys
import threading
import time
from pathlib import Path


def _load_scheduler():
    """The fake vllm package's scheduler (tests/fakes/vllm/sim.py, standard library only), loaded by file path under
    a private name: putting tests/fakes on sys.path would make every later ``import vllm`` in the process (TRL's
    availability check, say) find the fake."""
    path = Path(__file__).resolve().parents[1] / "tests" / "fakes" / "vllm" / "sim.py"
    spec = importlib.util.spec_from_file_location("_r1h_fake_vllm_sim", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


_sim = _load_scheduler()
ClockedEngine, output_length = _sim.ClockedEngine, _sim.output_length


def request_length(body: dict, lengths: list[int] | None) -> int:
    messages = body.get("messages") or [{}]
    content = messages[-1].get("content", "")
    text = content if isinstance(content, str) else json.dumps(content)
    found = re.findall(r"len=(\d+)", text)
    if found:
        length = int(found[-1])
    elif lengths:
        length = output_length(f"{text}|{body.get('seed')}", lengths)
    else:
        length = 5
    cap = body.get("max_completion_tokens") or body.get("max_tokens") or 16
    return max(1, min(length, int(cap)))


class SimServer:
    def __init__(self, slots: int = 128, step_s: float = 0.002, lengths: list[int] | None = None,
                 fail: bool = False, max_requests: int | None = None, port: int = 0):
        self.slots, self.step_s, self.lengths = slots, step_s, lengths
        self.fail = fail
        self.max_requests = max_requests
        self.port = port
        self.bodies: list[dict] = []
        self.arrivals: list[tuple[float, int]] = []  # (time, output length) per completion request, arrival order
        self.last_done = 0.0
        self.served = 0
        self._futures: dict[str, asyncio.Future] = {}
        self._ids = 0
        self.engine = ClockedEngine(slots, step_s)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._wake: asyncio.Event | None = None

    # ----- the engine loop -----

    async def _engine_loop(self) -> None:
        assert self._wake is not None
        while True:
            if not self.engine.busy:
                self._wake.clear()
                await self._wake.wait()
                continue
            for rid, tokens in self.engine.advance():
                future = self._futures.pop(rid, None)
                if future is not None and not future.done():
                    future.set_result(tokens)
            await asyncio.sleep(max(0.0, self.engine.next_tick() - time.monotonic()))

    async def _complete(self, body: dict) -> tuple[int, dict]:
        self.bodies.append(body)
        if self.fail:
            return 503, {"detail": "this replica is broken"}
        length = request_length(body, self.lengths)
        self.arrivals.append((time.monotonic(), length))
        self._ids += 1
        rid = str(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._futures[rid] = future
        self.engine.add(rid, length)
        assert self._wake is not None
        self._wake.set()
        tokens = await future
        self.last_done = time.monotonic()
        cap = body.get("max_completion_tokens") or body.get("max_tokens") or 16
        content = body["messages"][-1].get("content", "")
        tail = content if isinstance(content, str) else "parts"
        text = f"{tail}|seed={body.get('seed')}|n={tokens}"
        choice = {"index": 0, "message": {"role": "assistant", "content": text},
                  "finish_reason": "length" if tokens >= int(cap) else "stop"}
        return 200, {"id": f"sim-{rid}", "object": "chat.completion", "choices": [choice],
                     "usage": {"prompt_tokens": 1, "completion_tokens": tokens, "total_tokens": tokens + 1}}

    # ----- HTTP -----

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                line = await reader.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers = {}
                while True:
                    h = await reader.readline()
                    if h in (b"\r\n", b"\n", b""):
                        break
                    k, _, v = h.decode("latin-1").partition(":")
                    headers[k.strip().lower()] = v.strip()
                data = await reader.readexactly(int(headers.get("content-length", "0") or 0))
                self.served += 1
                if self.max_requests is not None and self.served > self.max_requests:
                    status, payload = 503, {"detail": "request budget of this test server spent"}
                elif method == "GET" and path in ("/health", "/v1/models"):
                    status, payload = 200, {"ok": True}
                elif method == "GET" and path == "/stats":  # what the benchmark needs for the ideal time
                    status, payload = 200, self.stats()
                elif method == "POST" and path == "/v1/chat/completions":
                    status, payload = await self._complete(json.loads(data))
                else:
                    status, payload = 404, {"detail": f"no route {method} {path}"}
                out = json.dumps(payload).encode()
                writer.write(f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {len(out)}"
                             f"\r\n\r\n".encode() + out)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, ValueError):
            return
        finally:
            writer.close()
            try:
                await writer.wait_closed()
            except (ConnectionError, asyncio.CancelledError):
                pass

    async def _serve(self, started: threading.Event) -> None:
        self._wake = asyncio.Event()
        server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, backlog=1024)
        self.port = server.sockets[0].getsockname()[1]
        self._stop = asyncio.Event()
        engine = asyncio.get_running_loop().create_task(self._engine_loop())
        started.set()
        async with server:
            await self._stop.wait()
        engine.cancel()
        current = asyncio.current_task()
        tasks = [t for t in asyncio.all_tasks() if t is not current]
        for task in tasks:  # the connection handlers: end them before the loop closes
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def stats(self) -> dict:
        first = self.arrivals[0][0] if self.arrivals else 0.0
        return {"lengths": [n for _, n in self.arrivals], "span_s": max(0.0, self.last_done - first),
                "slots": self.slots, "step_s": self.step_s, "max_running": self.engine.max_running,
                "cpu_s": time.process_time()}

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> SimServer:
        """Serve from a daemon thread (tests); ``stop`` ends it."""
        started = threading.Event()
        self._loop = asyncio.new_event_loop()

        def run():
            asyncio.set_event_loop(self._loop)
            try:
                self._loop.run_until_complete(self._serve(started))
            except RuntimeError:
                pass

        self._thread = threading.Thread(target=run, name="simserver", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("simserver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
            if self._thread is not None:
                self._thread.join(timeout=5)
            self._loop.close()
            self._loop = None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--slots", type=int, default=128)
    parser.add_argument("--step-ms", type=float, default=2.0)
    parser.add_argument("--lengths", default=None, help="JSON file: a list of output lengths")
    args = parser.parse_args()
    lengths = json.loads(Path(args.lengths).read_text()) if args.lengths else None
    server = SimServer(args.slots, args.step_ms / 1000, lengths, port=args.port)
    started = threading.Event()

    async def run():
        task = asyncio.create_task(server._serve(started))
        while not started.is_set():
            await asyncio.sleep(0.01)
        print(f"simserver listening on {server.url} (slots {args.slots}, step {args.step_ms} ms)", flush=True)
        await task

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
