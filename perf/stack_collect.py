"""What recording the stack costs a run, and how long ``r1h doctor`` takes.

- ``stack.collect(light=True)``: what every ``r1h eval`` calls (package metadata, no new imports), median of 20 calls;
- ``r1h doctor --json`` (HF_HUB_OFFLINE=1): wall time of the whole command, which imports torch in a subprocess;
- for scale: ``python -c "import torch"`` alone, the part of doctor's time that is torch's own import.

    python perf/stack_collect.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    from r1h.harness.system.stack import collect

    collect()  # warm the metadata cache of the file system
    times = []
    for _ in range(20):
        start = time.perf_counter()
        collect(light=True)
        times.append(time.perf_counter() - start)
    print(f"stack.collect(light=True): median {1000 * statistics.median(times):.0f} ms over 20 calls")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    r1h = str(Path(sys.executable).with_name("r1h"))
    for label, cmd in (("r1h doctor --json", [r1h, "doctor", "--json"]),
                       ("python -c 'import torch'", [sys.executable, "-c", "import torch"])):
        walls = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            subprocess.run(cmd, capture_output=True, env=env, timeout=300)
            walls.append(time.perf_counter() - start)
        print(f"{label}: median {statistics.median(walls):.2f} s over {args.rounds} runs "
              f"({', '.join(f'{w:.2f}' for w in walls)})")


if __name__ == "__main__":
    main()
