"""A real ``r1h distill generate`` process on the eval pipeline: SIGTERM mid-run keeps the finished traces (whole lines,
no duplicates) and the same command resumes; a second run on the same output is refused by the lock."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

QUESTIONS, N = 20, 3
TOTAL = QUESTIONS * N

DRIVER = textwrap.dedent(
    '''
    """A slow teacher registered through the plugin API, then the real CLI."""
    import sys
    import time

    from r1h import Backend, Completion, hookimpl
    from r1h.harness.core.types import Generated


    class SlowTeacher(Backend):
        """Streams each trace after ``delay`` seconds, logging (flushed) each one before it is yielded."""

        name = "slow_teacher"

        def stream(self, requests, config):
            with open(self.backend_args["log"], "a", buffering=1) as log:
                for r in requests:
                    for i in r.sample_indices:
                        time.sleep(float(self.backend_args["delay"]))
                        log.write(f"{r.id} {i}\\n")
                        yield Generated(r, i, Completion(text=f"trace {r.id}/{i}", finish_reason="stop",
                                                         num_tokens=2))


    class Plugin:
        @hookimpl
        def r1h_register_backends(self, register):
            register("slow_teacher", SlowTeacher)


    if __name__ == "__main__":
        from r1h.harness.core import plugins

        plugins._CURRENT = plugins.build(load_entry_points=False, extra_plugins=(Plugin(),))
        from r1h.harness.cli.main import main

        main(sys.argv[1:])
    '''
)


def _start(tmp_path: Path, delay: str = "0.05"):
    driver = tmp_path / "drive.py"
    driver.write_text(DRIVER)
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps({"problem": f"What is {a}+{a}?", "answer": str(2 * a)}) + "\n"
                                 for a in range(QUESTIONS)))
    out, log = tmp_path / "gen", tmp_path / "generated.log"
    cmd = [sys.executable, str(driver), "distill", "generate", "--backend", "slow_teacher", "--questions",
           str(questions), "-n", str(N), "--backend-arg", f"log={log}", "--backend-arg", f"delay={delay}",
           "--output", str(out), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    return cmd, env, out / "samples" / "traces.jsonl", log


def _lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def _keys(path: Path) -> list[tuple[str, int]]:
    return [(r["id"], r["sample_index"]) for r in map(json.loads, path.read_text().splitlines())]


def _wait_for_lines(proc, traces: Path, count: int) -> None:
    deadline = time.monotonic() + 60
    while _lines(traces) < count and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read()


def _terminate(proc) -> tuple[int, str]:
    """SIGTERM, as a scheduler sends it; the exit status and stderr."""
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=60), proc.stderr.read()


def test_sigterm_keeps_the_finished_traces_and_the_same_command_resumes(tmp_path):
    cmd, env, traces, log = _start(tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_lines(proc, traces, 10)
    status, stderr = _terminate(proc)
    said = [line for line in stderr.splitlines() if line.strip() and "writing" not in line]
    assert status == 143 and len(said) == 1, stderr
    assert "SIGTERM" in said[0] and "finished traces" in said[0] and str(traces.parent.parent) in said[0]
    assert "Traceback" not in stderr
    kept = _keys(traces)
    assert 10 <= len(kept) < TOTAL and len(set(kept)) == len(kept)
    assert traces.read_bytes().endswith(b"\n")  # whole lines only
    generated_before = len(log.read_text().splitlines())
    assert generated_before - len(kept) <= 2  # at most the traces between the teacher and the write

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"resuming {traces.parent.parent}" in done.stderr and f"{len(kept)} traces stored" in done.stderr
    keys = _keys(traces)
    assert len(keys) == len(set(keys)) == TOTAL and keys[: len(kept)] == kept
    resumed = [tuple(line.split()) for line in log.read_text().splitlines()[generated_before:]]
    assert {(qid, int(i)) for qid, i in resumed} == set(keys) - set(kept)  # only the missing ones generated
    record = json.loads(traces.read_text().splitlines()[0])
    assert record["completion"] == f"trace {record['id']}/{record['sample_index']}" and record["row"]["answer"]


def test_a_second_generate_on_the_same_output_is_refused(tmp_path):
    cmd, env, traces, _ = _start(tmp_path)
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_lines(first, traces, 3)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        errors = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and f"PID {first.pid}" in errors[0], second.stderr
        assert "in use by another r1h distill generate" in errors[0]
    finally:
        _terminate(first)
    keys = _keys(traces)
    assert len(keys) == len(set(keys))  # the refused run wrote nothing
