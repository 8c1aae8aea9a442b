"""Grading overlaps generation: the streaming runner against the old lock-step loop, same fake engine and reward.

    python perf/stream_overlap.py [--samples 400] [--gen-ms 5] [--grade-ms 4]

The fake engine finishes one sample every ``--gen-ms`` (a sleep, so CPU load barely matters); the reward takes
``--grade-ms`` per item (inline, a sleep). The ideal wall time is max(generation, grading): everything overlapped.
"lock-step" is the pre-streaming loop (generate 32, grade them, append, repeat), driven through the same grader
and store; "streaming" is :func:`r1h.harness.eval.pipeline.stream_benchmark`. Neither includes loading, results or the
plot. Prints wall / ideal for both.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from r1h import Backend, Benchmark, Completion, Reward, Sample, hookimpl  # noqa: E402
from r1h.harness.core.types import Generated  # noqa: E402

ARGS = argparse.Namespace(samples=400, gen_ms=5.0, grade_ms=4.0)


class Bench(Benchmark):
    name = "perf_overlap"
    default_samples = 4
    reward = "perf_sleepy"

    def load(self, source=None, limit=None):
        return [Sample(id=f"q{i}", columns={"answer": "1"}) for i in range(ARGS.samples // 4)]

    def prompt(self, sample):
        return [{"role": "user", "content": "say 1"}]

    def reference_completion(self, sample):
        return "1"


class Sleepy(Reward):
    name = "perf_sleepy"
    columns = ("answer",)

    def score(self, completion, prompt=None, **row):
        time.sleep(ARGS.grade_ms / 1000)
        return 1.0 if completion == row["answer"] else 0.0


class Engine(Backend):
    name = "perf_engine"

    def stream(self, requests, config):
        for r in requests:
            for i in r.sample_indices:
                time.sleep(ARGS.gen_ms / 1000)
                yield Generated(r, i, Completion(text="1", num_tokens=1))


class Plugin:
    @hookimpl
    def r1h_register_benchmarks(self, register):
        register("perf_overlap", Bench)

    @hookimpl
    def r1h_register_rewards(self, register):
        register("perf_sleepy", Sleepy)

    @hookimpl
    def r1h_register_backends(self, register):
        register("perf_engine", Engine)


def lock_step(out: Path) -> float:
    """The old runner's loop: a chunk of 32 samples generated, then graded, then appended."""
    from r1h.harness.core.types import sample_seed
    from r1h.harness.eval.pipeline import make_record
    from r1h.harness.eval.plan import EvalOptions, plan_benchmarks
    from r1h.harness.eval.resume import missing_pairs
    from r1h.harness.eval.store import SampleFile
    from r1h.harness.grading.pool import grade

    plan = plan_benchmarks(EvalOptions(bench="perf_overlap", backend="perf_engine"))[0]
    sink = SampleFile(out / "lockstep.jsonl")
    engine = Engine()
    start = time.perf_counter()
    flat = [(s, i) for s, idx in missing_pairs(plan, set()) for i in idx]
    for k in range(0, len(flat), 32):
        chunk = flat[k:k + 32]
        requests = [plan.benchmark.request(s, [i], [sample_seed(0, s.id, i)]) for s, i in chunk]
        generated = [g for r in requests for g in engine.stream([r], plan.generation)]
        verdicts = grade(plan.reward, [g.completion.text for g in generated],
                         prompts=[g.request.messages for g in generated], rows=[{"answer": "1"}] * len(generated))
        sink.append([make_record(g, v) for g, v in zip(generated, verdicts, strict=True)])
    return time.perf_counter() - start


def streaming(out: Path) -> float:
    """The streaming runner's engine -> grader -> store stage (what ``r1h eval`` runs per benchmark)."""
    from r1h.harness.eval.pipeline import stream_benchmark
    from r1h.harness.eval.plan import EvalOptions, plan_benchmarks
    from r1h.harness.eval.resume import missing_pairs
    from r1h.harness.eval.store import SampleFile

    plan = plan_benchmarks(EvalOptions(bench="perf_overlap", backend="perf_engine"))[0]
    sink = SampleFile(out / "stream.jsonl")
    start = time.perf_counter()
    written = stream_benchmark(plan, Engine(), sink, missing_pairs(plan, set()))
    assert written == ARGS.samples
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=ARGS.samples)
    parser.add_argument("--gen-ms", type=float, default=ARGS.gen_ms)
    parser.add_argument("--grade-ms", type=float, default=ARGS.grade_ms)
    parser.parse_args(namespace=ARGS)
    ARGS.samples -= ARGS.samples % 4
    from r1h.harness.core import plugins

    plugins._CURRENT = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(Plugin(),))
    ideal = max(ARGS.gen_ms, ARGS.grade_ms) * ARGS.samples / 1000
    with tempfile.TemporaryDirectory() as tmp:
        old = lock_step(Path(tmp))
        new = streaming(Path(tmp))
    print(f"{ARGS.samples} samples, engine {ARGS.gen_ms} ms/sample, reward {ARGS.grade_ms} ms/item, "
          f"ideal {ideal:.2f} s")
    print(f"lock-step (chunks of 32): {old:.2f} s = {old / ideal:.2f}x ideal")
    print(f"streaming:                {new:.2f} s = {new / ideal:.2f}x ideal")


if __name__ == "__main__":
    main()
