"""How long the run store takes to read a large samples file: resume's ``load`` (keys and counters) and the
aggregation's ``iter_records`` (every record, one line at a time).

    python perf/store_read.py [--lines 100000] [--chars 2000] [--repeats 2]

Writes one samples file of ``--lines`` records (completions of ``--chars`` characters) with ``SampleFile.append``,
then times ``RunStore.samples(...)`` (load, with the eval schema) and a full ``iter_records()`` pass, best of 3 per
repeat. Runs the ``r1h`` importable from ``PYTHONPATH`` / the current environment (run it from outside the checkout
to measure another tree).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=100_000)
    parser.add_argument("--chars", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    from r1h.harness.eval.store import SAMPLE_SCHEMA, RunStore

    with tempfile.TemporaryDirectory() as tmp:
        store = RunStore(Path(tmp))
        store.ensure_root()
        samples = store.samples("bench", schema=SAMPLE_SCHEMA)
        batch = []
        for i in range(args.lines):
            batch.append({"id": f"p{i // 8}", "sample_index": i % 8, "prompt": "q", "completion": "x" * args.chars,
                          "extracted": "1", "reward": 1.0, "correct": i % 3 == 0, "finish_reason": "stop",
                          "num_tokens": 100})
            if len(batch) == 1000:
                samples.append(batch)
                batch = []
        samples.append(batch)
        for repeat in range(args.repeats):
            load = scan = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                loaded = store.samples("bench", schema=SAMPLE_SCHEMA)
                load = min(load, time.perf_counter() - start)
                start = time.perf_counter()
                count = sum(1 for _ in loaded.iter_records())
                scan = min(scan, time.perf_counter() - start)
            print(f"repeat {repeat + 1}: {args.lines} lines: load {load:.3f} s ({len(loaded.keys)} keys), "
                  f"iter_records {scan:.3f} s ({count} records)")


if __name__ == "__main__":
    main()
