"""AIME 2024 (30 problems), DeepSeek-R1 protocol: n=64 samples, pass@1 as their mean."""

from __future__ import annotations

from r1h.benchmarks._common import MathBenchmark
from r1h.harness.core.hookspecs import hookimpl


class Aime24(MathBenchmark):
    """AIME 2024: 30 integer-answer problems (HuggingFaceH4/aime_2024), graded by math_accuracy."""

    name = "aime24"
    version = "1"
    description = "AIME 2024, 30 problems (HuggingFaceH4/aime_2024), math_accuracy, R1 protocol n=64"
    default_samples = 64
    default_source = "HuggingFaceH4/aime_2024"
    split = "train"  # the hub dataset has a single split, "train"; local files are read as they are
    alt_splits = ("test",)  # Qwen2.5-Math / LIMO style folders hold test.jsonl
    id_column = "id"


@hookimpl
def r1h_register_benchmarks(register):
    register("aime24", "r1h.benchmarks.aime24:Aime24", aliases=("aime_2024", "aime2024"), version=Aime24.version,
             description=Aime24.description)
