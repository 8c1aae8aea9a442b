"""Every registered reward against a corpus of hostile completions: no exception, no hang, no file created, every item
within its budget plus a small margin, timeouts flagged."""

from __future__ import annotations

import math
import os
import time

import pytest
from helpers.adversarial_corpus import BUILTIN_REWARDS, build_corpus, gold_for

import r1h
from r1h.harness.grading.budget import resolve_budget
from r1h.harness.grading.pool import GradingPool, grade

MARGIN_S = 1.0  # dispatch, kill and scheduling noise on a loaded 2-core machine
WORKERS = 2


def _reward_names() -> list[str]:
    return [row["name"] for row in r1h.list_plugins("reward")]


def test_corpus_is_big_and_hostile(tmp_path):
    corpus = build_corpus(str(tmp_path / "pwned"))
    assert len(corpus) >= 100
    labels = " ".join(label for label, _ in corpus)
    for kind in ("frac-500", "tower", "9**9**9**9", "parens-3000", "1MB", "nul", "import", "surrogate", "boxed-empty",
                 "think-answer-open"):
        assert kind in labels
    assert any(isinstance(c, str) and len(c) >= 1_000_000 for _, c in corpus)


def test_all_ten_builtin_rewards_are_registered():
    missing = sorted(set(BUILTIN_REWARDS) - set(_reward_names()))
    assert not missing, f"built-in rewards not registered yet: {missing}"


def _check(name: str, label: str, result, elapsed: float, budget: float) -> None:
    where = f"{name} on {label!r}"
    assert result.score is None or isinstance(result.score, float), f"{where}: score {result.score!r}"
    if result.score is not None:
        assert math.isfinite(result.score), f"{where}: score {result.score!r}"
    if result.timed_out:
        assert result.score == 0.0, f"{where}: a timeout must score 0.0"
    assert elapsed <= budget + MARGIN_S, f"{where}: took {elapsed:.2f} s (budget {budget} s), timed_out={result.timed_out}"


@pytest.mark.slow
def test_every_registered_reward_survives_the_corpus(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # workers start here, so a relative write would land in tmp_path too
    sentinel = tmp_path / "pwned"
    corpus = build_corpus(str(sentinel))
    before = sorted(os.listdir(tmp_path))
    names = _reward_names()
    assert names, "no reward registered"
    timeouts: dict[str, list[str]] = {}
    with GradingPool(WORKERS) as pool:
        for name in names:
            reward = r1h.get_reward(name)
            row = gold_for(name, reward.columns)
            budget = resolve_budget(reward)
            if reward.isolate:
                pool.warm(reward, row)  # start-up is paid once per pool, never inside an item's budget
            # one item at a time: the wall time of each call is that item's time
            for label, completion in corpus:
                start = time.monotonic()
                results = grade(reward, [completion], rows=[row], pool=pool)
                elapsed = time.monotonic() - start
                assert len(results) == 1
                _check(name, label, results[0], elapsed, budget)
                if results[0].timed_out:
                    timeouts.setdefault(name, []).append(label)
    assert not sentinel.exists(), "an injection payload ran"
    assert sorted(os.listdir(tmp_path)) == before, "grading created files"
    print("timeouts:", timeouts)


@pytest.mark.slow
def test_trl_style_batch_call_survives_the_corpus(tmp_path, monkeypatch):
    """The whole corpus in one TRL-style call per reward (the shared default pool): one float or None per completion,
    and the batch ends within n * budget / workers + margin."""
    monkeypatch.chdir(tmp_path)
    sentinel = tmp_path / "pwned"
    corpus = build_corpus(str(sentinel))
    completions = [c for _, c in corpus]
    before = sorted(os.listdir(tmp_path))
    for name in _reward_names():
        reward = r1h.get_reward(name)
        gold = gold_for(name, reward.columns)
        budget = resolve_budget(reward)
        columns = {k: [v] * len(completions) for k, v in gold.items()}
        start = time.monotonic()
        scores = reward(completions=completions, prompts=None, completion_ids=None, trainer_state=None, **columns)
        elapsed = time.monotonic() - start
        assert len(scores) == len(completions), name
        assert all(s is None or (isinstance(s, float) and math.isfinite(s)) for s in scores), name
        workers = max(1, min(os.cpu_count() or 1, len(completions))) if reward.isolate else 1
        # generous: start-up of cold workers is included here (the shared pool may be cold)
        assert elapsed <= len(completions) * budget / workers + 15, f"{name}: batch took {elapsed:.1f} s"
    assert not sentinel.exists()
    assert sorted(os.listdir(tmp_path)) == before
