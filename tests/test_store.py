"""The run directory: config fingerprint, append-only samples, torn last line, duplicates."""

from __future__ import annotations

import json

import pytest

from r1h.harness.core.errors import RunError
from r1h.harness.eval.resume import config_diff, open_run
from r1h.harness.eval.store import RunStore


def _rec(pid, idx, **extra):
    return {"id": pid, "sample_index": idx, "prompt": [{"role": "user", "content": "q"}], "completion": "c",
            "extracted": "1", "reward": 1.0, "correct": True, "finish_reason": "stop", "num_tokens": 3,
            "timed_out": False, **extra}


CONFIG = {"model": "m", "backend": "gold", "backend_args": {}, "limit": 3,
          "benchmarks": {"b": {"version": "1", "generation": {"n": 2, "temperature": 0.6}}}}


def test_open_writes_then_checks_the_config(tmp_path):
    store = RunStore(tmp_path / "run")
    assert open_run(store, CONFIG) is False
    assert json.loads(store.run_json.read_text()) == CONFIG
    assert open_run(store, json.loads(json.dumps(CONFIG))) is True
    other = json.loads(json.dumps(CONFIG))
    other["benchmarks"]["b"]["generation"]["temperature"] = 0.0
    other["limit"] = 5
    with pytest.raises(RunError) as err:
        open_run(store, other)
    message = str(err.value)
    assert "\n" not in message
    assert "benchmarks.b.generation.temperature" in message and "limit" in message and "model" not in message


def test_refuses_samples_without_run_json(tmp_path):
    store = RunStore(tmp_path)
    store.samples("b").append([_rec("a", 0)])
    with pytest.raises(RunError, match="no run.json"):
        open_run(store, CONFIG)


def test_config_diff_names_added_and_removed_keys():
    assert config_diff({"a": 1, "b": {"c": 2}}, {"a": 1, "b": {"c": 3, "d": 4}}) == ["b.c", "b.d"]
    assert config_diff({"a": [1, 2]}, {"a": [1, 2]}) == []


def test_append_then_reload(tmp_path):
    store = RunStore(tmp_path)
    sf = store.samples("b")
    assert sf.append([_rec("a", 0), _rec("a", 1)]) == 2
    assert sf.append([_rec("a", 1), _rec("b", 0)]) == 1  # an already stored key is not written twice
    lines = store.samples_path("b").read_text().splitlines()
    assert [(json.loads(x)["id"], json.loads(x)["sample_index"]) for x in lines] == [("a", 0), ("a", 1), ("b", 0)]
    again = store.samples("b")
    assert again.keys == {("a", 0), ("a", 1), ("b", 0)}
    assert (again.report.lines, again.report.kept, again.report.duplicates, again.report.torn_bytes) == (3, 3, 0, 0)


def test_torn_last_line_is_truncated_and_appends_continue_cleanly(tmp_path):
    store = RunStore(tmp_path)
    store.samples("b").append([_rec("a", 0), _rec("a", 1)])
    path = store.samples_path("b")
    whole = path.read_bytes()
    torn = json.dumps(_rec("a", 2)).encode()[:25]
    path.write_bytes(whole + torn)
    sf = store.samples("b")
    assert sf.report.torn_bytes == len(torn)
    assert path.read_bytes() == whole  # truncated to the last complete line
    assert sf.keys == {("a", 0), ("a", 1)}
    sf.append([_rec("a", 2)])
    reloaded = store.samples("b")
    assert reloaded.keys == {("a", 0), ("a", 1), ("a", 2)} and reloaded.report.torn_bytes == 0
    assert all(json.loads(line) for line in path.read_text().splitlines())


def test_duplicates_keep_the_first_line(tmp_path):
    store = RunStore(tmp_path)
    path = store.samples_path("b")
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(json.dumps(r) for r in [_rec("a", 0, completion="first"), _rec("a", 1),
                                                        _rec("a", 0, completion="second")]) + "\n")
    sf = store.samples("b")
    assert sf.report.duplicates == 1 and len(sf.records) == 2 and len(sf.keys) == 2
    assert [r["completion"] for r in sf.records if r["sample_index"] == 0] == ["first"]


def test_corrupt_line_in_the_middle_is_dropped_and_named(tmp_path):
    store = RunStore(tmp_path)
    path = store.samples_path("b")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_rec("a", 0)) + "\n{not json\n" + json.dumps(_rec("a", 1)) + "\n")
    sf = store.samples("b")
    assert sf.keys == {("a", 0), ("a", 1)}
    assert len(sf.report.bad) == 1 and sf.report.bad[0].startswith(f"{path}:2: not a JSON line")


def test_results_roundtrip_and_missing(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(RunError, match="results.json"):
        store.read_results()
    store.write_results({"model": "m", "benchmarks": {}})
    assert store.read_results() == {"model": "m", "benchmarks": {}}


def test_a_completion_with_a_lone_surrogate_is_stored_and_read_back(tmp_path):
    from r1h.harness.eval.store import SampleFile

    f = SampleFile(tmp_path / "s.jsonl")
    assert f.append([{"id": "p", "sample_index": 0, "completion": "bad \ud800 text é"}]) == 1
    again = SampleFile(tmp_path / "s.jsonl")
    again.load()
    assert again.records[0]["completion"] == "bad \ud800 text é"


# -- validation on resume (issue 10 item 3) ---------------------------------------------------------------------------
def _write_lines(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


@pytest.mark.parametrize(
    "bad, why",
    [
        ({"reward": "abc"}, "reward is 'abc' (expected a number or null)"),
        ({"correct": "yes"}, "correct is 'yes' (expected true or false)"),
        ({"sample_index": -1}, "sample_index is -1 (expected an integer >= 0); dropping it"),
        ({"sample_index": True}, "sample_index is true (expected an integer >= 0); dropping it"),
        ({"id": None}, "id is null (expected a string or integer); dropping it"),
        ({"completion": 3}, "completion is 3 (expected a string)"),
        ({"num_tokens": 2.5}, "num_tokens is 2.5 (expected an integer >= 0)"),
        ({"finish_reason": None}, "finish_reason is null (expected a string)"),
        ({"timed_out": "no"}, "timed_out is 'no' (expected true or false)"),
        ({"extracted": ["1"]}, 'extracted is ["1"] (expected a string or null)'),
    ],
)
def test_a_line_with_a_wrong_type_is_named_and_regenerated(tmp_path, bad, why):
    from r1h.harness.eval.store import SAMPLE_SCHEMA

    store = RunStore(tmp_path)
    _write_lines(store.samples_path("b"), [_rec("a", 0), {**_rec("a", 1), **bad}, _rec("a", 2)])
    sf = store.samples("b", schema=SAMPLE_SCHEMA)
    assert sf.keys == {("a", 0), ("a", 2)}  # the bad line's sample is missing, so resume regenerates it
    suffix = "" if why.endswith("dropping it") else "; regenerating it"
    assert sf.report.bad == [f"{store.samples_path('b')}:2: {why}{suffix}"]
    assert [r["sample_index"] for r in sf.iter_records()] == [0, 2]


def test_a_hostile_line_never_counts_and_a_missing_field_is_named(tmp_path):
    from r1h.harness.eval.store import SAMPLE_SCHEMA

    store = RunStore(tmp_path)
    hostile = {"id": "a", "sample_index": 0, "reward": "abc", "correct": "yes"}
    deep = "[" * 100_000 + "]" * 100_000
    _write_lines(store.samples_path("b"), [hostile, deep, "[1, 2]", _rec("a", 1)])
    sf = store.samples("b", schema=SAMPLE_SCHEMA)
    assert sf.keys == {("a", 1)} and sf.correct == 1
    path = store.samples_path("b")
    assert sf.report.bad == [f"{path}:1: has no 'completion'; regenerating it",
                             f"{path}:2: not a JSON line (nested too deeply); dropping it",
                             f"{path}:3: is a JSON list, not an object; dropping it"]
    # once regenerated, the bad line's sample has a valid line: it is no longer reported
    sf.append([_rec("a", 0)])
    again = store.samples("b", schema=SAMPLE_SCHEMA)
    assert again.report.bad == sf.report.bad[1:] and again.keys == {("a", 0), ("a", 1)}


# -- I/O failures are one line naming the path, and what is on disk stays ------------------------------------------
def test_disk_full_keeps_the_lines_already_on_disk(tmp_path, monkeypatch):
    import errno
    import os

    store = RunStore(tmp_path)
    sf = store.samples("b")
    sf.append([_rec("a", 0)])
    before = store.samples_path("b").read_bytes()
    real_write = os.write

    def full(fd, data):
        real_write(fd, bytes(data)[:10])  # a partial line reaches the disk, then the disk is full
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(RunError) as err:
        sf.append([_rec("a", 1), _rec("a", 2)])
    monkeypatch.undo()
    assert str(err.value) == f"{store.samples_path('b')}: cannot append: No space left on device"
    assert store.samples_path("b").read_bytes() == before  # the torn part was cut back
    assert sf.keys == {("a", 0)}  # not counted as stored: they are regenerated


@pytest.mark.parametrize("kind", ["directory", "symlink_loop"])
def test_a_samples_path_that_cannot_be_a_file_is_one_line(tmp_path, kind):
    store = RunStore(tmp_path)
    path = store.samples_path("b")
    path.parent.mkdir(parents=True)
    if kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(path.name)
    with pytest.raises(RunError) as err:
        store.samples("b")
    message = str(err.value)
    assert message.startswith(f"{path}: cannot read: ") and "\n" not in message
    from r1h.harness.eval.store import SampleFile

    with pytest.raises(RunError, match="cannot append"):
        SampleFile(path).append([_rec("a", 0)])


@pytest.mark.parametrize("err", ["EACCES", "EROFS"])
def test_read_only_run_dir_or_file_is_one_line(tmp_path, monkeypatch, err):
    """Permission bits do not bind root (these tests may run as root), so the OS refusal is simulated."""
    import errno
    import os
    import tempfile

    store = RunStore(tmp_path / "run")
    open_run(store, CONFIG)
    code = getattr(errno, err)

    def refuse(*a, **k):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(tempfile, "mkstemp", refuse)
    with pytest.raises(RunError) as e:
        store.write_results({"model": "m"})
    assert str(e.value) == f"{store.results_json}: cannot write: {os.strerror(code)}"
    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(RunError) as e:
        store.samples("b").append([_rec("a", 0)])
    assert str(e.value) == f"{store.samples_path('b')}: cannot append: {os.strerror(code)}"


def test_atomic_writes_use_unique_temp_names_and_leave_none_behind(tmp_path, monkeypatch):
    import tempfile

    from r1h.harness.eval.store import atomic_write

    names = []
    real = tempfile.mkstemp

    def spy(*a, **k):
        fd, name = real(*a, **k)
        names.append(name)
        return fd, name

    monkeypatch.setattr(tempfile, "mkstemp", spy)
    atomic_write(tmp_path / "results.json", "{}")
    atomic_write(tmp_path / "results.json", "{\"a\": 1}")
    assert len(set(names)) == 2 and all(n.startswith(str(tmp_path / ".results.json.")) for n in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.json"]
    assert json.loads((tmp_path / "results.json").read_text()) == {"a": 1}


# -- the --output lock ------------------------------------------------------------------------------------------------
def test_lock_whole_run_versus_shards(tmp_path):
    import os

    from r1h.harness.eval.lock import RunLock

    tmp_path.mkdir(exist_ok=True)
    with RunLock(tmp_path):
        with pytest.raises(RunError, match=rf"in use by another r1h eval \(PID {os.getpid()}\)"):
            RunLock(tmp_path).acquire()
        with pytest.raises(RunError, match="in use"):
            RunLock(tmp_path, "shard-0-of-2").acquire()
    a, b = RunLock(tmp_path, "shard-0-of-2").acquire(), RunLock(tmp_path, "shard-1-of-2").acquire()  # side by side
    with pytest.raises(RunError, match="shard-0-of-2 is already running"):
        RunLock(tmp_path, "shard-0-of-2").acquire()
    with pytest.raises(RunError, match=rf"PID {os.getpid()}, PID {os.getpid()}\)"):  # merge waits for both shards
        RunLock(tmp_path).acquire()
    a.release()
    b.release()
    RunLock(tmp_path).acquire().release()  # free again


def test_a_filesystem_without_locks_runs_unlocked_with_a_warning(tmp_path, monkeypatch):
    import errno
    import fcntl

    from r1h.harness.eval.lock import RunLock

    def no_locks(fd, op):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    with RunLock(tmp_path) as lock:
        assert "cannot lock (No locks available); running without a lock" in lock.warning
