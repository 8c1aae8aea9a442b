"""CPU per request of an HTTP client at N requests in flight, against ``perf/simserver.py`` (a subprocess, 1 ms
steps, 3-token answers: the server is never the bottleneck and the client's own cost is what is left).

Clients: ``r1h`` (the openai backend's ``openai_http.HTTPClient``, aiohttp) and ``openai`` (the ``openai`` package's
``AsyncOpenAI`` with ``DefaultAioHttpClient``, when installed). CPU is ``time.process_time()`` of this process over
the timed requests, after a warm-up round that opens the connections.

Usage: ``python perf/http_cpu.py [--requests 3000] [--in-flight 256] [--client r1h|openai|both]``.
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MESSAGES = [{"role": "user", "content": "q len=3"}]


def start_server(slots: int) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, str(REPO / "perf" / "simserver.py"), "--slots", str(slots), "--step-ms",
                             "1"], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"simserver did not start: {line!r}")
    return proc, line.split("listening on ")[1].split()[0]


async def timed(one, requests: int, in_flight: int) -> float:
    room = asyncio.Semaphore(in_flight)

    async def bounded():
        async with room:
            await one()

    await asyncio.gather(*[bounded() for _ in range(in_flight)])  # warm-up: the connections are open
    start = time.process_time()
    await asyncio.gather(*[bounded() for _ in range(requests)])
    return (time.process_time() - start) / requests * 1000


async def r1h_client(url: str, args) -> float:
    import json

    from r1h.plugins.backends.openai_http import HTTPClient, Replica

    replica = Replica(f"{url}/v1", args.in_flight)
    client = HTTPClient([replica], api_key="EMPTY", timeout=60, max_body=1 << 24)
    payload = json.dumps({"messages": MESSAGES, "max_completion_tokens": 10}).encode()
    try:
        return await timed(lambda: client.post(replica, payload), args.requests, args.in_flight)
    finally:
        await client.close()


async def openai_client(url: str, args) -> float:
    import openai

    try:
        import httpx2 as httpx  # what openai 3.x is built on
    except ImportError:
        import httpx

    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="EMPTY", http_client=openai.DefaultAioHttpClient(
        limits=httpx.Limits(max_connections=args.in_flight, max_keepalive_connections=args.in_flight)))
    try:
        return await timed(lambda: client.chat.completions.create(model="m", messages=MESSAGES, max_tokens=10),
                           args.requests, args.in_flight)
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--client", choices=["r1h", "openai", "both"], default="both")
    args = parser.parse_args()
    proc, url = start_server(args.in_flight)
    try:
        for name, run in (("r1h", r1h_client), ("openai", openai_client)):
            if args.client not in (name, "both"):
                continue
            try:
                ms = asyncio.run(run(url, args))
            except ImportError as exc:
                print(f"{name:7} skipped: {exc}")
                continue
            print(f"{name:7} {ms:.3f} ms of CPU per request ({args.requests} requests, {args.in_flight} in flight)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
