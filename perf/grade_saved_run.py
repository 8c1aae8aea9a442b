"""Time grading + aggregation of an R1-protocol-sized saved run (~7.5k completions) built from refdata.

The run directory is written untimed in the ``r1h eval`` samples format (completions, no verdicts):
- aime24: 30 problems x 64 samples: real long MATH-500 completions (labeled_outputs), a quarter of them ending with the
  AIME gold answer boxed, the rest with the (wrong for AIME) answer they already had;
- math500: 500 x 4: the two real labeled_outputs completions of each problem, twice each;
- gpqa_diamond (if the choice_accuracy reward is installed): 198 x 8 GPQA-shaped questions made from MATH-500 answers
  (GPQA itself is not public in plain text), completions = real long texts + "Answer: X";
- countdown: 500 x 4 refdata Countdown rows: solver equations, half of them for a neighbouring puzzle (wrong).

Timed: reading the samples files back (resume path), grading every completion with the benchmark's reward through
``grading.grade`` (worker pool), aggregation (pass@k, maj@n, bootstrap CI) and writing results.json + report.md.

    python perf/grade_saved_run.py [--refdata ../shared/refdata] [--rounds 2]

Goal: <= 20 s on the 2-core development machine.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def build_saved_run(run: Path, refdata: Path) -> dict[str, tuple]:
    """Write samples/NAME.jsonl without verdicts; return NAME -> (benchmark, samples, n)."""
    import r1h
    from r1h.harness.eval.store import RunStore

    store = RunStore(run)
    labeled = sorted((refdata / "labeled_outputs").glob("*_test_*.jsonl"))
    texts = {i: [] for i in range(500)}
    for path in labeled:
        for row in _jsonl(path):
            texts[int(row["idx"])].append(row["code"][0])
    flat = [t for i in range(500) for t in texts[i]]
    plans: dict[str, tuple] = {}

    def write(name, bench, samples, n, completion):
        records = []
        for i, sample in enumerate(samples):
            prompt = bench.prompt(sample)
            for j in range(n):
                text = completion(i, j, sample)
                records.append({"id": sample.id, "sample_index": j, "prompt": prompt, "completion": text,
                                "finish_reason": "stop", "num_tokens": len(text) // 4})
        store.samples(name).append(records)
        plans[name] = (bench, samples, n)

    aime = r1h.get_benchmark("aime24")
    samples = aime.load(str(refdata / "aime24" / "test.jsonl"))
    write("aime24", aime, samples, 64, lambda i, j, s: flat[(i * 64 + j) % len(flat)]
          + (f"\n\nSo the final answer is $\\boxed{{{s.columns['answer']}}}$." if j % 4 == 0 else ""))

    math500 = r1h.get_benchmark("math500")
    samples = math500.load(str(refdata / "math500" / "test.jsonl"))
    write("math500", math500, samples, 4, lambda i, j, s: texts[i][j % len(texts[i])])

    if "choice_accuracy" in r1h.harness.core.plugins.get_plugins().rewards:
        gpqa = r1h.get_benchmark("gpqa_diamond")
        rows = _jsonl(refdata / "math500" / "test.jsonl")[:198]
        fake = run.parent / "gpqa_like.jsonl"
        fake.write_text("".join(json.dumps({
            "Record ID": f"rec{i}", "Question": r["problem"], "Correct Answer": r["answer"],
            "Incorrect Answer 1": rows[(i + 1) % 198]["answer"] + " ", "Incorrect Answer 2": rows[(i + 2) % 198]["answer"]
            + "  ", "Incorrect Answer 3": rows[(i + 3) % 198]["answer"] + "   "}) + "\n" for i, r in enumerate(rows)))
        samples = gpqa.load(str(fake))
        write("gpqa_diamond", gpqa, samples, 8, lambda i, j, s: flat[(i * 8 + j) % len(flat)]
              + f"\n\nAnswer: {gpqa.reference_completion(s).strip()[-1] if j % 2 else 'ABCD'[j % 4]}")
    else:
        print("note: no choice_accuracy reward registered; the gpqa-like part is skipped", file=sys.stderr)

    countdown = r1h.get_benchmark("countdown")
    samples = countdown.load(str(refdata / "countdown" / "countdown_tasks_3to4_rows_00000-11023.derived.jsonl"),
                             limit=500)
    refs = [countdown.reference_completion(s) for s in samples]
    write("countdown", countdown, samples, 4, lambda i, j, s: refs[i] if j % 2 == 0 else refs[(i + 1) % len(refs)])
    return plans


def grade_and_aggregate(run: Path, plans: dict[str, tuple]) -> tuple[dict, dict[str, float]]:
    """The timed part: read back, grade, aggregate, write results.json + report.md."""
    import r1h
    from r1h.harness.eval import report
    from r1h.harness.eval.metrics import aggregate, is_correct
    from r1h.harness.eval.store import RunStore, SampleFile
    from r1h.harness.grading import pool as grading

    store = RunStore(run)
    results: dict = {"model": "saved-run", "config": {}, "versions": {}, "benchmarks": {}}
    timings: dict[str, float] = {}
    for name, (bench, samples, _n) in plans.items():
        t0 = time.perf_counter()
        stored = SampleFile(store.samples_path(name))
        stored.load()
        columns = {s.id: s.columns for s in samples}
        reward = r1h.get_reward(bench.reward)
        records = stored.records
        verdicts = grading.grade(reward, [r["completion"] for r in records], prompts=[r["prompt"] for r in records],
                                 rows=[columns[r["id"]] for r in records])
        for r, v in zip(records, verdicts, strict=True):
            r.update(extracted=v.extracted, reward=v.score, correct=is_correct(v.score), timed_out=v.timed_out)
        t1 = time.perf_counter()
        metrics = aggregate(records)
        results["benchmarks"][name] = metrics
        timings[name] = time.perf_counter() - t0
        timings["aggregate"] = timings.get("aggregate", 0.0) + time.perf_counter() - t1
    t0 = time.perf_counter()
    store.write_results(results)
    store.report_md.write_text(report.markdown(results), encoding="utf-8")
    timings["write"] = time.perf_counter() - t0
    return results, timings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--refdata", default=os.environ.get("R1H_REFDATA", str(REPO.parent / "shared" / "refdata")))
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    refdata = Path(args.refdata)
    if not refdata.is_dir():
        print(f"refdata not found at {refdata}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="r1h-perf-") as tmp:
        run = Path(tmp) / "run"
        plans = build_saved_run(run, refdata)
        total = sum(len(s) * n for _, s, n in plans.values())
        print(f"saved run: {total} completions ({', '.join(f'{k} {len(s)}x{n}' for k, (_, s, n) in plans.items())});"
              f" {os.cpu_count()} cores")
        for round_ in range(1, args.rounds + 1):
            t0 = time.perf_counter()
            results, timings = grade_and_aggregate(run, plans)
            wall = time.perf_counter() - t0
            parts = ", ".join(f"{k} {v:.2f}s" for k, v in timings.items() if k != "aggregate")
            parts += f"; of which aggregation {timings['aggregate']:.2f}s"
            print(f"round {round_}: grade + aggregate {total} completions in {wall:.2f} s ({parts})")
        for name, m in results["benchmarks"].items():
            print(f"  {name}: pass@1 {100 * m['pass@1']:.2f} maj@n {100 * m['maj@n']:.2f} "
                  f"timeouts {m['timeouts']} unparseable {m['unparseable']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
