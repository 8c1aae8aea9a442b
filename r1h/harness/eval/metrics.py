"""R1-protocol metrics: unbiased pass@k, mean-of-n pass@1, maj@n by grader verdict, bootstrap CIs, paired tests.

Standard library only (no numpy): every figure is reproducible from the samples JSONL with a seeded ``random.Random``.
A sample counts as correct when its reward is full credit (``>= 1.0``); ``None`` (unreadable gold) is never correct.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from r1h.harness.eval.thinking import truncation_summary

DEFAULT_RESAMPLES = 1000
CORRECT_THRESHOLD = 1.0 - 1e-9


def is_correct(score: float | None) -> bool:
    """Whether a reward value is full credit."""
    return score is not None and score >= CORRECT_THRESHOLD


def pass_at_k(n: int, c: int, k: int) -> float:
    """The unbiased pass@k estimator of Chen et al. (2021): ``1 - C(n-c, k) / C(n, k)``, in product form.

    ``n`` samples of which ``c`` are correct. The product ``prod_{i=n-c+1}^{n} (1 - k/i)`` never forms the huge
    binomials, so it is exact enough for n in the thousands.
    """
    if not 0 <= c <= n:
        raise ValueError(f"pass_at_k needs 0 <= c <= n, got n={n}, c={c}")
    if not 1 <= k <= n:
        raise ValueError(f"pass_at_k needs 1 <= k <= n, got n={n}, k={k}")
    if n - c < k:
        return 1.0
    prod = 1.0
    for i in range(n - c + 1, n + 1):
        prod *= 1.0 - k / i
    return 1.0 - prod


def k_values(n: int) -> list[int]:
    """k = 1, 2, 4, ... <= n."""
    ks, k = [], 1
    while k <= n:
        ks.append(k)
        k *= 2
    return ks


def normalize_answer(answer: str) -> str:
    """A light normal form for clustering wrong answers: whitespace collapsed, ``$`` and a trailing period dropped."""
    return " ".join(answer.replace("$", " ").split()).rstrip(".").strip()


def majority_credit(
    samples: Sequence[Mapping[str, Any]], equivalent: Callable[[str, str], bool] | None = None
) -> float:
    """maj@n credit of one problem: 1 if the largest answer cluster is the correct one, 1/t for a t-way tie.

    Every correct sample (by the grader's verdict, i.e. mathematical equivalence with the gold) belongs to one
    cluster. Incorrect samples cluster by their extracted answer: by ``equivalent`` when given, else by normalized
    string. Samples with no extracted answer and no credit cast no vote.
    """
    n_correct = 0
    clusters: list[list[Any]] = []  # [representative, count]
    index: dict[str, int] = {}
    for s in samples:
        if s.get("correct"):
            n_correct += 1
            continue
        answer = s.get("extracted")
        if answer is None:
            continue
        key = normalize_answer(str(answer))
        if not key:
            continue
        if key in index:
            clusters[index[key]][1] += 1
            continue
        if equivalent is not None:
            found = None
            for j, (rep, _) in enumerate(clusters):
                try:
                    same = bool(equivalent(rep, key))
                except Exception:
                    same = False
                if same:
                    found = j
                    break
            if found is not None:
                clusters[found][1] += 1
                index[key] = found
                continue
        index[key] = len(clusters)
        clusters.append([key, 1])
    if n_correct == 0:
        return 0.0
    top = max([n_correct, *(count for _, count in clusters)])
    if n_correct < top:
        return 0.0
    ties = 1 + sum(1 for _, count in clusters if count == top)
    return 1.0 / ties


def _percentile(sorted_values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method) of already sorted values."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = math.floor(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def bootstrap_ci(
    values: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap CI of the mean of ``values`` (one value per problem), resampling problems."""
    values = list(values)
    m = len(values)
    if m == 0:
        return (float("nan"), float("nan"))
    rng = random.Random(seed)
    choices = rng.choices
    means = sorted(sum(choices(values, k=m)) / m for _ in range(resamples))
    alpha = (1.0 - level) / 2.0
    return (_percentile(means, alpha), _percentile(means, 1.0 - alpha))


def group_by_problem(records: Iterable[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
    """Sample records grouped by problem id, in first-seen order, each group sorted by sample_index."""
    groups: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        groups.setdefault(str(r["id"]), []).append(r)
    for group in groups.values():
        group.sort(key=lambda r: r.get("sample_index", 0))
    return groups


def aggregate(
    records: Iterable[Mapping[str, Any]],
    *,
    equivalent: Callable[[str, str], bool] | None = None,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    n: int | None = None,
    max_tokens: int | None = None,
) -> dict[str, Any]:
    """Per-benchmark metrics from sample records (the lines of ``samples/NAME.jsonl``).

    Each record needs ``id``, ``sample_index`` and ``correct``; ``extracted``, ``finish_reason`` and ``timed_out``
    feed maj@n and the counts; ``tokens`` and the think fields feed the truncation metrics
    (:func:`r1h.harness.eval.thinking.truncation_summary`). pass@k is reported for k = 1, 2, 4, ... up to the smallest
    per-problem n. ``n_samples`` is the samples per problem, ``total_samples`` the number of records. With ``n`` (the
    protocol's samples per problem), ``short_problems`` counts the problems with fewer than ``n`` samples.
    """
    groups = group_by_problem(records)
    per_problem: list[float] = []
    per_problem_ids: list[str] = []
    maj: list[float] = []
    counts = {"timeouts": 0, "truncated": 0, "unparseable": 0}
    n_samples = 0
    min_n = None
    for pid, group in groups.items():
        size = len(group)
        c = sum(1 for r in group if r.get("correct"))
        n_samples += size
        min_n = size if min_n is None else min(min_n, size)
        per_problem.append(c / size)
        per_problem_ids.append(pid)
        maj.append(majority_credit(group, equivalent))
        for r in group:
            counts["timeouts"] += bool(r.get("timed_out"))
            counts["truncated"] += r.get("finish_reason") == "length"
            counts["unparseable"] += r.get("extracted") is None
    n_problems = len(per_problem)
    result: dict[str, Any] = {
        "pass@1": (sum(per_problem) / n_problems) if n_problems else None,
        "pass@1_ci95": list(bootstrap_ci(per_problem, resamples=resamples, seed=seed)) if n_problems else None,
        "pass@k": {},
        "maj@n": (sum(maj) / n_problems) if n_problems else None,
        "n_samples": min_n or 0,  # samples per problem (the protocol n)
        "total_samples": n_samples,
        "n_problems": n_problems,
        **counts,
        **truncation_summary(groups, max_tokens),
    }
    if n is not None:
        result["short_problems"] = sum(1 for group in groups.values() if len(group) < n)
    if n_problems:
        for k in k_values(min_n or 0):
            total = 0.0
            for group in groups.values():
                total += pass_at_k(len(group), sum(1 for r in group if r.get("correct")), k)
            result["pass@k"][str(k)] = total / n_problems
    return result


# -- paired tests (``r1h compare``) ----------------------------------------------------------------------------------
def _paired(a: Mapping[str, float] | Sequence[float], b: Mapping[str, float] | Sequence[float]):
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        shared = [k for k in a if k in b]
        return [float(a[k]) for k in shared], [float(b[k]) for k in shared]
    if isinstance(a, Mapping) or isinstance(b, Mapping):
        raise TypeError("paired tests need two mappings (problem id -> score) or two aligned sequences")
    if len(a) != len(b):
        raise ValueError(f"paired tests need aligned sequences, got lengths {len(a)} and {len(b)}")
    return [float(x) for x in a], [float(x) for x in b]


def paired_bootstrap(
    a_scores: Mapping[str, float] | Sequence[float],
    b_scores: Mapping[str, float] | Sequence[float],
    *,
    resamples: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """Paired bootstrap over shared problems of ``mean(b) - mean(a)``.

    Scores are per-problem (e.g. the fraction of correct samples). Returns the difference, its 95% CI and a two-sided
    p-value (twice the smaller tail mass of the resampled differences on either side of zero).
    """
    xa, xb = _paired(a_scores, b_scores)
    m = len(xa)
    if m == 0:
        return {"n": 0, "diff": None, "ci95": None, "p_value": None}
    diffs = [y - x for x, y in zip(xa, xb, strict=True)]
    observed = sum(diffs) / m
    rng = random.Random(seed)
    boots = sorted(sum(rng.choices(diffs, k=m)) / m for _ in range(resamples))
    le = sum(1 for d in boots if d <= 0) / resamples
    ge = sum(1 for d in boots if d >= 0) / resamples
    p = min(1.0, 2.0 * min(le, ge))
    return {
        "n": m,
        "diff": observed,
        "ci95": [_percentile(boots, 0.025), _percentile(boots, 0.975)],
        "p_value": p,
    }


def mcnemar(a: Mapping[str, bool] | Sequence[bool], b: Mapping[str, bool] | Sequence[bool]) -> dict[str, Any]:
    """McNemar's test on per-problem correctness over shared problems.

    ``only_a``: problems A solves and B does not; ``only_b`` the reverse. Exact two-sided binomial test when the
    discordant count is below 25, else the chi-square statistic with continuity correction (1 dof).
    """
    xa, xb = _paired({k: float(bool(v)) for k, v in a.items()} if isinstance(a, Mapping) else [bool(v) for v in a],
                     {k: float(bool(v)) for k, v in b.items()} if isinstance(b, Mapping) else [bool(v) for v in b])
    only_a = sum(1 for x, y in zip(xa, xb, strict=True) if x and not y)
    only_b = sum(1 for x, y in zip(xa, xb, strict=True) if y and not x)
    d = only_a + only_b
    if d == 0:
        return {"n": len(xa), "only_a": 0, "only_b": 0, "statistic": 0.0, "p_value": 1.0, "method": "exact"}
    if d < 25:
        low = min(only_a, only_b)
        tail = sum(math.comb(d, i) for i in range(low + 1)) / 2.0**d
        return {"n": len(xa), "only_a": only_a, "only_b": only_b, "statistic": float(low),
                "p_value": min(1.0, 2.0 * tail), "method": "exact"}
    stat = (abs(only_a - only_b) - 1.0) ** 2 / d
    return {"n": len(xa), "only_a": only_a, "only_b": only_b, "statistic": stat,
            "p_value": math.erfc(math.sqrt(stat / 2.0)), "method": "chi2"}
