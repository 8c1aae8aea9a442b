"""A real ``r1h eval`` process killed with SIGKILL mid-run, twice, then resumed: the sample set ends up complete, free of
duplicates, generated exactly once per stored sample, and the results match the samples."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from r1h.harness.core.types import sample_seed
from r1h.harness.eval.metrics import pass_at_k

PROBLEMS, N = 30, 4
TOTAL = PROBLEMS * N

DRIVER = textwrap.dedent(
    '''
    """A slow deterministic backend and a fake benchmark registered through the plugin API, then the real CLI."""
    import sys
    import time

    from r1h import Backend, Benchmark, Completion, Reward, Sample, hookimpl
    from r1h.harness.core.types import Generated


    class SlowBench(Benchmark):
        name = "slow_bench"
        default_samples = 4
        reward = "slow_exact"

        def load(self, source=None, limit=None):
            return [Sample(id=f"q{i}", columns={"answer": str(i)}) for i in range(30)][:limit]

        def prompt(self, sample):
            return [{"role": "user", "content": "say " + sample.columns["answer"]}]

        def reference_completion(self, sample):
            return sample.columns["answer"]


    class Exact(Reward):
        name = "slow_exact"
        columns = ("answer",)

        def score(self, completion, prompt=None, **row):
            return 1.0 if completion == row["answer"] else 0.0

        def extract(self, completion, prompt=None, **row):
            return completion


    class Slow(Backend):
        """A streaming engine with 4 slots: samples finish out of order (the later-submitted one of each pair
        first), each logged (flushed) before it is yielded."""

        name = "slow"

        def stream(self, requests, config):
            slots = []
            with open(self.backend_args["log"], "a", buffering=1) as log:
                for r in requests:
                    slots += [(r, i, s) for i, s in zip(r.sample_indices, r.seeds)]
                    while len(slots) >= 4:
                        yield from self._finish(slots[:2][::-1], log)
                        del slots[:2]
                yield from self._finish(slots[::-1], log)

        def _finish(self, done, log):
            for r, i, s in done:
                time.sleep(float(self.backend_args["delay"]))
                log.write(f"{r.id} {i}\\n")
                yield Generated(r, i, Completion(text=r.id[1:] if s % 2 else "x", num_tokens=3))


    class Plugin:
        @hookimpl
        def r1h_register_benchmarks(self, register):
            register("slow_bench", SlowBench)

        @hookimpl
        def r1h_register_rewards(self, register):
            register("slow_exact", Exact)

        @hookimpl
        def r1h_register_backends(self, register):
            register("slow", Slow)


    if __name__ == "__main__":
        from r1h.harness.core import plugins

        plugins._CURRENT = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(Plugin(),))
        from r1h.harness.cli.main import main

        main(sys.argv[1:])
    '''
)


def _keys(path: Path) -> list[tuple[str, int]]:
    out = []
    for line in path.read_text().splitlines():
        record = json.loads(line)
        out.append((record["id"], record["sample_index"]))
    return out


def _complete_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def test_kill_9_mid_run_then_resume(tmp_path):
    driver = tmp_path / "drive.py"
    driver.write_text(DRIVER)
    out, log = tmp_path / "run", tmp_path / "generated.log"
    samples = out / "samples" / "slow_bench.jsonl"
    cmd = [sys.executable, str(driver), "eval", "--bench", "slow_bench", "--backend", "slow",
           "--backend-arg", f"log={log}", "--backend-arg", "delay=0.02",
           "--output", str(out), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))

    for threshold in (20, 60):  # two kills at different points
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while _complete_lines(samples) < threshold and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        count = _complete_lines(samples)
        assert threshold <= count < TOTAL  # killed mid-run, with samples on disk
    # a kill in the middle of a write leaves a torn last line: resume must drop it
    with open(samples, "ab") as fh:
        fh.write(b'{"id": "q29", "sample_index": 3, "prompt": [{"ro')

    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "torn" in done.stderr

    keys = _keys(samples)
    assert len(keys) == len(set(keys)) == TOTAL  # complete, no duplicates
    assert set(keys) == {(f"q{i}", j) for i in range(PROBLEMS) for j in range(N)}
    # each stored sample was generated once, except those in flight when a kill came (generated, never stored)
    generated = [tuple(line.split()) for line in log.read_text().splitlines()]
    generated = [(pid, int(idx)) for pid, idx in generated]
    lost = len(generated) - TOTAL
    assert 0 <= lost <= 2 * 4  # per kill, at most the few samples between the backend and the fsync
    assert set(generated) == set(keys)

    records = [json.loads(line) for line in samples.read_text().splitlines()]
    for r in records:
        seed = sample_seed(0, r["id"], r["sample_index"])
        assert r["completion"] == (r["id"][1:] if seed % 2 else "x")
        assert r["correct"] == bool(seed % 2)
    results = json.loads((out / "results.json").read_text())["benchmarks"]["slow_bench"]
    per_problem: dict[str, int] = {}
    for r in records:
        per_problem[r["id"]] = per_problem.get(r["id"], 0) + r["correct"]
    assert results["pass@1"] == sum(c / N for c in per_problem.values()) / PROBLEMS
    assert results["pass@k"]["4"] == sum(pass_at_k(N, c, 4) for c in per_problem.values()) / PROBLEMS
    assert (results["total_samples"], results["n_problems"]) == (TOTAL, PROBLEMS)
    assert (out / "report.md").exists() and (out / "passk.png").exists()


def _start(tmp_path, delay="0.05"):
    driver = tmp_path / "drive.py"
    driver.write_text(DRIVER)
    out, log = tmp_path / "run", tmp_path / "generated.log"
    cmd = [sys.executable, str(driver), "eval", "--bench", "slow_bench", "--backend", "slow",
           "--backend-arg", f"log={log}", "--backend-arg", f"delay={delay}", "--output", str(out), "--no-progress"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]))
    return cmd, env, out / "samples" / "slow_bench.jsonl"


def _wait_for_lines(proc, samples, count):
    deadline = time.monotonic() + 60
    while _complete_lines(samples) < count and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.stderr.read().decode()


def test_a_second_eval_on_the_same_output_is_refused_and_a_stale_lock_taken_over(tmp_path):
    cmd, env, samples = _start(tmp_path)
    first = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_for_lines(first, samples, 4)
        second = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
        assert second.returncode == 1
        errors = [line for line in second.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and f"PID {first.pid}" in errors[0] and "in use" in errors[0], second.stderr
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert (samples.parent.parent / ".lock").read_text().split()[0] == str(first.pid)  # a stale lock file
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)  # takes the stale lock over
    assert done.returncode == 0, done.stderr
    keys = _keys(samples)
    assert len(keys) == len(set(keys)) == TOTAL


def test_sigterm_stops_cleanly_with_143_and_the_run_resumes(tmp_path):
    cmd, env, samples = _start(tmp_path)
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _wait_for_lines(proc, samples, 10)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 143, stderr
    lines = [line for line in stderr.splitlines() if line.strip() and "writing" not in line]
    assert len(lines) == 1 and "SIGTERM" in lines[0] and str(samples.parent.parent) in lines[0], stderr
    assert "Traceback" not in stderr
    kept = _keys(samples)
    assert 10 <= len(kept) < TOTAL and len(set(kept)) == len(kept)
    assert samples.read_bytes().endswith(b"\n")  # whole lines only
    done = subprocess.run(cmd[:-1] + ["--no-progress"], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    keys = _keys(samples)
    assert len(keys) == len(set(keys)) == TOTAL and keys[: len(kept)] == kept
