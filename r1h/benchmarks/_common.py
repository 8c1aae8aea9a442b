"""Shared pieces of the built-in benchmarks: the DeepSeek-R1 math prompt and a table-backed benchmark base."""

from __future__ import annotations

from typing import Any

from r1h.harness.core.benchmark import Benchmark
from r1h.harness.core.errors import ConfigError, DataError
from r1h.harness.core.types import Message, Sample
from r1h.harness.data import columns as typed
from r1h.harness.data.sources import Source, apply_limit, load_rows_with_source

# DeepSeek-R1's usage recommendation for math: no system prompt, this line after the problem.
MATH_INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def math_messages(problem: str) -> list[Message]:
    """The single user turn DeepSeek recommends for math problems (no system prompt)."""
    return [{"role": "user", "content": f"{problem}\n{MATH_INSTRUCTION}"}]


def boxed_reference(answer: Any) -> str:
    """A gold completion whose final answer is ``answer`` in a ``\\boxed{}`` (what math_accuracy reads)."""
    return f"The reference solution is not shown.\n\nThe final answer is \\boxed{{{answer}}}."


def unique_ids(ids: list[str]) -> list[str]:
    """Make ids unique in order: a repeated id gets ``#2``, ``#3`` ... (still stable for a fixed data file)."""
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}#{seen[i]}")
    return out


class TableBenchmark(Benchmark):
    """A benchmark whose problems are the rows of one table (hub id, local clone or data file).

    Subclasses set ``default_source``, ``hub_config``, ``split``, ``required_columns`` and implement ``to_sample``.
    After :meth:`load`, ``self.source`` describes where the rows came from.
    """

    hub_config: str | None = None
    split: str = "test"
    alt_splits: tuple[str, ...] = ()  # other split names to look for in a local clone

    def __init__(self, **params: Any):
        if params:
            raise ConfigError(f"benchmark {self.name!r} takes no parameters; got {', '.join(sorted(params))}")
        self.source: Source | None = None

    def rows(self, source: str | None) -> list[dict[str, Any]]:
        rows, self.source = load_rows_with_source(
            source,
            default_hub_id=self.default_source,
            hub_config=self.hub_config,
            split=self.split,
            required_columns=self.required_columns,
            name=self.name,
            alt_splits=self.alt_splits,
        )
        return rows

    def to_sample(self, index: int, row: dict[str, Any]) -> Sample:
        """One problem; a gold value of the wrong type raises :class:`~r1h.harness.data.columns.ColumnError`."""
        raise NotImplementedError

    def load(self, source: str | None = None, limit: int | None = None) -> list[Sample]:
        samples = []
        for i, row in enumerate(self.rows(source)):
            try:
                samples.append(self.to_sample(i, row))
            except typed.ColumnError as exc:
                where = self.source.locate(i) if self.source is not None else f"row {i}"
                raise DataError(f"{self.name}: {where}: {exc}") from None
        for sample, new_id in zip(samples, unique_ids([s.id for s in samples]), strict=True):
            sample.id = new_id
        return apply_limit(samples, limit)


class MathBenchmark(TableBenchmark):
    """Problem + answer columns, DeepSeek's math prompt, graded by math_accuracy."""

    reward = "math_accuracy"
    answer_cue = "\n\nThe final answer is $\\boxed{"  # math_accuracy reads the last box
    required_columns = ("problem", "answer")
    id_column = "id"

    def to_sample(self, index: int, row: dict[str, Any]) -> Sample:
        raw_id = row.get(self.id_column)
        sid = f"row-{index}" if raw_id is None or str(raw_id).strip() == "" else str(raw_id).strip()
        typed.text(row["problem"], "problem")
        return Sample(id=sid, columns={"answer": typed.answer(row["answer"], "answer")}, raw=row)

    def prompt(self, sample: Sample) -> list[Message]:
        return math_messages(sample.raw["problem"])

    def reference_completion(self, sample: Sample) -> str:
        return boxed_reference(sample.columns["answer"])
