"""How long an offline `r1h eval --bench all` takes to tell the user everything that is missing.

    python perf/offline_report.py [--repeats 2]

Points ``HF_ENDPOINT`` at a closed 127.0.0.1 port (an unreachable hub) with an empty ``HF_HOME`` and no
``HF_HUB_OFFLINE``, then times, in fresh subprocesses:

- ``r1h``: ``r1h eval --backend gold --bench all --data countdown=hub``: one error listing all five benchmarks;
- ``datasets``: what the old path paid for the *first* benchmark alone: ``datasets.load_dataset`` of
  HuggingFaceH4/aime_2024 against the same endpoint (huggingface_hub's retries), after which the old r1h stopped and
  named only that one.

Prints seconds, the stderr line count and whether "Retry" appears, per run, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

OLD = "import datasets\ntry:\n    datasets.load_dataset('HuggingFaceH4/aime_2024', split='train')\nexcept Exception as e:\n" \
      "    print(type(e).__name__)\n"


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def timed(cmd: list[str], home: str) -> tuple[float, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env.update(HF_ENDPOINT=f"http://127.0.0.1:{closed_port()}", HF_HOME=home)
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=home)
    return time.perf_counter() - start, out.stderr


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    for run in range(1, args.repeats + 1):
        with tempfile.TemporaryDirectory() as home:
            r1h_s, r1h_err = timed([sys.executable, "-m", "r1h.harness.cli.main", "eval", "--backend", "gold", "--bench",
                                    "all", "--data", "countdown=hub", "--no-progress", "--output",
                                    os.path.join(home, "run")], home)
            old_s, old_err = timed([sys.executable, "-c", OLD], home)
        listed = sum(1 for line in r1h_err.splitlines() if line.startswith("  "))
        print(f"run {run}: r1h {r1h_s:.1f} s ({listed} benchmarks listed, 'Retry' in stderr: {'Retry' in r1h_err}); "
              f"datasets, first benchmark only: {old_s:.1f} s ('Retry' lines: "
              f"{sum('Retry' in line for line in old_err.splitlines())}); ratio {old_s / r1h_s:.1f}x")


if __name__ == "__main__":
    main()
