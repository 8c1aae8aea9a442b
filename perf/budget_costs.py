"""What bounding the inline rewards costs, against isolating them, and the budget figures of the hostile corpus.

    python perf/budget_costs.py [--items 400] [--workers 2] [--budget 1] [--skip-corpus]

1. Bounded inline vs isolated: each inline reward grades the same ``--items`` realistic completions (about 2,000
   characters, R1-style think/answer text) twice, inline in this process (the bounded path r1h uses) and through a
   warm ``GradingPool`` of ``--workers`` processes (what isolating it would cost: pickling, a pipe round trip and the
   worker's scheduling per item). Prints microseconds per item for each and their ratio.
2. The hostile corpus (``tests/helpers/hostile_corpus.py``): every case through ``grade`` for every reward, one item per
   call, with ``--budget``; prints the items tried, the max per-item time per reward (and the case), the timeouts,
   and the peak RSS of any grading worker (``VmHWM`` of every live worker, sampled every 20 ms: a high-water mark,
   so only a worker killed within 20 ms of its peak could be missed; ``RUSAGE_CHILDREN`` would count the parent's
   pages at fork time).

Timings are noisy on a shared machine: run it twice and compare ratios within one run.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import r1h  # noqa: E402
from r1h.harness.grading.pool import GradingPool, grade  # noqa: E402

INLINE = ["think_format", "tag_count", "choice_accuracy", "count_accuracy", "countdown_equation", "reasoning_steps",
          "repetition_penalty", "soft_overlong"]


def realistic(i: int) -> str:
    steps = "\n".join(f"Step {k}: we combine {i % 97} and {k} to get {i % 97 + k}, then check it." for k in range(25))
    return f"<think>\nFirst, read the problem.\n{steps}\nFinally, the answer.\n</think>\n<answer>{i % 7}</answer> " \
           f"The answer is $\\boxed{{{i % 7}}}$."


def inline_vs_isolated(items: int, workers: int) -> None:
    from helpers import hostile_corpus as H

    completions = [realistic(i) for i in range(items)]
    print(f"1. bounded inline vs isolated, {items} completions of ~{len(completions[0])} chars, {workers} workers")
    with GradingPool(workers) as pool:
        for name in INLINE:
            reward = r1h.get_reward(name)
            rows = [H.GOLD[name]] * items
            start = time.perf_counter()
            inline = grade(reward, completions, rows=rows)
            t_inline = time.perf_counter() - start
            reward.isolate = True  # the same reward, sent to worker processes
            pool.warm(reward, H.GOLD[name])
            start = time.perf_counter()
            isolated = pool.grade(reward, completions, rows=rows)
            t_isolated = time.perf_counter() - start
            assert [r.score for r in inline] == [r.score for r in isolated], name
            print(f"   {name:20s} inline {1e6 * t_inline / items:8.1f} us/item   isolated "
                  f"{1e6 * t_isolated / items:8.1f} us/item   isolated/inline {t_isolated / t_inline:6.1f}x")


def corpus_figures(budget: float, workers: int) -> None:
    from helpers import hostile_corpus as H

    corpus = H.build()
    names = [row["name"] for row in r1h.list_plugins("reward")]
    print(f"2. hostile corpus: {len(corpus)} cases x {len(names)} rewards, budget {budget} s, one item per call")
    tried = 0
    peak = [0]
    stop = threading.Event()
    with GradingPool(workers) as pool:

        def sample() -> None:
            while not stop.is_set():
                for pid in pool.stats().pids:
                    try:
                        status = Path(f"/proc/{pid}/status").read_text()
                    except OSError:
                        continue
                    for line in status.splitlines():
                        if line.startswith("VmHWM:"):
                            peak[0] = max(peak[0], int(line.split()[1]))
                time.sleep(0.02)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        for name in names:
            reward = r1h.get_reward(name)
            if reward.isolate:
                pool.warm(reward, H.GOLD.get(name, {}))
            worst, worst_label, timeouts, restarts = 0.0, "", 0, pool.restarts
            cases = corpus if not reward.isolate else H.small()  # big cases are refused before any work there
            for case in cases:
                row = H.gold_for(name, case, reward.columns)
                start = time.monotonic()
                [result] = grade(reward, [case.completion], rows=[row], budget=budget, pool=pool)
                elapsed = time.monotonic() - start
                tried += 1
                timeouts += result.timed_out
                if elapsed > worst:
                    worst, worst_label = elapsed, case.label
            print(f"   {name:20s} {len(cases):3d} items  max {worst:6.2f} s ({worst_label})  timeouts {timeouts}  "
                  f"worker restarts {pool.restarts - restarts}")
        stop.set()
        sampler.join()
    self_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"   items tried {tried}; peak worker RSS {peak[0] / 1024:.0f} MB; this process (holding the corpus) "
          f"{self_peak:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--budget", type=float, default=1.0)
    parser.add_argument("--skip-corpus", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("R1H_LOAD_PLUGINS", "")
    inline_vs_isolated(args.items, args.workers)
    if not args.skip_corpus:
        corpus_figures(args.budget, args.workers)


if __name__ == "__main__":
    main()
