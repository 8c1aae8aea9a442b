"""SuperCLEVR counting: R1-V's 200 evaluation questions, greedy with 256 new tokens, graded by count_accuracy.

There is no hub copy. Give the data with ``--data superclevr_counting=SOURCE``, where SOURCE is

- a directory holding R1-V's ``superclevr_test200_counting_problems.jsonl`` (anywhere below it; or its only .jsonl)
  and the images at their ``image_path`` (``./images/superCLEVR_new_025000.png``), e.g. R1-V's ``src/eval`` after
  unzipping the SuperCLEVR images there; or
- the prompts file itself (.jsonl/.json, columns image_path, question, ground_truth).

Each ``image_path`` is resolved against ``$R1H_SUPERCLEVR_IMAGES`` when that is set; otherwise against the prompts
file's folder, then the given directory, then the prompts file's parent folder (R1-V keeps the prompts in
``src/eval/prompts/`` and the images in ``src/eval/images/``). Under each folder, ``image_path`` is tried as given and
then by its file name alone (so the variable may name the images folder itself). A missing image is a one-line error
naming it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from r1h.benchmarks._common import unique_ids
from r1h.harness.core.benchmark import Benchmark
from r1h.harness.core.errors import ConfigError, DataError
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.types import Message, Sample
from r1h.harness.data import columns as typed
from r1h.harness.data.sources import Source, apply_limit, load_rows_with_source
from r1h.harness.system import settings

PROMPTS_FILE = "superclevr_test200_counting_problems.jsonl"
IMAGES_ENV = "R1H_SUPERCLEVR_IMAGES"
# R1-V's evaluation template (src/eval/test_qwen2vl_counting_superclevr.py).
QUESTION_TEMPLATE = (
    "{question} First output the thinking process in <think> </think> and final answer (number) in <answer> </answer> "
    "tags."
)
HOW_TO_GET = (
    "superclevr_counting has no hub dataset: pass --data superclevr_counting=DIR, where DIR holds R1-V's "
    f"{PROMPTS_FILE} (github.com/Deep-Agent/R1-V, src/eval/prompts/) and the SuperCLEVR images at its image_path "
    f"entries (./images/...; see R1-V's README, evaluation section), or set {IMAGES_ENV} to the images' folder"
)


def find_prompts_file(root: Path) -> Path | None:
    """R1-V's prompts file below ``root`` (at most three levels down), the shallowest first."""
    for depth in range(4):
        found = sorted(root.glob("/".join(["*"] * depth + [PROMPTS_FILE])))
        if found:
            return found[0]
    return None


class SuperClevrCounting(Benchmark):
    """R1-V's 200 SuperCLEVR counting questions (image + question), graded by count_accuracy."""

    name = "superclevr_counting"
    version = "1"
    description = "SuperCLEVR counting, R1-V's 200 questions + images (--data DIR), count_accuracy, greedy 256 tokens"
    default_samples = 1
    reward = "count_accuracy"
    answer_cue = "<answer>"  # R1-V scores the first <answer>N</answer>
    default_source = None
    required_columns = ("image_path", "question", "ground_truth")
    generation_overrides = {"temperature": 0.0, "max_tokens": 256, "n": 1}  # R1-V: greedy, 256 new tokens

    def __init__(self, image_root: str | None = None, **params: Any):
        if params:
            raise ConfigError(f"benchmark 'superclevr_counting' has no parameter(s) {', '.join(sorted(params))}")
        self.image_root = image_root
        self.source: Source | None = None

    def _roots(self, prompts: Path, given: Path) -> list[Path]:
        fixed = self.image_root or settings.get(IMAGES_ENV)
        if fixed:
            return [Path(fixed).expanduser()]
        roots = [prompts.parent]
        if given.is_dir():
            roots.append(given)
        roots.append(prompts.parent.parent)
        return list(dict.fromkeys(r.resolve() for r in roots))

    def load(self, source: str | None = None, limit: int | None = None) -> list[Sample]:
        if source is None or not str(source).strip():
            raise DataError(HOW_TO_GET)
        given = Path(str(source).strip()).expanduser()
        spec = str(source).strip()
        if given.is_dir():
            found = find_prompts_file(given)
            if found is not None:
                spec = str(found)
        elif not given.exists():
            raise DataError(f"superclevr_counting: data source {given} does not exist; {HOW_TO_GET}")
        rows, self.source = load_rows_with_source(
            spec, default_hub_id=None, split="test", required_columns=self.required_columns, name=self.name
        )
        prompts = self.source.files[0]
        roots = self._roots(prompts, given)
        samples = []
        for i, row in enumerate(apply_limit(rows, limit)):
            try:
                rel = typed.text(row["image_path"], "image_path").strip()
                typed.text(row["question"], "question")
                gold = typed.integer(row["ground_truth"], "ground_truth")
            except typed.ColumnError as exc:
                raise DataError(f"superclevr_counting: {self.source.locate(i)}: {exc}") from None
            image = self._find_image(rel, roots)
            sid = Path(rel).stem or f"row-{i}"
            samples.append(Sample(id=sid, columns={"answer": gold}, raw=dict(row), images=[str(image)]))
        for sample, new_id in zip(samples, unique_ids([s.id for s in samples]), strict=True):
            sample.id = new_id
        return samples

    @staticmethod
    def _find_image(rel: str, roots: list[Path]) -> Path:
        path = Path(rel).expanduser()
        if path.is_absolute():
            if path.is_file():
                return path
            raise DataError(f"superclevr_counting: image {path} not found; {HOW_TO_GET}")
        for root in roots:
            for candidate in (root / path, root / path.name):  # the root may be the images folder itself
                if candidate.is_file():
                    return candidate
        raise DataError(
            f"superclevr_counting: image {roots[0] / path} not found (also looked under "
            f"{', '.join(str(r) for r in roots[1:]) or 'nothing else'}); set {IMAGES_ENV} to the images' folder"
        )

    def prompt(self, sample: Sample) -> list[Message]:
        text = QUESTION_TEMPLATE.format(question=sample.raw["question"])
        return [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}]

    def reference_completion(self, sample: Sample) -> str:
        n = sample.columns["answer"]
        return f"<think>Counting the objects in the image gives {n}.</think><answer>{n}</answer>"


@hookimpl
def r1h_register_benchmarks(register):
    register("superclevr_counting", "r1h.benchmarks.superclevr:SuperClevrCounting", aliases=("superclevr",),
             version=SuperClevrCounting.version, description=SuperClevrCounting.description)
