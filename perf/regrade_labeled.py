"""Regrade both real labeled MATH-500 runs (refdata/labeled_outputs) with r1h, lighteval and lm-eval.

    python perf/regrade_labeled.py [--refdata DIR] [--out DIR] [--grader NAME ...] [--item-timeout S]

Each labeled run becomes a saved r1h run directory (ids = MATH-500 unique_id, the Qwen2.5-Math grader's verdict as
``correct``), then ``r1h.tools.regrade.regrade`` grades it with every grader, the foreign ones in their own
virtualenvs (built on first use under ~/.cache/r1h/graders). Prints per run: pass@1 per grader, errors and timeouts
per grader, and how many samples each pair of graders disagrees on; writes each regrade under --out.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_REFDATA = Path(os.environ.get("R1H_REFDATA", REPO.parent / "shared" / "refdata"))
RUNS = {"Qwen2.5-Math-7B": "skythought_Qwen2.5-Math-7B_math500_test_qwen25-math-cot_-1_seed0_t0.0_s0_e-1.jsonl",
        "Sky-T1-27B": "skythought_Sky-T1-math-correct-5K-27B_math500_test_Sky-T1_-1_seed0_t0.0_s0_e-1.jsonl"}


def make_run(refdata: Path, name: str, out: Path) -> Path:
    """The labeled outputs of one model as a saved greedy r1h run directory."""
    from r1h import get_benchmark

    data = refdata / "math500" / "test.jsonl"
    by_problem = {s.raw["problem"]: s for s in get_benchmark("math500").load(str(data))}
    run = out / name
    (run / "samples").mkdir(parents=True, exist_ok=True)
    correct = []
    with open(refdata / "labeled_outputs" / RUNS[name], encoding="utf-8") as src, \
            open(run / "samples" / "math500.jsonl", "w", encoding="utf-8") as dst:
        for line in src:
            row = json.loads(line)
            ok = bool(row["score"][0])
            correct.append(ok)
            dst.write(json.dumps({
                "id": by_problem[row["question"]].id, "sample_index": 0, "prompt": row["question"],
                "completion": row["code"][0], "extracted": row["pred"][0], "reward": float(ok), "correct": ok,
                "finish_reason": "stop", "num_tokens": 0, "idx": row["idx"],
            }) + "\n")
    (run / "results.json").write_text(json.dumps({
        "model": name, "config": {"data": {"math500": str(data)}}, "versions": {},
        "benchmarks": {"math500": {"pass@1": sum(correct) / len(correct), "n_samples": 1, "n_problems": len(correct),
                                   "version": "1"}},
    }))
    return run


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--refdata", type=Path, default=DEFAULT_REFDATA)
    ap.add_argument("--out", type=Path, default=Path("runs/regrade-labeled"))
    ap.add_argument("--grader", dest="graders", action="append", default=None)
    ap.add_argument("--run", dest="runs", action="append", choices=list(RUNS), default=None)
    ap.add_argument("--item-timeout", type=float, default=10.0)
    args = ap.parse_args()
    from r1h.tools.compare import load_run
    from r1h.tools.regrade import regrade, write_outputs

    graders = args.graders or ["r1h", "lighteval", "lm-eval", "lm-eval:math_verify"]
    for name in args.runs or list(RUNS):
        run_dir = make_run(args.refdata, name, args.out)
        start = time.monotonic()
        result = regrade(load_run(run_dir), graders, log=lambda msg: print(msg, file=sys.stderr),
                         item_timeout=args.item_timeout)
        took = time.monotonic() - start
        write_outputs(result, run_dir / "regrade", force=True)
        entry = result["summary"]["benchmarks"]["math500"]
        print(f"\n{name}: {entry['n_samples']} samples, regraded in {took:.0f} s")
        print(f"  recorded (Qwen2.5-Math grader): {100 * entry['pass@1']['recorded']:.2f}")
        for g in graders:
            restarts = result["summary"]["graders"][g].get("restarts", 0)
            print(f"  {g:20} {100 * entry['pass@1'][g]:6.2f}  errors {entry['errors'][g]:3}  "
                  f"timeouts {entry['timeouts'][g]:3}  restarts {restarts}")
        items = result["items"]
        print(f"  samples where all graders agree: {sum(len({bool(it.verdicts[g].correct) for g in graders}) == 1 for it in items)}")
        for a, b in itertools.combinations(["recorded", *graders], 2):
            def verdict(it, g):
                return bool(it.recorded) if g == "recorded" else bool(it.verdicts[g].correct)
            print(f"  disagree {a} vs {b}: {sum(verdict(it, a) != verdict(it, b) for it in items)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
