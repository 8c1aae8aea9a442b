"""Distillation data, the step the guide leaves out: a teacher writes reasoning traces, rewards filter them.

- :func:`generate`: questions (file or hub id) -> ``DIR/samples/traces.jsonl``, appended as generated and resumable
  exactly like ``r1h eval``: the same session (lock, SIGTERM, ``run.json`` fingerprint), resume (torn tail dropped,
  no duplicates) and pipeline (one stream, traces appended in micro-batches with one fsync each).
- :func:`filter_traces`: keeps the traces every reward scores >= threshold (at most ``max_per_question`` per question)
  and writes the Bespoke-Stratos format (``system``, ``conversations`` from/value) and the ``messages`` format, which
  ``r1h train sft --data`` reads directly.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import ConfigError, DataError, FlagError, RunError
from r1h.harness.core.types import Generated, GenerationConfig, GenerationRequest, Sample

# The Sky-T1 / Bespoke-Stratos teacher prompt, as quoted in the original guide (markdown escapes removed).
SKY_T1_SYSTEM_PROMPT = (
    "Your role as an assistant involves thoroughly exploring questions through a systematic long thinking process "
    "before providing the final precise and accurate solutions. This requires engaging in a comprehensive cycle of "
    "analysis, summarizing, exploration, reassessment, reflection, backtracing, and iteration to develop "
    "well-considered thinking process. Please structure your response into two main sections: Thought and Solution. "
    "In the Thought section, detail your reasoning process using the specified format: <|begin_of_thought|> "
    "{thought with steps separated with '\\n\\n'} <|end_of_thought|> Each step should include detailed "
    "considerations such as analisying questions, summarizing relevant findings, brainstorming new ideas, verifying "
    "the accuracy of the current steps, refining any errors, and revisiting previous steps. In the Solution section, "
    "based on various attempts, explorations, and reflections from the Thought section, systematically present the "
    "final solution that you deem correct. The solution should remain a logical, accurate, concise expression style "
    "and detail necessary step needed to reach the conclusion, formatted as follows: <|begin_of_solution|> {final "
    "formatted, precise, and clear solution} <|end_of_solution|> Now, try to solve the following question through "
    "the above guidelines:"
)
NAMED_PROMPTS = {"sky-t1": SKY_T1_SYSTEM_PROMPT}
QUESTION_COLUMNS = ("problem", "question", "Question", "prompt", "query")
ID_COLUMNS = ("id", "unique_id", "problem_id", "idx")
TRACES = "traces"


@dataclass
class GenerateOptions:
    questions: str
    output: Path
    teacher: str | None = None
    backend: str = "transformers"
    backend_args: dict[str, str] = field(default_factory=dict)
    n: int = 1
    system_prompt: str | None = None
    prompt_name: str | None = None
    question_column: str | None = None
    split: str = "train"
    limit: int | None = None
    temperature: float = 0.6
    top_p: float = 0.95
    max_tokens: int = 32768
    seed: int = 0
    batch_size: int = 8

    def system(self) -> str | None:
        if self.system_prompt and self.prompt_name:
            raise ConfigError("give either --system-prompt or --prompt, not both")
        if self.prompt_name:
            if self.prompt_name not in NAMED_PROMPTS:
                raise ConfigError(f"--prompt {self.prompt_name!r}: known prompts are {', '.join(NAMED_PROMPTS)}")
            return NAMED_PROMPTS[self.prompt_name]
        return self.system_prompt


def load_questions(source: str, *, column: str | None = None, split: str = "train",
                   limit: int | None = None) -> tuple[list[dict[str, Any]], str]:
    """Rows with a stable ``_id`` and the question column name (auto-detected unless ``column`` is given)."""
    from r1h.harness.data.sources import apply_limit, load_rows

    rows = load_rows(source, default_hub_id=None, split=split, required_columns=(column,) if column else (),
                     name="questions")
    col = column or next((c for c in QUESTION_COLUMNS if c in rows[0]), None)
    if col is None:
        raise DataError(f"questions: {source}: no question column; expected one of {', '.join(QUESTION_COLUMNS)} "
                        f"(or pass --question-column; found: {', '.join(list(rows[0])[:12])})")
    id_col = next((c for c in ID_COLUMNS if c in rows[0]), None)
    seen: set[str] = set()
    for i, row in enumerate(rows):
        qid = str(row[id_col]) if id_col and row.get(id_col) is not None else f"q{i}"
        if qid in seen:
            qid = f"{qid}#{i}"
        seen.add(qid)
        row["_id"] = qid
    return apply_limit(rows, limit), col


def messages_for(question: str, system: str | None) -> list[dict[str, str]]:
    return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]


@dataclass
class TraceJob:
    """The questions as one benchmark for the eval pipeline (:func:`r1h.harness.eval.pipeline.stream_benchmark`):
    :meth:`request` builds the teacher's messages, :meth:`records` writes the traces, ungraded."""

    rows: list[dict[str, Any]]
    question_column: str
    system: str | None
    generation: GenerationConfig
    name: str = TRACES

    def __post_init__(self) -> None:
        self.samples = [Sample(id=row["_id"], columns=row) for row in self.rows]
        self.by_id = {row["_id"]: row for row in self.rows}

    @property
    def benchmark(self) -> TraceJob:
        return self

    def request(self, sample: Sample, sample_indices: list[int], seeds: list[int]) -> GenerationRequest:
        return GenerationRequest(id=sample.id, messages=messages_for(str(sample.columns[self.question_column]),
                                                                     self.system),
                                 sample_indices=list(sample_indices), seeds=list(seeds))

    def records(self, batch: list[Generated]) -> list[dict[str, Any]]:
        out = []
        for item in batch:
            row, comp = self.by_id[item.request.id], item.completion
            gold = {k: v for k, v in row.items() if k not in (self.question_column, "_id")}
            out.append({"id": row["_id"], "sample_index": item.sample_index, "question": str(row[self.question_column]),
                        "system": self.system, "completion": comp.text, "finish_reason": comp.finish_reason,
                        "num_tokens": comp.num_tokens, "row": gold})
        return out


def generate(opts: GenerateOptions, log=print, progress: bool = True, console: Any = None) -> dict[str, Any]:
    """Generate ``n`` traces per question into ``opts.output``; resumes an interrupted run with the same flags.

    Runs on the eval pipeline: the run directory is locked (a second run on it is refused), SIGTERM stops cleanly
    like Ctrl-C, the backend is driven as one stream and the traces are appended in micro-batches (one write and one
    fsync each) as they finish, the live count (``progress``) advancing with them. ``batch_size`` is the requests per
    ``generate`` call of a batch backend (its ``stream_chunk``).
    """
    from r1h import get_backend
    from r1h.harness.eval.pipeline import stream_benchmark
    from r1h.harness.eval.progress import live_count
    from r1h.harness.eval.resume import missing_pairs
    from r1h.harness.eval.session import RunSession

    for flag, value in (("--n", opts.n), ("--batch-size", opts.batch_size), ("--limit", opts.limit),
                        ("--max-tokens", opts.max_tokens)):
        if value is not None and value < 1:
            raise FlagError(f"{flag} {value}: must be >= 1")
    system = opts.system()
    rows, qcol = load_questions(opts.questions, column=opts.question_column, split=opts.split, limit=opts.limit)
    gen = GenerationConfig(n=opts.n, temperature=opts.temperature, top_p=opts.top_p, max_tokens=opts.max_tokens,
                           seed=opts.seed)
    config = {"kind": "distill", "teacher": opts.teacher, "backend": opts.backend, "backend_args": opts.backend_args,
              "questions": str(opts.questions), "question_column": qcol, "limit": opts.limit, "system": system,
              "generation": gen.to_dict()}
    # the teacher before run.json (its model loads only when something is generated): a backend that cannot be a
    # teacher, or a model that cannot be found, leaves no run behind
    backend = get_backend(opts.backend, model=opts.teacher, **opts.backend_args)
    if getattr(backend, "needs_reference", False):
        backend.close()
        raise ConfigError(f"--backend {opts.backend} answers benchmark problems with their reference solutions; "
                          "distill generate needs a teacher model that writes traces (--backend transformers, vllm or "
                          "openai)")
    if hasattr(backend, "stream_chunk"):
        backend.stream_chunk = opts.batch_size
    job = TraceJob(rows, qcol, system, gen)
    with RunSession(opts.output, check_foreign=False, command="r1h distill generate", kept="the finished traces",
                    note=log, close=backend.close) as session:
        resumed = session.open(config)
        traces = session.store.samples(TRACES)
        pending = missing_pairs(job, traces)
        todo = sum(len(idx) for _, idx in pending)
        log(f"{'resuming' if resumed else 'writing'} {opts.output}: {len(rows)} questions x {opts.n}, "
            f"{len(traces.keys)} traces stored, {todo} to generate")
        if todo:
            with live_count("distill generate", len(rows) * opts.n, done=len(traces.keys), unit="traces",
                            console=console, enabled=progress) as count:
                stream_benchmark(job, backend, traces, pending, on_written=count.advance, records=job.records)
    summary = {"questions": len(rows), "n": opts.n, "traces": len(traces.keys),
               "path": str(session.store.samples_path(TRACES))}
    (Path(opts.output) / "distill.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


# -- filtering ----------------------------------------------------------------------------------------------------------
def read_traces(path: Path) -> list[dict[str, Any]]:
    from r1h.harness.data import jsonl

    path = Path(path)
    if not path.exists():
        raise RunError(f"{path}: no such file or folder (give the folder `r1h distill generate -o` wrote, or its "
                       f"samples/{TRACES}.jsonl)")
    file = path / "samples" / f"{TRACES}.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise RunError(f"{path}: no traces in this folder (samples/{TRACES}.jsonl, which r1h distill generate writes, "
                       "is missing)")
    rows = []
    for number, row in jsonl.objects(file, error=RunError, drop_torn=True):  # a torn last line (a kill) is dropped
        if "completion" not in row or "question" not in row:
            raise DataError(f"{file}:{number}: a trace needs 'question' and 'completion'")
        rows.append(row)
    return rows


def filter_traces(traces: list[dict[str, Any]], rewards: list[str], *, threshold: float = 1.0,
                  max_per_question: int | None = None, keep_truncated: bool = False,
                  column_map: dict[str, str] | None = None, source: Any = "the traces",
                  warn: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The kept traces and a report: kept/dropped counts and, per reward, how many traces it failed.

    A reward whose gold columns no trace holds is a one-line DataError (``--map`` feeds another column); where only
    some traces lack them, ``warn`` gets one line: those traces fail that reward."""
    from r1h import get_reward
    from r1h.harness.core.reward import rows_lacking_gold
    from r1h.harness.grading.pool import grade

    if not rewards:
        raise ConfigError("give at least one --reward")
    if max_per_question is not None and max_per_question < 1:
        raise FlagError(f"--max-per-question {max_per_question}: must be >= 1")
    column_map = column_map or {}
    passing = [True] * len(traces)
    failed: Counter[str] = Counter()
    scores: dict[str, list[float | None]] = {}
    for name in rewards:
        reward = get_reward(name)
        rows = []
        for t in traces:
            row = dict(t.get("row") or {})
            for target, src in column_map.items():
                if src not in row:
                    raise DataError(f"--map {target}={src}: the traces have no column {src!r} "
                                    f"(they have: {', '.join(row) or 'none'})")
                row[target] = row[src]
            rows.append({k: row[k] for k in reward.columns if k in row})
        groups = reward.column_groups()
        hint = f"pass --map {groups[0][0]}=COLUMN to grade against another column" if groups else ""
        full = [dict(t.get("row") or {}) | r for t, r in zip(traces, rows, strict=True)]
        lacking = rows_lacking_gold(reward, name, source, full, hint=hint)
        if lacking and warn is not None:
            warn(f"warning: {lacking} of {len(traces)} traces lack {reward.columns_text()}; they fail {name}")
        prompts = [[{"role": "user", "content": t["question"]}] for t in traces]
        results = grade(reward, [t["completion"] for t in traces], prompts=prompts, rows=rows)
        scores[name] = [r.score for r in results]
        for i, res in enumerate(results):
            if res.score is None or res.score < threshold:
                passing[i] = False
                failed[name] += 1
    truncated = 0
    per_question: Counter[str] = Counter()
    kept, capped = [], 0
    for i, t in enumerate(traces):
        if not keep_truncated and t.get("finish_reason") == "length":
            truncated += 1
            continue
        if not passing[i]:
            continue
        if max_per_question is not None and per_question[str(t.get("id"))] >= max_per_question:
            capped += 1
            continue
        per_question[str(t.get("id"))] += 1
        kept.append({**t, "scores": {name: scores[name][i] for name in rewards}})
    report = {
        "traces": len(traces), "kept": len(kept), "dropped": len(traces) - len(kept),
        "failed_by_reward": {name: failed[name] for name in rewards},
        "dropped_truncated": truncated, "dropped_over_max_per_question": capped,
        "questions": len({str(t.get("id")) for t in traces}), "questions_kept": len(per_question),
        "threshold": threshold, "rewards": rewards,
    }
    return kept, report


def to_stratos(trace: dict[str, Any]) -> dict[str, Any]:
    return {"system": trace.get("system") or "",
            "conversations": [{"from": "user", "value": trace["question"]},
                              {"from": "assistant", "value": trace["completion"]}]}


def to_messages(trace: dict[str, Any]) -> dict[str, Any]:
    return {"messages": messages_for(trace["question"], trace.get("system"))
            + [{"role": "assistant", "content": trace["completion"]}]}


def write_training_files(kept: list[dict[str, Any]], report: dict[str, Any], out_dir: Path,
                         force: bool = False) -> dict[str, Path]:
    paths = {"stratos": out_dir / "stratos.jsonl", "messages": out_dir / "messages.jsonl",
             "report": out_dir / "filter_report.json"}
    existing = [p for p in paths.values() if p.exists()]
    if existing and not force:
        raise ConfigError(f"{existing[0]} exists; use --force to overwrite it")
    out_dir.mkdir(parents=True, exist_ok=True)
    for key, convert in (("stratos", to_stratos), ("messages", to_messages)):
        with open(paths[key], "w", encoding="utf-8", errors="backslashreplace") as fh:  # lone surrogates stay escapes
            for trace in kept:
                fh.write(json.dumps(convert(trace), ensure_ascii=False) + "\n")
    paths["report"].write_text(json.dumps(report, indent=2) + "\n")
    return paths
