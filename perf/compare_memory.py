"""Peak memory and time of ``r1h compare`` on two large run directories: samples must be streamed, not held.

    python perf/compare_memory.py [--problems 2000] [--samples 16] [--chars 4000] [--repeats 2] [--u2028]

Writes two runs in the ``r1h eval`` format (problems x samples lines each, completions of ``--chars`` characters; no
truncation fields in results.json and no CI for one benchmark, so compare reads every sample file for the paired
tests, the CIs and the truncation table), then runs ``r1h compare --format json`` in a fresh subprocess per repeat and
prints its wall time, its peak RSS (``ru_maxrss`` of the child) and the sha256 of its output with the temporary
folder's name masked (the same output before and after a change is the same hash). Runs the ``r1h`` importable from ``PYTHONPATH`` / the current environment.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def write_run(path: Path, problems: int, samples: int, chars: int, seed: int, u2028: bool = False) -> None:
    rng = random.Random(seed)
    (path / "samples").mkdir(parents=True)
    results: dict = {"model": f"model-{seed}", "config": {"benchmarks": {}}, "benchmarks": {}}
    for bench in ("math500", "aime24"):
        correct = 0
        with open(path / "samples" / f"{bench}.jsonl", "w", encoding="utf-8") as fh:
            for p in range(problems):
                for i in range(samples):
                    ok = rng.random() < 0.4 + 0.1 * seed
                    correct += ok
                    length = rng.choice(["stop", "stop", "stop", "length"])
                    text = "<think>" + "x" * rng.randint(chars // 2, chars) + "</think> " + ("\u2028 " if u2028 else "") \
                        + "\\boxed{1}"
                    fh.write(json.dumps({"id": f"p{p}", "sample_index": i, "prompt": "q", "completion": text,
                                         "extracted": "1", "reward": float(ok), "correct": ok,
                                         "finish_reason": length, "num_tokens": rng.randint(10, 4000)},
                                        ensure_ascii=False) + "\n")
        total = problems * samples
        entry = {"pass@1": correct / total, "n_problems": problems, "n_samples": samples, "version": "1"}
        if bench == "math500":
            entry["pass@1_ci95"] = [0.0, 1.0]
        results["benchmarks"][bench] = entry
        results["config"]["benchmarks"][bench] = {"generation": {"max_tokens": 4000, "temperature": 0.6}}
    (path / "results.json").write_text(json.dumps(results), encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", type=int, default=2000)
    parser.add_argument("--samples", type=int, default=16)
    parser.add_argument("--chars", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--u2028", action="store_true", help="a U+2028 in every completion (left raw by "
                        "ensure_ascii=False, as r1h eval writes it)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        a, b = Path(tmp) / "a", Path(tmp) / "b"
        write_run(a, args.problems, args.samples, args.chars, 0, args.u2028)
        write_run(b, args.problems, args.samples, args.chars, 1, args.u2028)
        size = sum(f.stat().st_size for f in (a / "samples").iterdir()) / 2**20
        print(f"two runs of {args.problems} problems x {args.samples} samples x 2 benchmarks, {size:.0f} MiB of "
              "samples each")
        code = ("import resource, sys\nfrom r1h.harness.cli.main import main\n"
                "try:\n    main(['compare', sys.argv[1], sys.argv[2], '--format', 'json', '--bootstrap', '200'])\n"
                "except SystemExit as e:\n    code = e.code\nelse:\n    code = 0\n"
                "print('PEAK', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
                "sys.exit(code)\n")
        for repeat in range(args.repeats):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", code, str(a), str(b)], capture_output=True, text=True,
                                  check=False, cwd=tmp)  # not the checkout: PYTHONPATH picks the r1h to measure
            wall = time.perf_counter() - start
            peak = next((int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK")), -1)
            digest = hashlib.sha256(proc.stdout.replace(tmp, "TMP").encode()).hexdigest()[:16]
            print(f"repeat {repeat + 1}: exit {proc.returncode}, {wall:.2f} s, peak RSS {peak / 1024:.0f} MiB, "
                  f"output sha256 {digest}")


if __name__ == "__main__":
    main()
