"""The batch grader: hard per-item budgets (worker kill), any thread, input order, crashes, inline rewards, budgets."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from fractions import Fraction
from pathlib import Path

import pytest
from helpers.misbehaving import Misbehaving

import r1h
from r1h.harness.core import plugins
from r1h.harness.core.errors import ConfigError
from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.types import GradeResult
from r1h.harness.grading import zygote
from r1h.harness.grading.budget import resolve_budget
from r1h.harness.grading.pool import GradingPool, grade
from r1h.harness.grading.protocol import REWARD_CACHE

BUDGET = 0.5
MARGIN = 1.5  # kill, replacement and scheduling noise on a loaded 2-core machine


class InlineSlow(Misbehaving):
    """Not isolated: runs in the caller, so a slow item is timed and flagged, not killed."""

    name = "inline_slow"
    isolate = False

    def score(self, completion, prompt=None, **row):
        if completion == "slow":
            time.sleep(BUDGET + 0.3)
            return 1.0
        return super().score(completion, prompt, **row)


class _Plugin:
    @hookimpl
    def r1h_register_rewards(self, register):
        register("misbehaving", f"{__name__}:Misbehaving", version="1")


@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=2) as p:
        p.warm(Misbehaving())  # cold start-up is not what these tests time
        yield p


def test_a_runaway_item_is_killed_and_the_others_still_score(pool):
    reward = Misbehaving()
    items = ["1", "hang", "2", "sleep", "1", "raise", "1"]
    start = time.monotonic()
    results = grade(reward, items, rows=[{"answer": "1"}] * len(items), budget=BUDGET, pool=pool)
    elapsed = time.monotonic() - start
    assert [r.score for r in results] == [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 1.0]
    assert [r.timed_out for r in results] == [False, True, False, True, False, False, False]
    assert [r.extracted for r in results][:3] == ["1", None, "2"]
    assert "ValueError: broken item" in results[5].error
    # two hung items on two workers run side by side: about one budget, never the 3600 s sleep
    assert elapsed < 2 * BUDGET + MARGIN + 2  # + replacement start-up


def test_hard_kill_works_from_a_non_main_thread(pool):
    out: dict[str, object] = {}

    def run():
        start = time.monotonic()
        out["results"] = grade(Misbehaving(), ["hang", "1"], rows=[{"answer": "1"}] * 2, budget=BUDGET, pool=pool)
        out["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive()
    first, second = out["results"]
    assert first.timed_out and first.score == 0.0
    assert second.score == 1.0 and not second.timed_out
    assert out["elapsed"] < BUDGET + MARGIN + 2


def test_default_budget_path_through_the_reward_call_from_a_thread(monkeypatch):
    """TRL's call shape, off the main thread, through the shared default pool, with the env budget."""
    monkeypatch.setenv("R1H_GRADING_BUDGET", str(BUDGET))
    built = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(_Plugin(),))
    monkeypatch.setattr(plugins, "_CURRENT", built)
    reward = r1h.get_reward("misbehaving")
    assert reward.__name__ == "misbehaving"
    out: dict[str, object] = {}
    thread = threading.Thread(target=lambda: out.setdefault("scores", reward(
        completions=["1", "hang", [{"role": "assistant", "content": "1"}]], prompts=["p"] * 3,
        completion_ids=[[1]] * 3, trainer_state=None, answer=["1", "1", "1"])))
    thread.start()
    thread.join(timeout=30)
    assert out["scores"] == [1.0, 0.0, 1.0]


def test_a_crashing_worker_is_an_error_and_replaced(pool):
    restarts = pool.restarts
    results = grade(Misbehaving(), ["die", "1", "1"], rows=[{"answer": "1"}] * 3, budget=5, pool=pool)
    assert results[0].score == 0.0 and not results[0].timed_out
    assert "died" in results[0].error
    assert [r.score for r in results[1:]] == [1.0, 1.0]
    assert pool.restarts == restarts + 1
    assert grade(Misbehaving(), ["1"], rows=[{"answer": "1"}], pool=pool)[0].score == 1.0


def test_isolated_items_run_in_workers_and_order_is_kept(pool):
    n = 300
    items = [str(i % 7) for i in range(n)]
    seen: list[int] = []
    results = pool.grade(Misbehaving(), items, rows=[{"answer": "3"}] * n, progress=seen.append)
    assert [r.score for r in results] == [1.0 if i % 7 == 3 else 0.0 for i in range(n)]
    assert [r.extracted for r in results] == items
    assert seen == list(range(1, n + 1))
    assert grade(Misbehaving(), ["where"], pool=pool)[0].score == 1.0  # ran in a worker process


def test_workers_stay_warm_between_batches(pool):
    grade(Misbehaving(), ["1", "1"], rows=[{"answer": "1"}] * 2, pool=pool)
    pids = pool.stats().pids
    assert len(pids) == pool.workers + pool.spares
    restarts = pool.restarts
    for _ in range(3):
        grade(Misbehaving(), ["1", "2", "1"], rows=[{"answer": "1"}] * 3, pool=pool)
    assert pool.stats().pids == pids and pool.restarts == restarts


def test_a_broken_progress_callback_does_not_break_grading(pool):
    def progress(done):
        raise RuntimeError("bar")

    assert [r.score for r in grade(Misbehaving(), ["1", "2"], rows=[{"answer": "1"}] * 2, pool=pool,
                                   progress=progress)] == [1.0, 0.0]


def test_inline_reward_overrun_scores_zero_as_a_timeout():
    results = grade(InlineSlow(), ["1", "slow", "where"], rows=[{"answer": "1"}] * 3, budget=BUDGET)
    assert [r.score for r in results] == [1.0, 0.0, 0.0]  # "where": inline, not in a worker
    assert [r.timed_out for r in results] == [False, True, False]


def test_unpicklable_isolated_reward_falls_back_to_inline(pool):
    class Local(Misbehaving):  # a local class cannot be pickled by reference
        pass

    results = grade(Local(), ["1", "where"], rows=[{"answer": "1"}] * 2, pool=pool)
    assert [r.score for r in results] == [1.0, 0.0]


def test_empty_and_mismatched_inputs(pool):
    assert grade(Misbehaving(), [], pool=pool) == []
    with pytest.raises(ConfigError, match="2 completions but 1 rows"):
        grade(Misbehaving(), ["1", "2"], rows=[{}], pool=pool)
    with pytest.raises(ConfigError, match="2 completions but 3 prompts"):
        grade(InlineSlow(), ["1", "2"], prompts=["a", "b", "c"])


def test_budget_resolution(monkeypatch):
    monkeypatch.delenv("R1H_GRADING_BUDGET", raising=False)
    assert resolve_budget(Misbehaving()) == 2.0
    assert resolve_budget(Misbehaving(), 5.0) == 5.0
    monkeypatch.setenv("R1H_GRADING_BUDGET", "7.5")
    assert resolve_budget(Misbehaving()) == 7.5
    assert resolve_budget(Misbehaving(budget=3.0)) == 3.0  # a reward built with its own budget keeps it
    monkeypatch.setenv("R1H_GRADING_BUDGET", "soon")
    with pytest.raises(ConfigError, match="R1H_GRADING_BUDGET"):
        resolve_budget(Misbehaving())
    with pytest.raises(ConfigError, match="positive"):
        resolve_budget(Misbehaving(), 0)


@pytest.mark.parametrize("forked", [False, True])
def test_workers_die_with_a_killed_parent(tmp_path, forked):
    """A parent killed with SIGKILL leaves no worker spinning on a hung item: neither a fresh interpreter nor a
    worker forked from the zygote (nor the zygote)."""
    script = tmp_path / "parent.py"
    script.write_text(textwrap.dedent(f"""
        import sys, threading, time
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from helpers.misbehaving import Misbehaving
        from r1h.harness.grading.pool import GradingPool, grade
        pool = GradingPool(workers=1)
        if {forked!r}:
            pool.warm(Misbehaving())  # a cold pool waits for the zygote to load the reward
            assert pool.stats().zygote_rewards == 1
            for _ in range(2):  # the worker and the spare are killed: their replacements are forked
                grade(Misbehaving(), ["hang"], budget=0.2, pool=pool)
        threading.Thread(target=pool.grade, args=(Misbehaving(), ["hang"]), kwargs={{"budget": 3600}},
                         daemon=True).start()
        while not any(m.busy for m in pool.stats().members):
            time.sleep(0.05)
        busy = [m for m in pool.stats().members if m.busy]
        pids = [m.pid for m in busy]
        if {forked!r}:
            assert all(m.forked for m in busy)
        if pool.stats().zygote_pid is not None:
            pids.append(pool.stats().zygote_pid)
        print(*pids, flush=True)
        time.sleep(3600)
    """))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
    finally:
        parent.kill()
        parent.wait()
    assert pids
    if forked:
        assert len(pids) == 2
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited


@pytest.mark.skipif(not zygote.supported(), reason="the zygote needs Linux fork + pidfd")
def test_a_cold_pool_forks_every_worker_from_one_zygote():
    """One interpreter imports and loads the reward; the workers and the spare are forked from it, so a cold start
    costs one import instead of workers + spares + 1 competing for the cores."""
    with GradingPool(workers=2) as cold:
        results = grade(Misbehaving(), ["1", "2", "1", "where", "frozen"], rows=[{"answer": "1"}] * 5, pool=cold)
        assert [r.score for r in results] == [1.0, 0.0, 1.0, 1.0, 1.0]
        stats = cold.stats()
        assert len(stats.members) == 3  # 2 workers + 1 spare
        assert all(m.forked for m in stats.members)
        assert stats.zygote_pid is not None  # alive


class Fractional:
    """A duck-typed isolated reward (not an r1h.Reward, so nothing coerces its numbers): scores a Fraction."""

    isolate = True

    def grade_one(self, completion, prompt=None, row=None):
        return GradeResult(score=Fraction(1, 2), extracted=completion)


def test_grade_results_are_json_friendly(pool):
    """Results go straight into JSONL files: plain floats, whatever number type the reward returned."""
    results = grade(Misbehaving(), ["1"], rows=[{"answer": "1"}], pool=pool) + grade(Fractional(), ["x"], pool=pool)
    assert [json.loads(json.dumps(vars(r))) for r in results] == [
        {"score": 1.0, "extracted": "1", "timed_out": False, "error": None},
        {"score": 0.5, "extracted": "x", "timed_out": False, "error": None},
    ]
    assert [type(r.score) for r in results] == [float, float]


def test_many_distinct_rewards_cycle_through_the_worker_cache():
    with GradingPool(workers=1) as one:
        rewards = [Misbehaving(budget=1.0 + i) for i in range(REWARD_CACHE + 3)]
        for reward in rewards + rewards[:2]:
            results = grade(reward, ["1", "2"], rows=[{"answer": "1"}] * 2, pool=one)
            assert [r.score for r in results] == [1.0, 0.0] and not any(r.error for r in results)
        assert one.restarts == 0
