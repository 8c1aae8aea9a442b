"""The eval runner's fakes, shared by test_runner.py and test_stream.py: a benchmark of ten problems, an exact-match
reward and a deterministic backend (its answers depend only on the problem and the seed; ``CALLS`` records each
``generate`` call)."""

from __future__ import annotations

from r1h import Backend, Benchmark, Completion, Reward, Sample

CALLS: list[list[tuple[str, int, int]]] = []  # per generate() call: (id, sample_index, seed)


class FakeBench(Benchmark):
    name = "h6_bench"
    version = "3"
    default_samples = 4
    reward = "h6_exact"
    default_source = None
    generation_overrides = {"max_tokens": 64}

    def load(self, source=None, limit=None):
        count = int(source) if source else 10
        samples = [Sample(id=f"p{i}", columns={"answer": str(i)}) for i in range(count)]
        return samples[:limit] if limit else samples

    def prompt(self, sample):
        return [{"role": "user", "content": f"say {sample.columns['answer']}"}]

    def reference_completion(self, sample):
        return sample.columns["answer"]


class GreedyBench(FakeBench):
    name = "h6_greedy"
    default_samples = 1
    generation_overrides = {"temperature": 0.0, "max_tokens": 256}


class ExactReward(Reward):
    name = "h6_exact"
    columns = ("answer",)

    def score(self, completion, prompt=None, **row):
        return 1.0 if completion.strip() == row["answer"] else 0.0

    def extract(self, completion, prompt=None, **row):
        return completion.strip() or None


def expected_text(pid: str, seed: int) -> str:
    """The fake model: right unless the seed is 0 mod 3; wrong answers are one of two strings; problem p0 never right."""
    if pid == "p0" or seed % 3 == 0:
        return "" if seed % 7 == 0 else f"w{seed % 2}"
    return pid[1:]


class FakeBackend(Backend):
    name = "h6_fake"

    def generate(self, requests, config):
        CALLS.append([(r.id, i, s) for r in requests for i, s in zip(r.sample_indices, r.seeds, strict=True)])
        out = []
        for r in requests:
            out.append([
                Completion(text=expected_text(r.id, s), finish_reason="length" if s % 5 == 0 else "stop", num_tokens=7)
                for s in r.seeds
            ])
        return out
