"""The streaming runner: out-of-order completions, grading overlapping generation, old-style backends, a backend
that dies mid-stream, shards and --merge, the sampling-policy flag and --budget in the fingerprint."""

from __future__ import annotations

import json
import threading
import time

import pytest
from helpers.evalfakes import CALLS, ExactReward, FakeBackend, FakeBench, GreedyBench, expected_text

from r1h import Backend, Completion, Reward, hookimpl
from r1h.harness.core import plugins
from r1h.harness.core.errors import RunError
from r1h.harness.core.types import Generated, sample_seed
from r1h.harness.eval.plan import EvalOptions
from r1h.harness.eval.runner import run_eval
from r1h.harness.eval.shards import parse_shard, shard_of

PULLED: list[str] = []  # request ids in the order the streaming backend pulled them
YIELDED: list[tuple[str, int]] = []
STATE: dict = {}


def _completion(r, seed):
    return Completion(text=expected_text(r.id, seed), finish_reason="length" if seed % 5 == 0 else "stop",
                      num_tokens=7)


class ReverseStream(Backend):
    """A continuous-batching stand-in: keeps a window of 5 requests in flight and finishes the newest first."""

    name = "h8_reverse"

    def stream(self, requests, config):
        window = []
        for r in requests:
            PULLED.append(r.id)
            window.append(r)
            if len(window) == 5:
                yield from self._drain(window)
        yield from self._drain(window)

    def _drain(self, window):
        while window:
            r = window.pop()
            for index, seed in reversed(list(zip(r.sample_indices, r.seeds, strict=True))):
                YIELDED.append((r.id, index))
                yield Generated(r, index, _completion(r, seed))


class Counted(ReverseStream):
    """Counts how often it is constructed (the model load)."""

    name = "h8_counted"

    def __init__(self, *a, **k):
        super().__init__(*a, **k)
        STATE["loads"] = STATE.get("loads", 0) + 1


class Ticking(Backend):
    """Yields one sample every few ms and notes how many lines were on disk when it yielded the last one."""

    name = "h8_ticking"

    def stream(self, requests, config):
        path = STATE["samples"]
        for r in requests:
            for index, seed in zip(r.sample_indices, r.seeds, strict=True):
                time.sleep(0.003)
                STATE.setdefault("first_write_seen_at", None)
                if STATE["first_write_seen_at"] is None and path.exists() and path.stat().st_size:
                    STATE["first_write_seen_at"] = len(YIELDED)
                YIELDED.append((r.id, index))
                yield Generated(r, index, _completion(r, seed))
        STATE["lines_when_generation_ended"] = path.read_bytes().count(b"\n") if path.exists() else 0


class Dying(ReverseStream):
    """ReverseStream that raises after STATE["die_at"] samples (the fingerprint does not change between runs)."""

    name = "h8_dying"

    def stream(self, requests, config):
        for count, g in enumerate(super().stream(requests, config)):
            if count == STATE.get("die_at"):
                raise RuntimeError("engine died")
            yield g


class DuckTyped:
    """A third-party backend that does not subclass r1h.Backend and only has ``generate``."""

    name = "h8_duck"

    def __init__(self, model=None, **backend_args):
        self.model = model

    def generate(self, requests, config):
        return [[_completion(r, s) for s in r.seeds] for r in requests]


class SlowReward(Reward):
    name = "h8_slow"
    columns = ("answer",)

    def score(self, completion, prompt=None, **row):
        time.sleep(0.02)
        return 1.0 if completion.strip() == row["answer"] else 0.0

    def extract(self, completion, prompt=None, **row):
        return completion.strip() or None


class SlowBench(FakeBench):
    name = "h8_slowbench"
    reward = "h8_slow"


class Plugin:
    @hookimpl
    def r1h_register_benchmarks(self, register):
        register("h6_bench", FakeBench)
        register("h6_greedy", GreedyBench)
        register("h8_slowbench", SlowBench)

    @hookimpl
    def r1h_register_rewards(self, register):
        register("h6_exact", ExactReward)
        register("h8_slow", SlowReward)

    @hookimpl
    def r1h_register_backends(self, register):
        for cls in (FakeBackend, ReverseStream, Counted, Ticking, Dying, DuckTyped):
            register(cls.name, cls)


@pytest.fixture(autouse=True)
def fake_plugins():
    plugins._CURRENT = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(Plugin(),))
    PULLED.clear()
    YIELDED.clear()
    STATE.clear()
    yield


def opts(tmp_path, name="run", **kw):
    base = dict(bench="h6_bench", backend="h6_fake", output=str(tmp_path / name), progress=False)
    base.update(kw)
    return EvalOptions(**base)


def records(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_out_of_order_completions_are_stored_under_their_own_keys(tmp_path):
    reference = run_eval(opts(tmp_path, "ref"))
    results = run_eval(opts(tmp_path, backend="h8_reverse"))
    stored = records(tmp_path / "run" / "samples" / "h6_bench.jsonl")
    keys = [(r["id"], r["sample_index"]) for r in stored]
    assert keys == YIELDED and keys != sorted(keys)  # stored in the order they finished, which is not request order
    assert len(set(keys)) == 40
    for r in stored:
        seed = sample_seed(0, r["id"], r["sample_index"])
        assert (r["seed"], r["completion"]) == (seed, expected_text(r["id"], seed))
        assert r["prompt"] == [{"role": "user", "content": f"say {r['id'][1:]}"}]
    assert results["benchmarks"] == reference["benchmarks"]


def test_requests_are_pulled_lazily(tmp_path):
    """The backend gets an iterator: the 6th request is built only after the first 5 were answered."""
    run_eval(opts(tmp_path, backend="h8_reverse"))
    assert PULLED == [f"p{i}" for i in range(10)]
    assert YIELDED.index(("p4", 0)) < YIELDED.index(("p5", 3))


def test_grading_overlaps_generation(tmp_path):
    """A reward 7x slower than the engine: the engine still yields every sample while most are not yet graded,
    and the first graded lines reach the disk before generation ends."""
    STATE["samples"] = tmp_path / "run" / "samples" / "h8_slowbench.jsonl"
    results = run_eval(opts(tmp_path, bench="h8_slowbench", backend="h8_ticking"))
    assert results["benchmarks"]["h8_slowbench"]["total_samples"] == 40
    assert STATE["lines_when_generation_ended"] < 40 / 2  # generation never waited for grading
    assert STATE["first_write_seen_at"] is not None and STATE["first_write_seen_at"] < 40  # written while generating


@pytest.mark.parametrize("backend", ["h6_fake", "h8_duck"])
def test_old_style_generate_backends_still_run(tmp_path, backend):
    reference = run_eval(opts(tmp_path, "ref", backend="h8_reverse"))
    results = run_eval(opts(tmp_path, backend=backend))
    assert results["benchmarks"] == reference["benchmarks"]


def test_a_backend_dying_mid_stream_keeps_what_was_generated_and_resumes(tmp_path):
    STATE["die_at"] = 13
    with pytest.raises(RuntimeError, match="engine died"):
        run_eval(opts(tmp_path, backend="h8_dying"))
    path = tmp_path / "run" / "samples" / "h6_bench.jsonl"
    kept = [(r["id"], r["sample_index"]) for r in records(path)]
    assert kept == YIELDED[:13]  # everything yielded before the error was graded and written
    YIELDED.clear()
    STATE.clear()
    results = run_eval(opts(tmp_path, backend="h8_dying"))
    assert sorted(YIELDED) == sorted({(f"p{i}", j) for i in range(10) for j in range(4)} - set(kept))
    assert results["benchmarks"]["h6_bench"]["total_samples"] == 40
    assert len(records(path)) == 40


def test_shard_assignment_is_stable_and_parsed():
    assert shard_of("p1", 0, 8) == shard_of("p1", 0, 8)
    # pinned: sha256 of "id:index", never Python's salted hash(), so every machine agrees
    assert [shard_of(f"p{i}", j, 4) for i in range(3) for j in range(2)] == [1, 2, 2, 3, 1, 2]
    assert parse_shard("3/8").label == "shard-3-of-8" and parse_shard(None) is None


@pytest.mark.parametrize("finish", ["merge", "plain"])
def test_two_shards_then_merge_equal_one_full_run(tmp_path, finish):
    full = run_eval(opts(tmp_path, "full", backend="h8_reverse"))
    YIELDED.clear()
    for i in range(2):
        summary = run_eval(opts(tmp_path, backend="h8_reverse", shard=f"{i}/2"))
        assert summary["shard"] == f"shard-{i}-of-2"
    samples = tmp_path / "run" / "samples"
    parts = [records(samples / f"h6_bench.shard-{i}-of-2.jsonl") for i in range(2)]
    keys = [{(r["id"], r["sample_index"]) for r in part} for part in parts]
    assert keys[0] and keys[1] and not keys[0] & keys[1] and len(keys[0] | keys[1]) == 40
    assert len(YIELDED) == 40  # each pair generated once, by its own shard
    assert run_eval(opts(tmp_path, backend="h8_reverse", shard="0/2"))["benchmarks"]["h6_bench"]["stored"] == len(
        keys[0])  # a finished shard generates nothing more
    assert len(YIELDED) == 40
    if finish == "merge":
        merged = run_eval(EvalOptions(output=str(tmp_path / "run"), merge=True, progress=False))
    else:
        merged = run_eval(opts(tmp_path, backend="h8_reverse"))
    assert len(YIELDED) == 40  # merging generated nothing
    assert merged["benchmarks"] == full["benchmarks"] and merged["config"] == full["config"]
    main = records(samples / "h6_bench.jsonl")
    assert len(main) == 40 and {(r["id"], r["sample_index"]) for r in main} == keys[0] | keys[1]
    again = run_eval(EvalOptions(output=str(tmp_path / "run"), merge=True, progress=False))
    assert again["benchmarks"] == full["benchmarks"] and len(records(samples / "h6_bench.jsonl")) == 40


def test_merge_generates_what_no_shard_did(tmp_path):
    run_eval(opts(tmp_path, backend="h8_reverse", shard="1/3"))
    done = set(YIELDED)
    YIELDED.clear()
    merged = run_eval(EvalOptions(output=str(tmp_path / "run"), merge=True, progress=False))
    assert set(YIELDED) == {(f"p{i}", j) for i in range(10) for j in range(4)} - done
    assert merged["benchmarks"]["h6_bench"]["total_samples"] == 40


def test_sampling_policy_budget_and_engine_are_recorded(tmp_path):
    results = run_eval(opts(tmp_path, generation_policy="model", budget=5.0))
    run_json = json.loads((tmp_path / "run" / "run.json").read_text())
    assert run_json["benchmarks"]["h6_bench"]["generation"]["policy"] == "model"
    assert run_json["budget"] == 5.0 and "engine" not in run_json
    assert results["engine"] == {"backend": "h6_fake"}  # Backend.describe(), kept out of the fingerprint
    assert "h6_bench: 40/40 samples (100%)" in (tmp_path / "run" / "eval.log").read_text()
    with pytest.raises(RunError, match=r"budget"):
        run_eval(opts(tmp_path, generation_policy="model", budget=6.0))
    with pytest.raises(RunError, match=r"generation\.policy"):
        run_eval(opts(tmp_path, budget=5.0))


def test_a_backend_yielding_a_sample_nobody_asked_for_is_a_run_error(tmp_path):
    class Liar(Backend):
        name = "h8_liar"

        def stream(self, requests, config):
            r = next(iter(requests))
            yield Generated(r, 99, Completion(text="x"))

    backend = Liar()
    from r1h.harness.eval.pipeline import stream_benchmark
    from r1h.harness.eval.plan import plan_benchmarks
    from r1h.harness.eval.store import SampleFile

    plan = plan_benchmarks(opts(tmp_path))[0]
    sink = SampleFile(tmp_path / "s.jsonl")
    with pytest.raises(RunError, match="sample 99 of problem 'p0'"):
        stream_benchmark(plan, backend, sink, [(plan.samples[0], [0, 1])])
    assert threading.active_count() < 20  # the grading thread did not linger


def test_resume_regenerates_a_hostile_line_and_names_it(tmp_path):
    import io

    from rich.console import Console

    first = run_eval(opts(tmp_path, backend="h6_fake", greedy=True, bench="h6_greedy"))
    path = tmp_path / "run" / "samples" / "h6_greedy.jsonl"
    lines = path.read_text().splitlines()
    victim = json.loads(lines[3])
    lines[3] = json.dumps({"id": victim["id"], "sample_index": 0, "reward": "abc", "correct": "yes"})
    lines[5] = lines[5].replace('"num_tokens": 7', '"num_tokens": "7"')
    path.write_text("\n".join(lines) + "\n")
    CALLS.clear()
    buf = io.StringIO()
    again = run_eval(opts(tmp_path, backend="h6_fake", greedy=True, bench="h6_greedy"), console=Console(file=buf))
    assert sorted(pid for call in CALLS for pid, _, _ in call) == sorted([victim["id"], json.loads(lines[5])["id"]])
    assert again["benchmarks"] == first["benchmarks"] and again["benchmarks"]["h6_greedy"]["pass@1"] < 1.0
    err = buf.getvalue()
    assert f"{path}:4: has no 'completion'; regenerating it" in err
    assert f"{path}:6: num_tokens is '7' (expected an integer >= 0); regenerating it" in err


def test_an_unusable_samples_path_is_one_line_and_the_run_dir_survives(tmp_path):
    run_eval(opts(tmp_path, limit=2))
    path = tmp_path / "run" / "samples" / "h6_bench.jsonl"
    path.unlink()
    path.mkdir()
    with pytest.raises(RunError, match=rf"^{path}: cannot read: Is a directory$"):
        run_eval(opts(tmp_path, limit=2))
    path.rmdir()
    path.symlink_to(path.name)
    with pytest.raises(RunError, match=rf"^{path}: cannot read: Too many levels of symbolic links$"):
        run_eval(opts(tmp_path, limit=2))
    assert (tmp_path / "run" / "run.json").is_file()


def test_disk_full_mid_run_is_one_line_and_keeps_what_was_written(tmp_path, monkeypatch):
    import errno
    import os

    real_write, calls = os.write, []

    def filling(fd, data):
        calls.append(len(data))
        if len(calls) > 2:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    monkeypatch.setattr(os, "write", filling)
    STATE["samples"] = tmp_path / "run" / "samples" / "h6_bench.jsonl"  # a slow engine: many small appends
    with pytest.raises(RunError) as err:
        run_eval(opts(tmp_path, backend="h8_ticking"))
    monkeypatch.undo()
    path = tmp_path / "run" / "samples" / "h6_bench.jsonl"
    assert str(err.value) == f"{path}: cannot append: No space left on device"
    kept = records(path)  # whole, valid lines only
    assert 0 < len(kept) < 40 and path.read_bytes().endswith(b"\n")
    results = run_eval(opts(tmp_path, backend="h8_ticking"))
    assert results["benchmarks"]["h6_bench"]["total_samples"] == 40 and records(path)[: len(kept)] == kept


def test_benchmarks_run_back_to_back_on_one_loaded_backend(tmp_path):
    results = run_eval(opts(tmp_path, bench="h6_bench,h6_greedy", backend="h8_counted"))
    assert set(results["benchmarks"]) == {"h6_bench", "h6_greedy"} and STATE["loads"] == 1
    assert len(YIELDED) == 40 + 10
