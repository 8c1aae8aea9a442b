"""r1h distill: generate (resumable, real SmolLM2 teacher) -> filter (rewards, caps, reasons) -> SFT step."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from r1h import Completion, hookimpl
from r1h.harness.cli.main import main
from r1h.tools.distill import SKY_T1_SYSTEM_PROMPT, filter_traces, to_messages, to_stratos

GUIDE = Path(__file__).resolve().parents[2] / "shared" / "seed" / "r1-reproduction-guide.zh.md"


def _trace(qid, i, completion, answer, finish="stop"):
    return {"id": qid, "sample_index": i, "question": f"question {qid}", "system": "SYS", "completion": completion,
            "finish_reason": finish, "num_tokens": 9, "row": {"answer": answer}}


def _write_traces(folder: Path, traces) -> Path:
    (folder / "samples").mkdir(parents=True)
    (folder / "samples" / "traces.jsonl").write_text("".join(json.dumps(t) + "\n" for t in traces))
    return folder


GOOD = "<think>\n2 + 2 = 4\n</think>\n<answer>\n\\boxed{4}\n</answer>"
TRACES = [
    _trace("q1", 0, GOOD, "4"),
    _trace("q1", 1, GOOD, "4"),                                             # over --max-per-question 1
    _trace("q1", 2, "<think>\nhmm\n</think>\n<answer>\n\\boxed{5}\n</answer>", "4"),  # wrong answer
    _trace("q2", 0, "The answer is \\boxed{7}.", "7"),                      # right answer, bad format
    _trace("q3", 0, "<think>\nlong", "3", finish="length"),                 # truncated (and failing)
    _trace("q4", 0, GOOD.replace("4", "9"), "9"),
]


def test_sky_t1_prompt_is_the_guides_text():
    if not GUIDE.is_file():
        pytest.skip("the original guide is not next to the repository")
    text = GUIDE.read_text(encoding="utf-8").replace("\u00a0", " ")  # the markdown export uses no-break spaces
    line = next(ln for ln in text.splitlines() if ln.strip().startswith("Your role as an"))
    assert SKY_T1_SYSTEM_PROMPT == line.replace("\\_", "_").strip()


def test_filter_keeps_passing_traces_and_says_why_others_were_dropped(tmp_path):
    kept, report = filter_traces([dict(t) for t in TRACES], ["math_accuracy", "think_format"], max_per_question=1)
    assert [(t["id"], t["sample_index"]) for t in kept] == [("q1", 0), ("q4", 0)]
    assert report["kept"] == 2 and report["dropped"] == 4
    assert report["failed_by_reward"] == {"math_accuracy": 2, "think_format": 2}  # q1#2, q3 / q2, q3
    assert report["dropped_truncated"] == 1 and report["dropped_over_max_per_question"] == 1
    assert report["questions_kept"] == 2 and report["questions"] == 4
    assert to_stratos(kept[0]) == {"system": "SYS", "conversations": [
        {"from": "user", "value": "question q1"}, {"from": "assistant", "value": GOOD}]}
    assert to_messages(kept[0])["messages"][0] == {"role": "system", "content": "SYS"}


def test_filter_cli_writes_both_formats_and_never_overwrites(tmp_path):
    folder = _write_traces(tmp_path / "gen", TRACES)
    out = tmp_path / "sft"
    args = ["distill", "filter", str(folder), "--reward", "math_accuracy", "--output", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "kept 4 of 6 traces" in res.output and "failed math_accuracy (< 1): 2" in res.output
    stratos = [json.loads(line) for line in (out / "stratos.jsonl").read_text().splitlines()]
    messages = [json.loads(line) for line in (out / "messages.jsonl").read_text().splitlines()]
    assert len(stratos) == len(messages) == 4
    assert [m["role"] for m in messages[0]["messages"]] == ["system", "user", "assistant"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0 and "--force" in res.output
    res = CliRunner().invoke(main, ["distill", "filter", str(tmp_path / "nothing"), "--reward", "math_accuracy",
                                    "--output", str(out), "--force"])
    assert res.exit_code != 0 and "no such file or folder" in res.output
    res = CliRunner().invoke(main, [*args, "--force", "--map", "answer=gold"])
    assert res.exit_code != 0 and "no column 'gold'" in res.output


@pytest.mark.slow
def test_smollm2_teacher_generate_resume_filter_then_sft(smollm2, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"problem": f"What is {a} + {a}?", "answer": str(2 * a)}) + "\n"
                                 for a in (1, 2, 3)))
    out = tmp_path / "traces"
    base = ["distill", "generate", "--teacher", str(smollm2), "--backend", "transformers", "--questions",
            str(questions), "--n", "2", "--prompt", "sky-t1", "--max-tokens", "24", "--output", str(out)]
    runner = CliRunner()
    res = runner.invoke(main, [*base, "--limit", "2"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in (out / "samples" / "traces.jsonl").read_text().splitlines()]
    assert len(lines) == 4 and {(t["id"], t["sample_index"]) for t in lines} == {
        ("q0", 0), ("q0", 1), ("q1", 0), ("q1", 1)}
    assert lines[0]["system"] == SKY_T1_SYSTEM_PROMPT and lines[0]["row"] == {"answer": "2"}
    assert all(t["completion"] and t["num_tokens"] > 0 for t in lines)
    # the same command resumes with nothing to do; a different config is refused
    res = runner.invoke(main, [*base, "--limit", "2"])
    assert res.exit_code == 0 and "0 to generate" in res.output
    assert len((out / "samples" / "traces.jsonl").read_text().splitlines()) == 4
    res = runner.invoke(main, [*base, "--limit", "2", "--temperature", "0.9"])
    assert res.exit_code != 0 and "different config" in res.output

    filtered = tmp_path / "sft-data"
    res = runner.invoke(main, ["distill", "filter", str(out), "--reward", "math_accuracy", "--threshold", "0",
                               "--max-per-question", "1", "--keep-truncated", "--output", str(filtered)])
    assert res.exit_code == 0, res.output
    assert "kept 2 of 4 traces" in res.output and "over --max-per-question: 2" in res.output

    from r1h.trainers import sft
    from r1h.trainers.common import TrainOptions, plan
    from r1h.trainers.data import sft_dataset
    from r1h.trainers.tiny import build_text_model

    assert len(sft_dataset(str(filtered / "messages.jsonl"))) == 2
    student = build_text_model(tmp_path / "student")
    resolved = plan(TrainOptions(workflow="sft", model=str(student), data=str(filtered / "stratos.jsonl"),
                                 output_dir=str(tmp_path / "ckpt"),
                                 sets=["max_steps=1", "max_length=256", "per_device_train_batch_size=2",
                                       "report_to=none", "logging_steps=1", "activation_checkpointing=false"]))
    trainer = sft.run(resolved)
    assert trainer.state.global_step == 1
    assert [h["loss"] for h in trainer.state.log_history if "loss" in h]


# -- generate with a streaming teacher: traces saved as they finish, live progress ----------------------------------------
class _StreamingTeacher:
    """Registered as backend "t11_teacher": yields samples in reverse order, optionally dies after ``die_after``."""

    die_after: int | None = None
    seen: list[tuple[str, int]] = []

    def __init__(self, model=None, **kwargs):
        self.name = "t11_teacher"

    def stream(self, requests, config):
        from r1h.harness.core.types import Generated

        done = 0
        for request in reversed(list(requests)):
            for index in reversed(request.sample_indices):
                if self.die_after is not None and done >= self.die_after:
                    raise RuntimeError("teacher died")
                _StreamingTeacher.seen.append((request.id, index))
                yield Generated(request, index, Completion(text=f"{request.id}/{index}", finish_reason="stop",
                                                           num_tokens=3))
                done += 1

    def close(self):
        pass


class _TeacherPlugin:
    @hookimpl
    def r1h_register_backends(self, register):
        register("t11_teacher", _StreamingTeacher)


@pytest.fixture
def teacher(tmp_path):
    from r1h.harness.core import plugins

    plugins._CURRENT = plugins.build(load_entry_points=False, extra_plugins=(_TeacherPlugin(),))
    _StreamingTeacher.die_after = None
    _StreamingTeacher.seen = []
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps({"problem": f"What is {a}+{a}?", "answer": str(2 * a)}) + "\n"
                                 for a in range(3)))
    return questions


def test_generate_streams_traces_as_they_finish_and_shows_progress(teacher, tmp_path):
    from rich.console import Console

    from r1h.tools.distill import GenerateOptions, generate

    out = tmp_path / "gen"
    opts = GenerateOptions(questions=str(teacher), output=out, backend="t11_teacher", n=2)
    _StreamingTeacher.die_after = 4
    log = io.StringIO()
    with pytest.raises(RuntimeError, match="teacher died"):
        generate(opts, log=lambda m: None, console=Console(file=log, force_terminal=False))
    saved = [json.loads(line) for line in (out / "samples" / "traces.jsonl").read_text().splitlines()]
    assert [(t["id"], t["sample_index"]) for t in saved] == _StreamingTeacher.seen  # each saved as it came
    assert len(saved) == 4 and saved[0]["completion"] == "q2/1"
    _StreamingTeacher.die_after = None
    _StreamingTeacher.seen = []
    log = io.StringIO()
    summary = generate(opts, log=lambda m: None, console=Console(file=log, force_terminal=False))
    assert summary["traces"] == 6 and sorted(_StreamingTeacher.seen) == [("q0", 0), ("q0", 1)]
    assert "r1h: distill generate: 6/6 traces (100%)" in log.getvalue() and "traces/s" in log.getvalue()
    # on a terminal: a rich bar, not the plain line
    out2 = tmp_path / "gen2"
    tty = io.StringIO()
    generate(GenerateOptions(questions=str(teacher), output=out2, backend="t11_teacher", n=1), log=lambda m: None,
             console=Console(file=tty, force_terminal=True, width=120))
    assert "distill generate" in tty.getvalue() and "3/3" in tty.getvalue() and "r1h: distill" not in tty.getvalue()


def test_generate_flag_ranges_are_usage_errors(teacher, tmp_path):
    for flag in (["--n", "0"], ["--batch-size", "0"], ["--limit", "0"], ["--top-p", "0"], ["--max-tokens", "x"]):
        res = CliRunner().invoke(main, ["distill", "generate", "--questions", str(teacher), "--backend", "t11_teacher",
                                        "-o", str(tmp_path / "o"), *flag])
        assert res.exit_code == 2, (flag, res.output)
        assert res.output.startswith("Usage: main distill generate") and flag[0] in res.output
    res = CliRunner().invoke(main, ["distill", "filter", str(tmp_path), "--reward", "math_accuracy",
                                    "--max-per-question", "0", "-o", str(tmp_path / "f")])
    assert res.exit_code == 2 and "Usage: main distill filter" in res.output
