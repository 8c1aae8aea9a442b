"""The README's main job with default flags against ``--backend-arg threads=1``, interleaved (A B A B ...).

    python perf/main_job.py [--rounds 2] [--also-threads N ...] [--keep DIR]

Runs ``r1h eval --bench countdown --limit 8 -n 2 --max-tokens 256`` (same seed) as a subprocess per variant, in
alternation so that load from other work on a shared machine hits both alike, checks that both variants produced the
same completions, and prints each wall time, the mean ratio default/threads=1 and the per-round ratios. The goal
(issue 8): default flags within 1.1x of the best manual setting. ``--also-threads 2`` adds torch's own default on a
2-core box (what r1h used before the thread default) as a third variant.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

JOB = ["eval", "--bench", "countdown", "--limit", "8", "-n", "2", "--max-tokens", "256", "--no-progress"]


def r1h_command() -> list[str]:
    script = Path(sys.executable).with_name("r1h")
    return [str(script)] if script.exists() else [sys.executable, "-c", "from r1h.cli import main; main()"]


def completions(run_dir: Path) -> dict[tuple[str, int], str]:
    out = {}
    for path in sorted(run_dir.rglob("samples/*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                out[(str(record["id"]), int(record["sample_index"]))] = record["completion"]
    return out


def run(label: str, extra: list[str], root: Path, round_no: int) -> tuple[float, dict]:
    output = root / f"{label}-{round_no}"
    start = time.perf_counter()
    proc = subprocess.run([*r1h_command(), *JOB, "--output", str(output), *extra], capture_output=True, text=True,
                          timeout=3600)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"{label} failed ({proc.returncode}): {proc.stderr.strip().splitlines()[-1:]}")
    return seconds, completions(output)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--also-threads", type=int, nargs="*", default=[])
    parser.add_argument("--keep", default=None, help="keep the run directories here")
    args = parser.parse_args()
    variants = [("default", []), ("threads=1", ["--backend-arg", "threads=1"])]
    variants += [(f"threads={n}", ["--backend-arg", f"threads={n}"]) for n in args.also_threads]
    root = Path(args.keep or tempfile.mkdtemp(prefix="r1h-main-job-"))
    root.mkdir(parents=True, exist_ok=True)
    times: dict[str, list[float]] = {label: [] for label, _ in variants}
    outputs: dict[str, dict] = {}
    try:
        for round_no in range(args.rounds):
            order = variants if round_no % 2 == 0 else variants[::-1]  # A B, then B A: no variant always goes first
            for label, extra in order:
                seconds, texts = run(label, extra, root, round_no)
                times[label].append(round(seconds, 1))
                outputs.setdefault(label, texts)
                print(f"round {round_no + 1}: {label}: {seconds:.1f} s", file=sys.stderr, flush=True)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    same = outputs["default"] == outputs["threads=1"]
    per_round = [round(a / b, 2) for a, b in zip(times["default"], times["threads=1"], strict=True)]
    mean = {label: round(sum(v) / len(v), 1) for label, v in times.items()}
    print(json.dumps({
        "job": "r1h " + " ".join(JOB), "wall_s": times, "mean_s": mean,
        "ratio_default_over_threads1": round(mean["default"] / mean["threads=1"], 2),
        "per_round_ratio": per_round, "same_completions": same,
        "samples": len(outputs["default"]),
    }, indent=2))


if __name__ == "__main__":
    main()
