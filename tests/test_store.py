"""The run directory: config fingerprint, append-only samples, torn last line, duplicates."""

from __future__ import annotations

import json

import pytest

from r1h.harness.errors import RunError
from r1h.harness.store import RunStore, config_diff


def _rec(pid, idx, **extra):
    return {"id": pid, "sample_index": idx, "prompt": [{"role": "user", "content": "q"}], "completion": "c",
            "extracted": "1", "reward": 1.0, "correct": True, "finish_reason": "stop", "num_tokens": 3,
            "timed_out": False, **extra}


CONFIG = {"model": "m", "backend": "gold", "backend_args": {}, "limit": 3,
          "benchmarks": {"b": {"version": "1", "generation": {"n": 2, "temperature": 0.6}}}}


def test_open_writes_then_checks_the_config(tmp_path):
    store = RunStore(tmp_path / "run")
    assert store.open(CONFIG) is False
    assert json.loads(store.run_json.read_text()) == CONFIG
    assert store.open(json.loads(json.dumps(CONFIG))) is True
    other = json.loads(json.dumps(CONFIG))
    other["benchmarks"]["b"]["generation"]["temperature"] = 0.0
    other["limit"] = 5
    with pytest.raises(RunError) as err:
        store.open(other)
    message = str(err.value)
    assert "\n" not in message
    assert "benchmarks.b.generation.temperature" in message and "limit" in message and "model" not in message


def test_refuses_samples_without_run_json(tmp_path):
    store = RunStore(tmp_path)
    store.samples("b").append([_rec("a", 0)])
    with pytest.raises(RunError, match="no run.json"):
        store.open(CONFIG)


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
    from r1h.harness.store import SampleFile

    f = SampleFile(tmp_path / "s.jsonl")
    assert f.append([{"id": "p", "sample_index": 0, "completion": "bad \ud800 text é"}]) == 1
    again = SampleFile(tmp_path / "s.jsonl")
    again.load()
    assert again.records[0]["completion"] == "bad \ud800 text é"
