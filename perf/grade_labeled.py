"""Grade the 1,000 real labeled MATH-500 completions two ways and compare with the Qwen2.5-Math grader's verdicts.

(a) today's baseline: a plain sequential math-verify loop (parse, then verify, default 5 s SIGALRM timeouts, main
    thread);
(b) r1h: ``math_accuracy`` through the batch grader ``r1h.harness.grading.pool.grade`` (process pool, hard per-item budget).

Usage: python perf/grade_labeled.py [--refdata DIR] [--quick] [--inline] [--workers N] [--show-disagreements]

``--inline`` skips the batch grader's pool and compares CPU seconds in this one process: r1h's ``grade_one`` loop
against the plain loop. On a machine that other jobs share, the pool's wall time is dominated by per-item budget
overruns and worker restarts, while the CPU-time ratio of the two loops stays meaningful.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFDATA = Path(os.environ.get("R1H_REFDATA", REPO.parent / "shared" / "refdata"))


def load_labeled(refdata: Path) -> list[dict]:
    """Rows of both labeled runs: run, idx, completion, gold (MATH-500 ``answer``), qwen (the grader's bool)."""
    rows = []
    files = sorted((refdata / "labeled_outputs").glob("*.jsonl"))
    if not files:
        sys.exit(f"no labeled runs under {refdata / 'labeled_outputs'}")
    for path in files:
        run = "Qwen2.5-Math-7B" if "Qwen2.5-Math-7B" in path.name else "Sky-T1-27B"
        with path.open(encoding="utf-8") as fh:
            for line_no, line in enumerate(fh, 1):
                row = json.loads(line)
                try:
                    rows.append(
                        {
                            "run": run,
                            "idx": int(row["idx"]),
                            "completion": row["code"][0],
                            "gold": row["answer"],
                            "qwen": bool(row["score"][0]),
                            "qwen_pred": row["pred"][0],
                        }
                    )
                except (KeyError, IndexError, TypeError) as exc:
                    sys.exit(f"{path}:{line_no}: unexpected row shape ({exc})")
    return rows


def plain_loop(rows: list[dict]) -> tuple[list[bool], float]:
    """Today's way: math-verify parse + verify per item, default timeouts, main thread."""
    from math_verify import parse, verify

    verdicts = []
    start, cpu = time.perf_counter(), time.process_time()
    for row in rows:
        gold = parse("$" + row["gold"] + "$")
        pred = parse(row["completion"])
        verdicts.append(bool(verify(gold, pred)))
    return verdicts, time.perf_counter() - start, time.process_time() - cpu


def r1h_inline_cpu(rows: list[dict]) -> float:
    """CPU seconds of r1h's per-item work in this process (load-independent; the pool splits it over workers)."""
    from r1h.plugins.rewards.math import MathAccuracy

    reward = MathAccuracy()
    reward.grade_one("\\boxed{1}", None, {"answer": "1"})  # imports, outside the clock
    cpu = time.process_time()
    for row in rows:
        reward.grade_one(row["completion"], None, {"answer": row["gold"]})
    return time.process_time() - cpu


def r1h_grade(rows: list[dict], workers: int | None) -> tuple[list, float, str]:
    import r1h

    reward = r1h.get_reward("math_accuracy")
    completions = [r["completion"] for r in rows]
    gold_rows = [{"answer": r["gold"]} for r in rows]
    start = time.perf_counter()
    from r1h.harness.grading import pool as grading

    pool = grading.GradingPool(workers) if workers else None  # the clock includes starting the workers
    results = grading.grade(reward, completions, rows=gold_rows, pool=pool)
    if pool is not None:
        pool.close()
    how = f"r1h.harness.grading.pool.grade, {workers or grading.default_workers()} workers, cold pool"
    return results, time.perf_counter() - start, how


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--refdata", type=Path, default=DEFAULT_REFDATA)
    ap.add_argument("--quick", action="store_true", help="skip the slow plain math-verify baseline (~160 s)")
    ap.add_argument("--workers", type=int, default=None, help="batch grader worker processes (default: all cores)")
    ap.add_argument("--show-disagreements", action="store_true")
    ap.add_argument("--inline", action="store_true", help="no pool: compare CPU seconds of the two loops")
    args = ap.parse_args(argv)

    import logging

    logging.getLogger("math_verify").setLevel(logging.ERROR)  # the baseline logs every timeout
    rows = load_labeled(args.refdata)
    print(f"{len(rows)} labeled completions from {args.refdata / 'labeled_outputs'}; {os.cpu_count()} cores")

    if args.inline:
        r1h_cpu = r1h_inline_cpu(rows)
        print(f"r1h:   {r1h_cpu:7.2f} s  CPU, sequential grade_one in this process")
        if not args.quick:
            plain, plain_s, plain_cpu = plain_loop(rows)
            plain_agree = sum(p == r["qwen"] for p, r in zip(plain, rows, strict=True))
            print(f"plain: {plain_cpu:7.2f} s  CPU ({plain_s:.2f} s wall)  agreement with Qwen labels "
                  f"{plain_agree}/{len(rows)}")
            print(f"speed-up (CPU): {plain_cpu / r1h_cpu:.1f}x")
        return 0

    results, r1h_s, how = r1h_grade(rows, args.workers)
    ours = [r.score == 1.0 for r in results]
    timeouts = sum(bool(getattr(r, "timed_out", False)) for r in results)
    agree = sum(o == r["qwen"] for o, r in zip(ours, rows, strict=True))
    print(f"r1h:   {r1h_s:7.2f} s  agreement with Qwen labels {agree}/{len(rows)}  timeouts {timeouts}  [{how}]")

    if args.show_disagreements:
        for o, r, res in zip(ours, rows, results, strict=True):
            if o != r["qwen"]:
                print(
                    f"  {r['run']:16} idx {r['idx']:3}  gold {r['gold']!r}  ours {o} ({res.extracted!r})  "
                    f"qwen {r['qwen']} ({r['qwen_pred']!r})"
                )

    print(f"r1h:   {r1h_inline_cpu(rows):7.2f} s  CPU for the same work in one process, sequential [grade_one]")

    if not args.quick:
        plain, plain_s, plain_cpu = plain_loop(rows)
        plain_agree = sum(p == r["qwen"] for p, r in zip(plain, rows, strict=True))
        print(
            f"plain: {plain_s:7.2f} s  agreement with Qwen labels {plain_agree}/{len(rows)}  "
            f"[sequential math-verify, default timeouts; {plain_cpu:.2f} s CPU]"
        )
        print(f"speed-up (wall): {plain_s / r1h_s:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
