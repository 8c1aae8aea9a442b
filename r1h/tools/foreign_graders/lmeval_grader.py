"""Grade completions with lm-evaluation-harness's own MATH task functions.

Runs inside a virtualenv with ``lm-eval[math]`` installed. Standard library + lm_eval.
Metrics (``--metric``):
- ``minerva`` (default): lm_eval.tasks.minerva_math.utils: process_docs builds the doc (answer normalised from the
  solution), process_results scores it; the verdict is its ``exact_match`` (the "Final Answer: The final answer is
  ..." extraction, normalize_final_answer, is_equiv).
- ``minerva_math_verify``: the same process_results' ``math_verify`` value.
- ``hendrycks``: lm_eval.tasks.hendrycks_math.utils process_docs + process_results (``exact_match``).
Each item runs under ``--item-timeout`` seconds (``_watchdog.py``, next to this script); an item past it is reported
with ``"timed_out": true`` and an ``error`` starting "timeout".
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _watchdog import ItemTimeout, Watchdog, read_items, run_forked, timeout_result  # noqa: E402  (a sibling file, standard library only)


def _doc(utils, row: dict) -> dict:
    import datasets

    fields = {"problem": row.get("problem", ""), "solution": row.get("solution") or f"$\\boxed{{{row.get('answer', '')}}}$"}
    return utils.process_docs(datasets.Dataset.from_list([fields]))[0]


def _grade(item: dict, utils, metric: str) -> dict:
    result = {"key": item["key"], "correct": None, "extracted": None, "error": None, "metrics": {}}
    try:
        if item["benchmark"] not in ("math500", "aime24"):
            raise KeyError(f"lm-eval grader has no MATH-style task for benchmark {item['benchmark']!r}")
        doc = _doc(utils, item["row"])
        completion = item["completion"]
        scores = utils.process_results(doc, [completion])
        if metric == "hendrycks":
            dollars = [i for i, ch in enumerate(completion) if ch == "$"]  # what its process_results compares
            extracted = completion if len(dollars) <= 1 else completion[dollars[0] + 1 : dollars[-1]]
            verdict = scores["exact_match"]
        else:
            extracted = utils.normalize_final_answer(utils.get_unnormalized_answer(completion))
            verdict = scores["math_verify" if metric == "minerva_math_verify" else "exact_match"]
        result.update(correct=bool(verdict), extracted=extracted, metrics={k: float(v) for k, v in scores.items()})
        result["metrics"]["gold"] = doc["answer"]
    except Exception as exc:  # one bad item never stops the batch
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metric", choices=["minerva", "minerva_math_verify", "hendrycks"], default="minerva")
    parser.add_argument("--item-timeout", type=float, default=10.0, help="seconds per item (default 10)")
    parser.add_argument("--no-fork", action="store_true", help="interrupt items with the watchdog thread instead")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    import datasets

    datasets.disable_progress_bars()
    if args.metric == "hendrycks":
        from lm_eval.tasks.hendrycks_math import utils
    else:
        from lm_eval.tasks.minerva_math import utils

    dog = Watchdog(args.item_timeout)
    fork = hasattr(os, "fork") and not args.no_fork
    dog.emit({"key": "__meta__", "package": "lm-eval", "version": version("lm_eval"), "metric": args.metric,
              "item_timeout": args.item_timeout})
    for key, item in read_items(sys.stdin):
        try:
            if fork:
                result, timed_out = run_forked(args.item_timeout, _grade, item, utils, args.metric)
            else:
                result, timed_out = dog.run(key, _grade, item, utils, args.metric)
            if timed_out:
                result = timeout_result(key, args.item_timeout)
        except ItemTimeout:  # a signal that landed between the item's end and the watchdog's disarm
            result = timeout_result(key, args.item_timeout)
        dog.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
