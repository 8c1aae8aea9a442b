"""Generation throughput of the transformers backend on the embedded SmolLM2: continuous vs static batches, and
batched vs one at a time.

    python perf/batch_tokps.py --mode batching [--prompts 16] [--new-tokens 256] [--batch-size 16] [--rounds 1]
    python perf/batch_tokps.py --mode batch [--prompts 16] [--new-tokens 64] [--batch-size 16]

``--mode batching`` (issue 8): the same Countdown prompts (the benchmark's own, with its ``<think>`` prefill; output
lengths vary, since some samples answer early and others run to the limit) through ``stream`` with
``batching=static`` and ``batching=continuous`` (transformers' ``ContinuousBatchingManager``), alternating the order
each round, and prints the useful tokens per second of each (tokens of the completions, not padding) and the ratio
continuous/static (goal >= 2x, or a documented reason).

``--mode batch`` (issue 3): the same sampled rows (same seeds) with ``batch_size=N`` and with ``batch_size=1``; goal:
batched >= 3x one-at-a-time.
"""

from __future__ import annotations

import argparse
import json
import time

from r1h.harness.core.types import GenerationConfig, GenerationRequest
from r1h.plugins.backends.transformers import TransformersBackend

# Long-form prompts, like the eval workload (reasoning traces rarely stop early); rows that stop early still occupy
# their batch slot until the longest row ends, which the tokens counted here honestly reflect.
TOPICS = [
    "a lighthouse keeper", "the water cycle", "how a bicycle works", "a robot learning to paint", "volcanoes",
    "the history of the printing press", "a trip to the moon", "how vaccines work", "a dragon who loves books",
    "photosynthesis", "the game of chess", "a city under the sea", "how computers store numbers", "migrating birds",
    "the first winter of a young fox", "why the seasons change",
]
QUESTIONS = [f"Write a detailed, multi-paragraph explanation or story about {t}." for t in TOPICS]


def measure(backend: TransformersBackend, requests, config) -> tuple[float, int]:
    tokens = 0
    start = time.perf_counter()
    for per_request in backend.generate(requests, config):
        tokens += sum(c.num_tokens for c in per_request)
    return time.perf_counter() - start, tokens


def streamed(backend: TransformersBackend, requests, config) -> tuple[float, int, dict[str, int]]:
    tokens, reasons = 0, {"stop": 0, "length": 0}
    start = time.perf_counter()
    for item in backend.stream(iter(requests), config):
        tokens += item.completion.num_tokens
        reasons[item.completion.finish_reason] = reasons.get(item.completion.finish_reason, 0) + 1
    return time.perf_counter() - start, tokens, reasons


def compare_batching(backend: TransformersBackend, args) -> dict:
    import r1h

    bench = r1h.get_benchmark("countdown")
    samples = bench.load(None, limit=args.prompts)
    requests = [bench.request(s, [0], [1000 + i]) for i, s in enumerate(samples)]
    config = GenerationConfig(temperature=0.6, top_p=0.95, max_tokens=args.new_tokens)
    backend.batching = "static"
    streamed(backend, requests[:1], GenerationConfig(temperature=0.6, max_tokens=4))  # warm-up
    runs: dict[str, list[dict]] = {"static": [], "continuous": []}
    for round_no in range(args.rounds):
        order = ("static", "continuous") if round_no % 2 == 0 else ("continuous", "static")
        for mode in order:
            backend.batching = mode
            seconds, tokens, reasons = streamed(backend, requests, config)
            assert backend.describe()["batching_used"] == mode, backend.describe()
            runs[mode].append({"seconds": round(seconds, 1), "tokens": tokens, "tok_per_s": round(tokens / seconds, 1),
                               "finish": reasons})
    mean = {m: sum(r["tok_per_s"] for r in v) / len(v) for m, v in runs.items()}
    return {"mode": "batching", "prompts": args.prompts, "new_tokens": args.new_tokens,
            "batch_size": args.batch_size, "inflight": backend.inflight or args.batch_size, **runs,
            "continuous_over_static": round(mean["continuous"] / max(mean["static"], 1e-9), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("batching", "batch"), default="batching")
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=None, help="256 for --mode batching, 64 for batch")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--inflight", type=int, default=0, help="rows in the continuous manager (0: batch size)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: the backend's default)")
    args = parser.parse_args()
    args.new_tokens = args.new_tokens or (256 if args.mode == "batching" else 64)
    extra = {"threads": str(args.threads)} if args.threads else {}
    if args.inflight:
        extra["inflight"] = str(args.inflight)
    backend = TransformersBackend(model=args.model, batch_size=str(args.batch_size), device=args.device, **extra)
    backend.load()
    if args.mode == "batching":
        import torch

        result = compare_batching(backend, args)
        print(json.dumps({"model": backend.model_id, "device": backend.device, "threads": torch.get_num_threads(),
                          **result}, indent=2))
        return
    requests = [
        GenerationRequest(f"q{i}", [{"role": "user", "content": QUESTIONS[i % len(QUESTIONS)]}], [0], [1000 + i])
        for i in range(args.prompts)
    ]
    config = GenerationConfig(temperature=0.6, top_p=0.95, max_tokens=args.new_tokens)
    backend.batch_size = 1
    measure(backend, requests[:1], GenerationConfig(temperature=0.6, max_tokens=4))  # warm-up
    runs = {}
    for label, size in (("batched", args.batch_size), ("one_at_a_time", 1)):
        backend.batch_size = size
        seconds, tokens = measure(backend, requests, config)
        runs[label] = {"batch_size": size, "seconds": round(seconds, 2), "tokens": tokens,
                       "tok_per_s": round(tokens / seconds, 1)}
    ratio = runs["batched"]["tok_per_s"] / max(runs["one_at_a_time"]["tok_per_s"], 1e-9)
    import torch

    print(json.dumps({"model": backend.model_id, "device": backend.device, "threads": torch.get_num_threads(),
                      "prompts": args.prompts,
                      "new_tokens": args.new_tokens, **runs, "speedup": round(ratio, 2)}, indent=2))


if __name__ == "__main__":
    main()
