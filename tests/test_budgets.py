"""Hard budgets everywhere (issue 10): the hostile corpus of ``hostile_corpus.py`` through the direct call, the batch
grader, ``r1h score`` (a subprocess started from a directory holding a folder named ``r1h``), a spawn and a fork Pool
worker and a thread pool. Each item: no exception, a float or None, within budget plus margin, no file created,
bounded memory. Also: worker memory caps, load failures that are errors, the fresh-worker wait, the fallback when no
worker can start, and the Countdown gold parse and solver."""

from __future__ import annotations

import json
import math
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import textwrap
import threading
import time
import types
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from helpers import hostile_corpus as H

import r1h
from r1h.harness.core.errors import ConfigError
from r1h.harness.core.types import GradeResult
from r1h.harness.grading import launch
from r1h.harness.grading.budget import DEFAULT_MEMORY_MB
from r1h.harness.grading.pool import GradingPool, RewardLoadError, grade
from r1h.harness.grading.worker import in_worker
from r1h.plugins.rewards.countdown import MAX_SOLVER_NUMS, _read_nums, _read_target, evaluate, solve

BUDGET = 1.0
MARGIN = 1.5  # dispatch, kill and scheduling noise on a loaded 2-core machine
INLINE = ["think_format", "tag_count", "choice_accuracy", "count_accuracy", "countdown_equation", "reasoning_steps",
          "repetition_penalty", "soft_overlong"]
ISOLATED = ["math_accuracy", "cosine_length"]
# the isolated rewards' sample: the issue's cases and the gold values that reach sympy or math-verify
ISOLATED_SAMPLE = ["boxed-(10^9999)^9999", "boxed-10^9999^9999-flat", "boxed-(10^9999)!", "gold-boxed-power-tower",
                   "gold-sci-1e99999999999", "gold-int-5000-digits", "gold-list", "solution-deep-frac",
                   "message-content-nested", "none-completion", "rtl-override"]
R1H_SCRIPT = Path(sys.executable).with_name("r1h")


def _case(label: str) -> H.Case:
    return next(c for c in H.build() if c.label == label)


def _check(where: str, result, elapsed: float, allowance: float = 0.0) -> None:
    assert result.score is None or (isinstance(result.score, float) and math.isfinite(result.score)), where
    if result.timed_out:
        assert result.score == 0.0, f"{where}: a timeout scores 0.0"
    assert elapsed <= BUDGET + MARGIN + allowance, f"{where}: {elapsed:.2f} s (budget {BUDGET} s)"


def test_the_corpus_holds_every_case_the_issue_names():
    labels = {c.label for c in H.build()}
    for label in ("target-1e99999999999", "target-1e999999", "boxed-(10^9999)^9999", "repeated-words-50MB",
                  "steps-nested-parens-5MB", "target-Infinity", "nums-1e400", "nums-dict", "target-true"):
        assert label in labels
    assert len(labels) == len(H.build()) >= 60
    assert any(isinstance(c.completion, str) and len(c.completion) >= 49 * H.MB for c in H.build())
    assert all(len(nums) == 6 for nums, _ in H.UNSOLVABLE[:4])


# -- direct calls ---------------------------------------------------------------------------------------------------
def test_inline_rewards_are_bounded_on_the_whole_corpus(tmp_path, monkeypatch):
    """Every inline reward on every case, TRL-style, in this process: each item well within the budget (they are
    bounded by construction, not merely timed), never a timeout, and memory that does not grow with the input."""
    monkeypatch.chdir(tmp_path)
    corpus = H.build()
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux, after the corpus is built
    worst: dict[str, tuple[float, str]] = {}
    for name in INLINE:
        reward = r1h.get_reward(name)
        for case in corpus:
            row = H.gold_for(name, case, reward.columns)
            start = time.monotonic()
            columns = {"completion_ids": None, **{k: [v] for k, v in row.items()}}
            scores = reward([case.completion], prompts=None, **columns)
            elapsed = time.monotonic() - start
            assert len(scores) == 1
            result = GradeResult(score=scores[0])
            _check(f"{name} on {case.label}", result, elapsed)
            worst[name] = max(worst.get(name, (0.0, "")), (elapsed, case.label))
    grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    print("worst inline item per reward:", {k: (round(v, 3), lab) for k, (v, lab) in worst.items()},
          f"peak RSS growth {grown_mb:.0f} MB")
    assert grown_mb < 400, f"grading grew the peak RSS by {grown_mb:.0f} MB"
    assert os.listdir(tmp_path) == []


def test_the_issue_cases_score_as_documented():
    rep = r1h.get_reward("repetition_penalty")
    words, bullets = _case("repeated-words-50MB").completion, _case("steps-bullets-20MB").completion
    start = time.monotonic()
    assert rep.grade_one(words).score < -0.99  # measured on the first 400k characters
    assert time.monotonic() - start < BUDGET  # was 26 s and 2.5 GB
    assert r1h.get_reward("reasoning_steps").grade_one(bullets).score == 1.0
    big = r1h.get_reward("think_format").grade_one("<think>" + "x" * 3_000_000 + "</think><answer>1</answer>")
    assert big.score == 0.0 and "over this reward's limit" in big.error
    countdown = r1h.get_reward("countdown_equation")
    ok = "<answer>(4 + 6) * 1 + 14 = 24</answer>"
    assert countdown([ok], target=[24], nums=[[4, 6, 1, 14]]) == [1.0]
    for target in ("1e99999999999", "1e999999", "Infinity", float("inf"), True, "9" * 5000):
        start = time.monotonic()
        assert countdown([ok], target=[target], nums=[[4, 6, 1, 14]]) == [None], target
        assert time.monotonic() - start < 0.1


# -- the batch grader -----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool():
    with GradingPool(workers=2) as p:
        start = time.monotonic()
        p.warm(r1h.get_reward("math_accuracy"), H.GOLD["math_accuracy"])
        p.boot_s = time.monotonic() - start  # a cold start here, to allow for after each kill (a ratio, not a time)
        yield p


@pytest.mark.slow
@pytest.mark.parametrize("name", ISOLATED)
def test_isolated_rewards_one_item_at_a_time(name, pool, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    reward = r1h.get_reward(name)
    pool.warm(reward, H.GOLD[name])
    restarts = pool.restarts
    for label in ISOLATED_SAMPLE:
        case = _case(label)
        before, restarts = restarts, pool.restarts
        start = time.monotonic()
        [result] = grade(reward, [case.completion], rows=[H.gold_for(name, case, reward.columns)], budget=BUDGET,
                         pool=pool)
        elapsed = time.monotonic() - start
        # a kill in the previous call starts a replacement at once; its start-up is waited for, never billed
        _check(f"{name} on {label}", result, elapsed, allowance=2 * pool.boot_s)
        if pool.restarts == restarts == before:  # no kill in this call or the one before: no allowance
            assert elapsed <= BUDGET + MARGIN
    assert os.listdir(tmp_path) == []
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{name}: peak RSS of any reaped child {peak_mb:.0f} MB")
    assert peak_mb < DEFAULT_MEMORY_MB


@pytest.mark.slow
def test_isolated_batch_of_the_small_corpus(pool):
    """All small cases in one batch (math_accuracy; cosine_length runs the same judge): one float or None each, in
    bounded time."""
    cases = H.small()
    for name in ISOLATED[:1]:
        reward = r1h.get_reward(name)
        rows = [H.gold_for(name, c, reward.columns) for c in cases]
        start = time.monotonic()
        results = grade(reward, [c.completion for c in cases], rows=rows, budget=BUDGET, pool=pool)
        elapsed = time.monotonic() - start
        assert len(results) == len(cases)
        for case, result in zip(cases, results, strict=True):
            _check(f"{name} on {case.label}", result, 0.0)
        timeouts = sum(r.timed_out for r in results)
        bound = (len(cases) * 0.2 + timeouts * (BUDGET + pool.boot_s)) / pool.workers + MARGIN + pool.boot_s
        assert elapsed <= bound, f"{name}: {elapsed:.1f} s for {len(cases)} items, {timeouts} timeouts"
    correct = grade(r1h.get_reward("cosine_length"), ["\\boxed{42}"], rows=[{"answer": "42"}], pool=pool)
    assert correct[0].score > 0.9


def test_the_wait_for_a_fresh_worker_is_not_billed_to_the_next_item():
    with GradingPool(workers=1) as one:
        from helpers.misbehaving import Misbehaving

        one.warm(Misbehaving())
        results = grade(Misbehaving(), ["hang", "1", "1"], rows=[{"answer": "1"}] * 3, budget=0.3, pool=one)
        assert [r.timed_out for r in results] == [True, False, False]  # a worker boots in far more than 0.3 s
        assert [r.score for r in results] == [0.0, 1.0, 1.0]
        assert one.restarts == 1


class Hog(r1h.Reward):
    """Isolated: "hog" allocates far past any sane memory cap; anything else scores 1.0."""

    name = "hog"
    isolate = True

    def score(self, completion, prompt=None, **row):
        if completion == "hog":
            block = bytearray(3 * 1024**3)
            return float(len(block) > 0)
        return 1.0


def test_a_worker_over_its_memory_cap_scores_zero_and_is_replaced(monkeypatch):
    monkeypatch.setenv("R1H_GRADING_MEMORY_MB", "768")
    with GradingPool(workers=1) as one:
        results = grade(Hog(), ["1", "hog", "1"], budget=5, pool=one)
        assert [r.score for r in results] == [1.0, 0.0, 1.0]
        assert "MemoryError" in results[1].error and not results[1].timed_out
        assert one.restarts == 1
    monkeypatch.setenv("R1H_GRADING_MEMORY_MB", "lots")
    with pytest.raises(ConfigError, match="R1H_GRADING_MEMORY_MB"):
        GradingPool(workers=1)


def test_a_reward_that_cannot_load_in_a_worker_is_an_error(pool):
    ghost = types.ModuleType("r1h_test_ghost_rewards")  # importable here only: never on disk

    class Ghost(r1h.Reward):
        name = "ghost"
        isolate = True

        def score(self, completion, prompt=None, **row):
            return 1.0

    Ghost.__module__ = ghost.__name__
    Ghost.__qualname__ = "Ghost"
    ghost.Ghost = Ghost
    sys.modules[ghost.__name__] = ghost
    try:
        with pytest.raises(RewardLoadError, match="reward 'ghost' cannot be loaded in a grading worker: "
                                                  "ModuleNotFoundError"):
            grade(Ghost(), ["x"], pool=pool)
    finally:
        del sys.modules[ghost.__name__]


def test_no_worker_can_start_warns_once_and_stays_bounded(monkeypatch):
    from helpers.misbehaving import Misbehaving

    def no_children(*args, **kwargs):
        # (a reason no other test gives: each one is warned about once per process)
        raise OSError(11, "Resource temporarily unavailable (test_no_worker_can_start)")

    monkeypatch.setattr(launch, "start_worker", no_children)  # every worker start, the zygote's too
    with GradingPool(workers=1) as one, pytest.warns(RuntimeWarning, match="cannot start a grading worker"):
        start = time.monotonic()
        results = grade(Misbehaving(), ["sleep", "1"], rows=[{"answer": "1"}] * 2, budget=0.5, pool=one)
        elapsed = time.monotonic() - start
    assert [(r.score, r.timed_out) for r in results] == [(0.0, True), (1.0, False)]
    assert elapsed < 2 * 0.5 + MARGIN


def test_a_reward_defined_in_main_still_works(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(textwrap.dedent("""
        import time, r1h

        class Mine(r1h.Reward):
            name = "mine"
            isolate = True
            def score(self, completion, prompt=None, **row):
                if completion == "sleep":
                    time.sleep(3600)
                return float(completion == "ok")

        if __name__ == "__main__":
            start = time.monotonic()
            print(Mine()(["ok", "no", "sleep"]), round(time.monotonic() - start, 1))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={**os.environ, "R1H_GRADING_BUDGET": "0.5"})
    assert out.returncode == 0, out.stderr
    scores, elapsed = out.stdout.rsplit(" ", 1)
    assert scores == "[1.0, 0.0, 0.0]" and float(elapsed) < 0.5 + MARGIN
    assert out.stderr.count("is defined in __main__") == 1


# -- r1h score, from a directory holding a folder named r1h -------------------------------------------------------
def _jsonable(row: dict) -> bool:
    try:
        json.dumps(row)
    except ValueError:  # a 5,000-digit int: no JSONL file can hold it
        return False
    return True


def _score(tmp_path: Path, reward: str, rows: list[dict], *extra: str, env: dict | None = None):
    work = tmp_path / reward
    (work / "r1h" / "harness").mkdir(parents=True)  # a checkout's parent: ./r1h must never shadow the package
    (work / "r1h" / "README.md").write_text("not the package\n")
    data = work / "in.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    before = sorted(p.name for p in work.iterdir())
    start = time.monotonic()
    out = subprocess.run([str(R1H_SCRIPT), "score", "in.jsonl", "--reward", reward, "--budget", str(BUDGET),
                          "--workers", "2", "--no-progress", *extra], capture_output=True, text=True, timeout=120,
                         cwd=work, env={**os.environ, **(env or {})})
    elapsed = time.monotonic() - start
    created = sorted(set(p.name for p in work.iterdir()) - set(before))
    scored = [json.loads(line) for line in (work / "in.scored.jsonl").read_text().splitlines()] if (
        work / "in.scored.jsonl").exists() else []
    return out, elapsed, created, scored


@pytest.mark.skipif(not R1H_SCRIPT.exists(), reason="the r1h console script is not installed next to python")
def test_r1h_score_from_a_directory_holding_an_r1h_folder(tmp_path):
    labels = ["boxed-(10^9999)^9999", "gold-list", "rtl-override", "message-content-nested", "empty-list"]
    rows = [{"completion": "<think>x</think> \\boxed{42}", "answer": "42"}]
    rows += [row for row in ({"completion": _case(lab).completion,
                              **H.gold_for("cosine_length", _case(lab), ("answer", "solution"))} for lab in labels)
             if _jsonable(row)]
    out, elapsed, created, scored = _score(tmp_path, "cosine_length", rows)
    assert out.returncode == 0, out.stderr
    assert created == ["in.scored.jsonl"]
    assert scored[0]["score"] > 0.9, scored[0]  # a silent 0.0 here was the shadowed r1h
    assert all(r["score"] is None or math.isfinite(r["score"]) for r in scored)
    assert [r["timed_out"] for r in scored] == [False, True, False, False, False, False]
    assert elapsed < 45, f"{elapsed:.1f} s"  # two cold workers, one kill and its replacement: never a hang

    ok = "<answer>(4 + 6) * 1 + 14 = 24</answer>"
    bad_golds = ["1e99999999999", "1e999999", "Infinity", "1e-99999999999", "٢٤"]
    rows = [{"completion": ok, "target": 24, "nums": [4, 6, 1, 14]}]
    rows += [{"completion": ok, "target": t, "nums": [4, 6, 1, 14]} for t in bad_golds]
    rows += [{"completion": ok, "target": 24, "nums": "[1, 1e400]"}, {"completion": ok, "target": 24, "nums": {"1": 1}}]
    out, elapsed, created, scored = _score(tmp_path, "countdown_equation", rows)
    assert out.returncode == 0, out.stderr
    assert [r["score"] for r in scored] == [1.0] + [None] * (len(rows) - 1)
    assert not any(r["timed_out"] for r in scored)
    assert elapsed < 15


@pytest.mark.skipif(not R1H_SCRIPT.exists(), reason="the r1h console script is not installed next to python")
def test_r1h_score_fails_in_one_line_when_the_reward_cannot_load(tmp_path):
    """A reward plugin whose module a worker cannot import: exit 1 and one line, never a file of 0.0 scores."""
    (tmp_path / "ghostplug.py").write_text(textwrap.dedent("""
        import sys, types
        import r1h

        class Ghost(r1h.Reward):
            name = "ghost"
            isolate = True
            def score(self, completion, prompt=None, **row):
                return 1.0

        mod = types.ModuleType("r1h_ghost_only_here")
        Ghost.__module__ = mod.__name__
        mod.Ghost = Ghost
        sys.modules[mod.__name__] = mod

        @r1h.hookimpl
        def r1h_register_rewards(register):
            register("ghost", Ghost)
    """))
    (tmp_path / "in.jsonl").write_text(json.dumps({"completion": "x"}) + "\n")
    script = textwrap.dedent("""
        import sys
        sys.path.insert(0, ".")
        import ghostplug
        from r1h.harness.core import plugins
        from r1h.harness.cli.main import main
        built = plugins.build(default_plugins=(), load_entry_points=False, extra_plugins=(ghostplug,))
        plugins._CURRENT = built
        main(["score", "in.jsonl", "--reward", "ghost", "--no-progress"])
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert out.returncode == 1, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: reward 'ghost' cannot be loaded in a grading worker:"), lines
    assert not (tmp_path / "in.scored.jsonl").exists()


# -- a user's Pool worker (spawn and fork) and a thread pool ------------------------------------------------------
POOL_CASES = [("math_accuracy", "boxed-(10^9999)^9999"), ("math_accuracy", "gold-boxed-power-tower"),
              ("countdown_equation", "target-1e99999999999"), ("countdown_equation", "nums-text-1e400"),
              ("reasoning_steps", "first-comma-x1M"), ("repetition_penalty", "answer-colon-x1M"),
              ("cosine_length", "boxed-(10^9999)!"), ("choice_accuracy", "answer-colon-x1M")]


def _grade_in_a_pool_worker(cases: list[tuple[str, str]]) -> dict:
    """Runs inside a user's multiprocessing Pool worker (a daemonic process)."""
    from r1h.harness.grading.pool import default_pool

    out = {"daemon": mp.current_process().daemon, "in_worker": in_worker(), "items": []}
    for name in ISOLATED:  # start-up of this process's own grading workers, outside any item's budget
        default_pool().warm(r1h.get_reward(name), H.GOLD[name])
    for name, label in cases:
        reward = r1h.get_reward(name)
        case = _case(label)
        start = time.monotonic()
        [result] = grade(reward, [case.completion], rows=[H.gold_for(name, case, reward.columns)], budget=BUDGET)
        out["items"].append((name, label, result.score, result.timed_out, time.monotonic() - start))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("method", ["spawn", "fork"])
def test_budgets_hold_inside_a_users_pool_worker(method, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with mp.get_context(method).Pool(1) as user_pool:
        out = user_pool.apply_async(_grade_in_a_pool_worker, (POOL_CASES,)).get(timeout=120)
    assert out["daemon"] and not out["in_worker"]  # a daemonic process is not a grading worker
    boot = 6.0  # a kill in one item starts a replacement that the next isolated item may wait for
    for name, label, score, _, elapsed in out["items"]:
        where = f"{method} pool: {name} on {label}"
        assert score is None or math.isfinite(score), where
        assert elapsed <= BUDGET + MARGIN + (boot if name in ISOLATED else 0), f"{where}: {elapsed:.2f} s"
    by = {(n, lab): (s, t) for n, lab, s, t, _ in out["items"]}
    assert by[("math_accuracy", "boxed-(10^9999)^9999")] == (0.0, True)  # killed, not 60 s inline
    assert by[("countdown_equation", "target-1e99999999999")] == (None, False)
    assert os.listdir(tmp_path) == []


def test_budgets_hold_from_a_thread_pool(pool, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cases = [c for c in H.small() if c.label.startswith(("boxed", "target", "nums", "gold-boxed", "countdown"))]

    def run(name: str) -> list[tuple[str, float, object]]:
        reward = r1h.get_reward(name)
        done = []
        for case in cases:
            start = time.monotonic()
            [result] = grade(reward, [case.completion], rows=[H.gold_for(name, case, reward.columns)], budget=BUDGET,
                             pool=pool)
            done.append((case.label, time.monotonic() - start, result))
        return done

    with ThreadPoolExecutor(max_workers=4) as executor:
        futures = {name: executor.submit(run, name) for name in INLINE[:4] + ["countdown_equation", "math_accuracy"]}
        results = {name: f.result(timeout=300) for name, f in futures.items()}
    assert threading.active_count() < 50
    for name, done in results.items():
        for label, elapsed, result in done:
            # inline rewards share the GIL with up to 3 other threads; isolated ones may wait for a replacement
            allowance = 2 * pool.boot_s if name in ISOLATED else 3 * 0.2
            _check(f"thread: {name} on {label}", result, elapsed, allowance)
    assert os.listdir(tmp_path) == []


# -- Countdown gold and the gold backend's solver -----------------------------------------------------------------
@pytest.mark.parametrize("target", ["1e99999999999", "1e999999", "1e-99999999999", "Infinity", "-inf", "NaN",
                                    float("inf"), float("nan"), True, "9" * 5000, 10**5000, [24], {"v": 24}, "2_4",
                                    "٢٤", "48/2", "1/" + "9" * 39, None, ""], ids=lambda v: f"{type(v).__name__}")
def test_unreadable_countdown_targets_are_refused_before_any_work(target):
    start = time.monotonic()
    assert _read_target(target) is None
    assert time.monotonic() - start < 0.1


@pytest.mark.parametrize("nums", [[1, 1e400], "[1, 1e400]", {"1": 1}, [10**5000, 1], [1e300, 4], ["²", "4"],
                                  "[" * 499 + "]" * 499, list(range(100_000)), [None, 4], [True, 4], [], "", 7,
                                  [1.5, 2]], ids=lambda v: f"{type(v).__name__}")
def test_unreadable_countdown_nums_are_refused(nums):
    assert _read_nums(nums) is None


def test_readable_countdown_gold_still_reads():
    assert _read_target("24") == 24 and _read_target(" 2.4e1 ") == 24 and _read_target(24.0) == 24
    assert _read_target("-3.5") == -3.5
    assert _read_nums("[44, 19, 35]") == [44, 19, 35] == _read_nums("44 19 35") == _read_nums([44.0, "19", 35])


def test_the_solver_gives_up_quickly_on_unsolvable_puzzles():
    for nums, target in H.UNSOLVABLE:
        start = time.monotonic()
        assert solve(nums, target) is None
        assert time.monotonic() - start < 2.0, (nums, target)  # was over 60 s for six numbers
    assert solve(list(range(1, MAX_SOLVER_NUMS + 2)), 1) is None  # too many numbers: refused at once
    assert evaluate(solve([97, 89, 83, 2], 97 * 89 - 83 * 2), [97, 89, 83, 2]) == 97 * 89 - 83 * 2
