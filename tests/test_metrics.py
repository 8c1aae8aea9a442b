"""pass@k against the closed form, maj@n clustering, bootstrap CI coverage, paired tests."""

from __future__ import annotations

import math
import random

import pytest

from r1h.harness.eval.metrics import (
    aggregate,
    bootstrap_ci,
    k_values,
    majority_credit,
    mcnemar,
    paired_bootstrap,
    pass_at_k,
)


def closed_form(n: int, c: int, k: int) -> float:
    return 1.0 - math.comb(n - c, k) / math.comb(n, k)


def test_pass_at_k_matches_closed_form_on_many_cases():
    cases = 0
    for n in [1, 2, 3, 4, 5, 8, 16, 17, 64, 100, 200]:
        for c in sorted({0, 1, 2, n // 3, n // 2, n - 1, n} & set(range(n + 1))):
            for k in sorted({1, 2, 4, 8, 16, 32, 64, n} & set(range(1, n + 1))):
                assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), abs=1e-12, rel=1e-9), (n, c, k)
                cases += 1
    assert cases > 200
    rng = random.Random(7)
    for _ in range(500):
        n = rng.randint(1, 300)
        c, k = rng.randint(0, n), rng.randint(1, n)
        assert pass_at_k(n, c, k) == pytest.approx(closed_form(n, c, k), abs=1e-12, rel=1e-9), (n, c, k)


def test_pass_at_k_edges_and_bad_input():
    assert pass_at_k(10, 0, 3) == 0.0
    assert pass_at_k(10, 10, 1) == 1.0
    assert pass_at_k(10, 8, 3) == 1.0  # fewer than k wrong samples: some draw always hits a correct one
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    with pytest.raises(ValueError):
        pass_at_k(4, 5, 1)
    with pytest.raises(ValueError):
        pass_at_k(4, 1, 5)
    assert k_values(64) == [1, 2, 4, 8, 16, 32, 64]
    assert k_values(6) == [1, 2, 4]


def _s(correct, extracted, **extra):
    return {"correct": correct, "extracted": extracted, **extra}


def test_majority_by_grader_verdict_not_string():
    # Three correct samples written three ways form ONE cluster and beat two identical wrong answers.
    samples = [_s(True, "1/2"), _s(True, "0.5"), _s(True, "\\frac12"), _s(False, "3"), _s(False, "3")]
    assert majority_credit(samples) == 1.0
    # Wrong answers cluster by normalized string: "$7$" and " 7." are the same vote.
    samples = [_s(True, "5"), _s(False, "$7$"), _s(False, " 7."), _s(False, None)]
    assert majority_credit(samples) == 0.0
    # A two-way tie splits the credit; unparseable wrong samples cast no vote.
    assert majority_credit([_s(True, "5"), _s(False, "7"), _s(False, None), _s(False, None)]) == 0.5
    assert majority_credit([_s(True, "5"), _s(False, "7"), _s(False, "8")]) == pytest.approx(1 / 3)
    assert majority_credit([_s(False, "7"), _s(False, "7")]) == 0.0
    # A cheap equivalence merges wrong answers the string form keeps apart.
    samples = [_s(True, "5"), _s(True, "5"), _s(False, "6.0"), _s(False, "6"), _s(False, "06")]
    assert majority_credit(samples) == 1.0
    assert majority_credit(samples, equivalent=lambda a, b: float(a) == float(b)) == 0.0


def test_aggregate_figures_and_counts():
    records = []
    # problem a: 3/4 correct; problem b: 0/4 correct (one truncated, one timed out, one unparseable)
    for i, ok in enumerate([True, True, True, False]):
        records.append({"id": "a", "sample_index": i, "correct": ok, "extracted": "1" if ok else "2",
                        "finish_reason": "stop"})
    for i in range(4):
        records.append({"id": "b", "sample_index": i, "correct": False, "extracted": None if i == 0 else "9",
                        "finish_reason": "length" if i == 1 else "stop", "timed_out": i == 2})
    m = aggregate(records)
    assert m["pass@1"] == pytest.approx((0.75 + 0.0) / 2)
    assert m["pass@k"]["1"] == pytest.approx(m["pass@1"])
    assert m["pass@k"]["2"] == pytest.approx((closed_form(4, 3, 2) + 0.0) / 2)
    assert m["pass@k"]["4"] == pytest.approx(0.5)
    assert set(m["pass@k"]) == {"1", "2", "4"}
    assert m["maj@n"] == pytest.approx(0.5)
    assert (m["total_samples"], m["n_problems"], m["n_samples"]) == (8, 2, 4)
    assert (m["timeouts"], m["truncated"], m["unparseable"]) == (1, 1, 1)
    lo, hi = m["pass@1_ci95"]
    assert 0.0 <= lo <= m["pass@1"] <= hi <= 0.75


def test_bootstrap_ci_is_seeded():
    values = [random.Random(1).random() for _ in range(50)]
    assert bootstrap_ci(values, seed=3) == bootstrap_ci(values, seed=3)
    assert bootstrap_ci([0.4] * 10) == pytest.approx((0.4, 0.4))


def test_bootstrap_ci_coverage_simulation():
    """300 simulated benchmarks of 100 problems (4 samples each, per-problem difficulty drawn around a known mean)."""
    rng = random.Random(2024)
    true_mean = 0.37
    covered = 0
    sims = 300
    for sim in range(sims):
        per_problem = []
        for _ in range(100):
            p = min(1.0, max(0.0, rng.betavariate(2 * true_mean * 3, 2 * (1 - true_mean) * 3)))
            per_problem.append(sum(rng.random() < p for _ in range(4)) / 4)
        lo, hi = bootstrap_ci(per_problem, resamples=1000, seed=sim)
        covered += lo <= true_mean <= hi
    coverage = covered / sims
    assert 0.92 <= coverage <= 0.98, coverage


def test_paired_bootstrap_detects_a_real_difference_and_not_a_null_one():
    rng = random.Random(5)
    a = {f"q{i}": float(rng.random() < 0.4) for i in range(300)}
    b_better = {k: 1.0 if (v or rng.random() < 0.3) else 0.0 for k, v in a.items()}
    res = paired_bootstrap(a, b_better, seed=1)
    assert res["n"] == 300 and res["diff"] > 0.1 and res["ci95"][0] > 0 and res["p_value"] < 0.01
    same = paired_bootstrap(a, dict(a), seed=1)
    assert same["diff"] == 0 and same["p_value"] == 1.0
    # only shared ids are paired
    assert paired_bootstrap({"x": 1.0, "y": 0.0}, {"y": 1.0, "z": 0.0})["n"] == 1
    with pytest.raises(ValueError):
        paired_bootstrap([1.0], [1.0, 0.0])


def test_mcnemar_exact_and_chi2():
    a = [True] * 10 + [False] * 10
    b = [True] * 10 + [True] * 10  # B solves 10 problems A misses, never the reverse
    res = mcnemar(a, b)
    assert (res["only_a"], res["only_b"], res["method"]) == (0, 10, "exact")
    assert res["p_value"] == pytest.approx(2 * 0.5**10)
    assert mcnemar(a, a)["p_value"] == 1.0
    a2 = [True] * 40 + [False] * 20
    b2 = [False] * 15 + [True] * 25 + [True] * 20  # only_a 15, only_b 20
    res = mcnemar(a2, b2)
    assert res["method"] == "chi2" and (res["only_a"], res["only_b"]) == (15, 20)
    assert res["statistic"] == pytest.approx((abs(15 - 20) - 1) ** 2 / 35)
    assert res["p_value"] == pytest.approx(math.erfc(math.sqrt(res["statistic"] / 2)))
    assert 0.3 < res["p_value"] < 0.7
