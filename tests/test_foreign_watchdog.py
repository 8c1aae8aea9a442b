"""The per-item budget of the foreign grader scripts, tested without the foreign virtualenvs.

The real scripts (r1h/tools/foreign_graders/*.py) run in a subprocess against stub ``lighteval`` / ``lm_eval``
packages put on PYTHONPATH. The stubs follow exactly the API the scripts call, and hang on request: in pure Python
(sympy-like), in a blocking sleep, in a C call that never returns to the interpreter (PBKDF2 with 2^31 rounds, which releases the GIL),
in a C loop that keeps the GIL (sum over a huge range), and
in code that swallows BaseException. Each hanging item must come back as a timeout and the rest must still be graded.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from r1h.tools import foreign, regrade
from r1h.tools.foreign import FOREIGN, HARD_EXIT, SCRIPTS, Item, run_foreign

BUDGET = 1.0
# generous: seven other jobs share this machine's two cores
MARGIN = 12.0
NEVER = 300.0  # far below how long any stub hang runs when nothing stops it
NO_FORK = dataclasses.replace(FOREIGN["lighteval"], args=("--no-fork",))  # the thread watchdog and restarts

HANG = '''
import hashlib
import time


def behave(text):
    """What the stub grader does with a completion: hang in some way, or say whether it is the gold."""
    if text == "HANG_PY":
        n = 0
        while True:  # pure-Python work, like a runaway sympy simplification
            n += 1
    if text == "HANG_SLEEP":
        time.sleep(3600)
    if text == "HANG_C":
        hashlib.pbkdf2_hmac("sha256", b"x", b"salt", 2**31 - 1)  # never returns to the interpreter
    if text == "HANG_GIL":
        sum(range(10**13))  # a C loop that keeps the GIL: not even the watchdog thread runs
    if text == "SWALLOW":
        while True:
            try:
                time.sleep(0.05)
            except BaseException:  # foreign code that catches everything
                pass
    return text
'''


def _dist(root: Path, name: str, version: str) -> None:
    info = root / f"{name}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


@pytest.fixture
def stub_lighteval(tmp_path, monkeypatch):
    root = tmp_path / "stub_lighteval"
    _write(root, {
        "stub_hang.py": HANG,
        "lighteval/__init__.py": "",
        "lighteval/models/__init__.py": "",
        "lighteval/models/model_output.py": """
            from dataclasses import dataclass, field

            @dataclass
            class ModelResponse:
                text: list = field(default_factory=list)
        """,
        "lighteval/tasks/__init__.py": "",
        "lighteval/tasks/requests.py": """
            from dataclasses import dataclass

            @dataclass
            class Doc:
                query: str
                choices: list
                gold_index: int
                specific: dict | None = None
        """,
        "lighteval/utils/__init__.py": "",
        "lighteval/utils/utils.py": """
            def remove_reasoning_tags(text, tag_pairs):
                for start, end in tag_pairs:
                    if end in text:
                        text = text[text.rfind(end) + len(end):]
                return text
        """,
        "lighteval/tasks/tasks/__init__.py": "",
        "lighteval/tasks/tasks/math_500.py": """
            from types import SimpleNamespace

            from lighteval.tasks.requests import Doc
            from stub_hang import behave


            class PassAtK:
                def preprocess(self, text):
                    return text.strip()

                def compute_score(self, doc, model_response):
                    pred = behave(model_response.text[0])
                    doc.specific = {"extracted_predictions": [pred], "extracted_golds": doc.choices}
                    return 1.0 if pred == doc.choices[doc.gold_index] else 0.0


            def prompt(line, task_name):
                return Doc(query=line["problem"], choices=[line["answer"]], gold_index=0)


            math_500 = SimpleNamespace(name="math_500", prompt_function=prompt,
                                       metrics=[SimpleNamespace(metric_name="pass@k", sample_level_fn=PassAtK())])
        """,
    })
    _dist(root, "lighteval", "0.0.0")
    _dist(root, "latex2sympy2_extended", "0.0.0")
    monkeypatch.setenv("PYTHONPATH", str(root))
    return root


@pytest.fixture
def stub_lmeval(tmp_path, monkeypatch):
    root = tmp_path / "stub_lmeval"
    _write(root, {
        "stub_hang.py": HANG,
        "lm_eval/__init__.py": "",
        "lm_eval/tasks/__init__.py": "",
        "lm_eval/tasks/minerva_math/__init__.py": "",
        "lm_eval/tasks/minerva_math/utils.py": """
            from stub_hang import behave


            def process_docs(dataset):
                return [dict(row, answer=row["solution"].replace("$\\\\boxed{", "").rstrip("}$")) for row in dataset]


            def get_unnormalized_answer(text):
                return text


            def normalize_final_answer(text):
                return text.strip()


            def process_results(doc, results):
                pred = behave(results[0])
                return {"exact_match": int(pred == doc["answer"]), "math_verify": int(pred == doc["answer"])}
        """,
    })
    _dist(root, "lm_eval", "0.0.0")
    monkeypatch.setenv("PYTHONPATH", str(root))
    return root


def _items(completions: list[str]) -> list[Item]:
    return [Item(benchmark="math500", id=f"p{i}", sample_index=0, completion=c, prompt="q", recorded=None,
                 columns={"answer": "7"}, row={"problem": "q", "answer": "7"}) for i, c in enumerate(completions)]


def _script(name: str, completions: list[str], *extra: str) -> tuple[list[dict], list[float], int]:
    """Run a grader script directly; its output lines (after the meta line), the time each line came (seconds after
    the meta line, so the interpreter's start-up and imports do not count), and the exit code."""
    payload = "".join(json.dumps({"key": f"k{i}", "benchmark": "math500", "completion": c,
                                  "row": {"problem": "q", "answer": "7"}}) + "\n" for i, c in enumerate(completions))
    proc = subprocess.Popen([sys.executable, str(SCRIPTS / name), "--item-timeout", str(BUDGET), *extra],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    proc.stdin.write(payload)
    proc.stdin.close()
    lines, times, start = [], [], None
    for line in proc.stdout:  # every hang in the stubs ends within budget + grace, or the script ends
        if not line.startswith("{"):
            continue
        lines.append(json.loads(line))
        start = start if start is not None else time.monotonic()
        times.append(time.monotonic() - start)
    code = proc.wait(timeout=120)
    err = proc.stderr.read()
    assert lines and lines[0]["key"] == "__meta__", err[-2000:]
    assert lines[0]["item_timeout"] == BUDGET
    return lines[1:], times[1:], code


@pytest.mark.slow
@pytest.mark.parametrize("script", ["lighteval_grader.py", "lmeval_grader.py"])
@pytest.mark.parametrize("hang", ["HANG_PY", "HANG_SLEEP"])
def test_a_hanging_item_is_interrupted_and_reported_as_a_timeout(request, script, hang):
    """The watchdog thread's signal (--no-fork) stops pure-Python work and blocking calls."""
    request.getfixturevalue("stub_lighteval" if script.startswith("lighteval") else "stub_lmeval")
    out, times, code = _script(script, ["7", hang, "8"], "--no-fork")
    assert code == 0
    assert [o["key"] for o in out] == ["k0", "k1", "k2"]
    assert out[0]["correct"] is True and out[2]["correct"] is False  # the items around it are graded
    assert out[1]["timed_out"] is True and out[1]["correct"] is None
    assert out[1]["error"].startswith("timeout") and "interrupted" in out[1]["error"]
    assert BUDGET * 0.9 <= times[1] - times[0] < BUDGET + MARGIN


@pytest.mark.slow
@pytest.mark.parametrize("hang", ["HANG_C", "SWALLOW"])
def test_an_item_no_signal_stops_ends_the_script_with_its_timeout_line(stub_lighteval, hang):
    out, times, code = _script("lighteval_grader.py", ["7", hang, "7"], "--no-fork")
    assert code == HARD_EXIT
    assert [o["key"] for o in out] == ["k0", "k1"]  # k2 is left for the restart
    assert out[1]["timed_out"] is True and "ended" in out[1]["error"]
    assert BUDGET + 2.0 <= times[1] - times[0] + 0.1 < BUDGET + 2.0 + MARGIN  # budget + the watchdog's grace


@pytest.mark.slow
@pytest.mark.parametrize("hang", ["HANG_PY", "HANG_SLEEP", "HANG_C", "HANG_GIL", "SWALLOW"])
def test_a_forked_item_is_killed_at_its_deadline(stub_lighteval, hang):
    """The default: each item in a child forked after the imports, SIGKILLed at the deadline; no restart."""
    out, times, code = _script("lighteval_grader.py", ["7", hang, "8"])
    assert code == 0
    assert [o["key"] for o in out] == ["k0", "k1", "k2"]
    assert out[0]["correct"] is True and out[2]["correct"] is False
    assert out[1]["timed_out"] is True and out[1]["error"].startswith("timeout")
    assert BUDGET * 0.9 <= times[1] - times[0] < BUDGET + MARGIN


@pytest.mark.slow
def test_run_foreign_restarts_after_a_stuck_item_and_grades_everything(stub_lighteval):
    items = _items(["7", "HANG_C", "7", "HANG_PY", "6", "SWALLOW", "7"])
    start = time.monotonic()
    arrived = []  # live progress: one call per verdict line, as it comes (the script reports its timeouts too)
    meta = run_foreign(NO_FORK, items, sys.executable, item_timeout=BUDGET,
                       on_item=lambda: arrived.append(sum(1 for it in items if "lighteval" in it.verdicts)))
    took = time.monotonic() - start
    verdicts = [it.verdicts["lighteval"] for it in items]
    assert len(arrived) == len(items) and arrived[0] == 0  # called before the batch's verdicts are filled in
    assert [v.correct for v in verdicts] == [True, None, True, None, False, None, True]
    assert all(v.error.startswith("timeout") for v in (verdicts[1], verdicts[3], verdicts[5]))
    assert meta["restarts"] == 2 and meta["package"] == "lighteval"
    assert took < NEVER  # each hang alone would run for hours; restarts include interpreter start-ups


@pytest.mark.slow
def test_lmeval_run_foreign_with_a_stuck_c_call(stub_lmeval):
    items = _items(["7", "HANG_GIL", "8"])
    meta = run_foreign(FOREIGN["lm-eval"], items, sys.executable, item_timeout=BUDGET)
    assert meta["restarts"] == 0  # forked per item
    assert [it.verdicts["lm-eval"].correct for it in items] == [True, None, False]
    assert items[1].verdicts["lm-eval"].error.startswith("timeout")


@pytest.mark.slow
def test_an_item_that_keeps_the_gil_is_killed_from_outside(stub_lighteval, monkeypatch):
    monkeypatch.setattr(foreign, "KILL_MARGIN_S", 1.0)
    items = _items(["7", "HANG_GIL", "7"])
    start = time.monotonic()
    meta = run_foreign(NO_FORK, items, sys.executable, item_timeout=BUDGET)
    took = time.monotonic() - start
    verdicts = [it.verdicts["lighteval"] for it in items]
    assert [v.correct for v in verdicts] == [True, None, True]
    assert "killed" in verdicts[1].error and verdicts[1].error.startswith("timeout")
    assert meta["restarts"] == 1
    assert took < NEVER  # the C loop alone would run for hours


def test_report_names_the_timeouts():
    summary = {"run": "r", "model": "m", "graders": {"r1h": {"version": "0"}, "lighteval": {"version": "0.13.0"}},
               "benchmarks": {"math500": {"n_samples": 2, "disagreements": 1, "timeouts": {"r1h": 0, "lighteval": 1},
                                          "pass@1": {"recorded": 0.5, "r1h": 0.5, "lighteval": 0.0}}}}
    text = regrade.to_markdown(summary)
    assert "| math500 | 2 | 50.00 | 50.00 | 0.00 | 1 |" in text
    assert "per-item budget (counted wrong): math500 lighteval: 1" in text


def test_item_timeout_must_be_positive():
    from r1h.harness.core.errors import ConfigError

    with pytest.raises(ConfigError, match="--item-timeout"):
        run_foreign(FOREIGN["lighteval"], _items(["7"]), sys.executable, item_timeout=0)
