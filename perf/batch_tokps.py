"""Batched vs one-at-a-time generation throughput of the transformers backend on the embedded SmolLM2.

    python perf/batch_tokps.py [--prompts 16] [--new-tokens 64] [--batch-size 16] [--model PATH] [--threads N]

Generates the same sampled rows (same seeds) twice: with ``batch_size=N`` and with ``batch_size=1``, and prints the
generated tokens per second of each and their ratio (the goal of issue 3: batched >= 3x one-at-a-time).
"""

from __future__ import annotations

import argparse
import json
import time

from r1h.harness.types import GenerationConfig, GenerationRequest
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=16)
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default=None)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    backend = TransformersBackend(model=args.model, batch_size=str(args.batch_size), device=args.device)
    backend.load()
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
