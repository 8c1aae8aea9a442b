"""GPQA Diamond (198 questions), choices shuffled per question by a hash, "Answer: $LETTER" prompt, n=8."""

from __future__ import annotations

import hashlib
import itertools
from typing import Any

from r1h.benchmarks._common import TableBenchmark
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.types import Message, Sample
from r1h.harness.data import columns as typed

LETTERS = "ABCD"
SHUFFLE_SEED = 0  # part of the benchmark's definition: changing it changes every order (bump the version)

# The simple-evals / lighteval multiple-choice instruction.
INSTRUCTION = (
    "Answer the following multiple choice question. The last line of your response should be of the following format: "
    "'Answer: $LETTER' (without quotes) where LETTER is one of ABCD. Think step by step before answering."
)
QUERY_TEMPLATE = "{instruction}\n\n{question}\n\nA) {A}\nB) {B}\nC) {C}\nD) {D}"

CHOICE_COLUMNS = ("Correct Answer", "Incorrect Answer 1", "Incorrect Answer 2", "Incorrect Answer 3")
_PERMUTATIONS = tuple(itertools.permutations(range(4)))  # 24, in lexicographic order


def choice_permutation(question_id: str, seed: int = SHUFFLE_SEED) -> tuple[int, ...]:
    """The order of the four choices for one question: ``perm[k]`` is the index (into CHOICE_COLUMNS) shown at
    letter k. Derived from SHA-256 of the seed and the question id, never from a global RNG."""
    digest = hashlib.sha256(f"r1h-gpqa:{seed}:{question_id}".encode()).digest()
    return _PERMUTATIONS[int.from_bytes(digest[:8], "big") % len(_PERMUTATIONS)]


def question_id(row: dict[str, Any]) -> str:
    """The row's ``Record ID``, or a hash of the question text where a file lacks it."""
    rid = str(row.get("Record ID") or "").strip()
    if rid:
        return rid
    return "q-" + hashlib.sha256(str(row["Question"]).strip().encode()).hexdigest()[:16]


class GpqaDiamond(TableBenchmark):
    """GPQA Diamond (Idavidrein/gpqa, config gpqa_diamond), graded by choice_accuracy."""

    name = "gpqa_diamond"
    version = "1"
    description = "GPQA Diamond, 198 questions (Idavidrein/gpqa gpqa_diamond), choice_accuracy, n=8"
    default_samples = 8
    reward = "choice_accuracy"
    answer_cue = "\n\nAnswer:"  # the "Answer: X" line the prompt asks for
    default_source = "Idavidrein/gpqa"
    hub_config = "gpqa_diamond"
    split = "train"  # the hub dataset has only a "train" split
    required_columns = ("Question", *CHOICE_COLUMNS)

    def to_sample(self, index: int, row: dict[str, Any]) -> Sample:
        typed.text(row["Question"], "Question")
        given = [typed.answer(row[column], column) for column in CHOICE_COLUMNS]
        qid = question_id(row)
        perm = choice_permutation(qid)
        choices = [given[k] for k in perm]
        gold = LETTERS[perm.index(0)]
        return Sample(id=qid, columns={"answer": gold}, raw={**row, "_choices": choices})

    def prompt(self, sample: Sample) -> list[Message]:
        choices = sample.raw["_choices"]
        text = QUERY_TEMPLATE.format(
            instruction=INSTRUCTION,
            question=str(sample.raw["Question"]).strip(),
            **dict(zip(LETTERS, choices, strict=True)),
        )
        return [{"role": "user", "content": text}]

    def reference_completion(self, sample: Sample) -> str:
        return f"The reference solution is not shown.\n\nAnswer: {sample.columns['answer']}"


@hookimpl
def r1h_register_benchmarks(register):
    register("gpqa_diamond", "r1h.benchmarks.gpqa:GpqaDiamond", aliases=("gpqa", "gpqa-diamond"),
             version=GpqaDiamond.version, description=GpqaDiamond.description)
