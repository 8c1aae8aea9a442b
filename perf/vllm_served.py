"""The openai backend against vLLM's real OpenAI server, beside the offline vllm backend, on the same prompts and seeds.

    python perf/vllm_served.py [--problems 32] [-n 4] [--max-tokens 256] [--rounds 2] [--compiled]

Run it with the Python of an environment that has vLLM (``.tox/vllm/bin/python``). The server is started the way the
README says for a CPU box (``python -m vllm.entrypoints.openai.api_server`` on 127.0.0.1, chunked prefill off, a
batched-token budget of the context length, a fifth of RAM for the KV cache); ``r1h eval --backend openai`` runs
against it with default concurrency, then ``r1h eval --backend vllm`` offline with the same numbers. It prints
generation tok/s of each (span from "model ready" to the last sample in eval.log), their ratio (the goal: served >=
0.95x offline) and how many samples have the same text in both.
"""

from __future__ import annotations

import argparse
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vllm_offline import REPO, job_args, run_r1h  # noqa: E402


def start_server(model: str, compiled: bool, log: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--model", model, "--host", "127.0.0.1",
           "--port", str(port), "--gpu-memory-utilization", "0.2", "--max-num-batched-tokens", "8192",
           "--no-enable-chunked-prefill", *([] if compiled else ["--enforce-eager"])]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=open(log, "w"), cwd=REPO)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit("the server exited: " + log.read_text()[-2000:])
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=2):
                return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(1)
    proc.kill()
    raise SystemExit("the server did not come up")


def main() -> None:
    args = job_args(argparse.ArgumentParser(description=__doc__.split("\n")[0])).parse_args()
    from r1h.plugins.backends.models import default_gguf
    from r1h.plugins.backends.vllm_model import vllm_folder

    model = str(vllm_folder(default_gguf()))
    for round_ in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            proc, url = start_server(model, args.compiled, Path(tmp) / "server.log")
            try:
                served = run_r1h(args, Path(tmp) / "served", backend="openai",
                                 extra=("--base-url", url, "--model", model))
            finally:
                proc.terminate()
                proc.wait(timeout=120)
            offline = run_r1h(args, Path(tmp) / "offline")
            s_rate, o_rate = served["tokens"] / served["gen_s"], offline["tokens"] / offline["gen_s"]
            same = sum(1 for k, v in offline["texts"].items() if served["texts"].get(k) == v)
            print(f"round {round_}: served {served['tokens']} tokens in {served['gen_s']:.0f} s = {s_rate:.1f} tok/s; "
                  f"offline {offline['tokens']} tokens in {offline['gen_s']:.0f} s = {o_rate:.1f} tok/s; ratio "
                  f"{s_rate / o_rate:.2f}x; same text {same}/{len(offline['texts'])}", flush=True)


if __name__ == "__main__":
    main()
