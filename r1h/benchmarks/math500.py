"""MATH-500 (500 problems of Lightman et al.'s test subset), DeepSeek-R1 protocol: n=4."""

from __future__ import annotations

from r1h.benchmarks._common import MathBenchmark
from r1h.harness.core.hookspecs import hookimpl


class Math500(MathBenchmark):
    """MATH-500 (HuggingFaceH4/MATH-500), graded by math_accuracy; the id is the row's unique_id."""

    name = "math500"
    version = "1"
    description = "MATH-500, 500 problems (HuggingFaceH4/MATH-500), math_accuracy, n=4"
    default_samples = 4
    default_source = "HuggingFaceH4/MATH-500"
    split = "test"
    id_column = "unique_id"


@hookimpl
def r1h_register_benchmarks(register):
    register("math500", "r1h.benchmarks.math500:Math500", aliases=("math_500", "math-500"), version=Math500.version,
             description=Math500.description)
