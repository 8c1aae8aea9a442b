"""Grade completions with lm-evaluation-harness's own MATH task functions.

Runs inside a virtualenv with ``lm-eval[math]`` installed. Standard library + lm_eval.
Metrics (``--metric``):
- ``minerva`` (default): lm_eval.tasks.minerva_math.utils: process_docs builds the doc (answer normalised from the
  solution), process_results scores it; the verdict is its ``exact_match`` (the "Final Answer: The final answer is
  ..." extraction, normalize_final_answer, is_equiv).
- ``minerva_math_verify``: the same process_results' ``math_verify`` value.
- ``hendrycks``: lm_eval.tasks.hendrycks_math.utils process_docs + process_results (``exact_match``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib.metadata import version


def _doc(utils, row: dict) -> dict:
    import datasets

    fields = {"problem": row.get("problem", ""), "solution": row.get("solution") or f"$\\boxed{{{row.get('answer', '')}}}$"}
    return utils.process_docs(datasets.Dataset.from_list([fields]))[0]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--metric", choices=["minerva", "minerva_math_verify", "hendrycks"], default="minerva")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    import datasets

    datasets.disable_progress_bars()
    if args.metric == "hendrycks":
        from lm_eval.tasks.hendrycks_math import utils
    else:
        from lm_eval.tasks.minerva_math import utils

    out = sys.stdout
    out.write(json.dumps({"key": "__meta__", "package": "lm-eval", "version": version("lm_eval"),
                          "metric": args.metric}) + "\n")
    for line in sys.stdin:
        if not line.strip():
            continue
        item = json.loads(line)
        result = {"key": item["key"], "correct": None, "extracted": None, "error": None, "metrics": {}}
        try:
            if item["benchmark"] not in ("math500", "aime24"):
                raise KeyError(f"lm-eval grader has no MATH-style task for benchmark {item['benchmark']!r}")
            doc = _doc(utils, item["row"])
            completion = item["completion"]
            scores = utils.process_results(doc, [completion])
            if args.metric == "hendrycks":
                dollars = [i for i, ch in enumerate(completion) if ch == "$"]  # what its process_results compares
                extracted = completion if len(dollars) <= 1 else completion[dollars[0] + 1 : dollars[-1]]
                verdict = scores["exact_match"]
            else:
                extracted = utils.normalize_final_answer(utils.get_unnormalized_answer(completion))
                verdict = scores["math_verify" if args.metric == "minerva_math_verify" else "exact_match"]
            result.update(correct=bool(verdict), extracted=extracted, metrics={k: float(v) for k, v in scores.items()})
            result["metrics"]["gold"] = doc["answer"]
        except Exception as exc:  # one bad item never stops the batch
            result["error"] = f"{type(exc).__name__}: {exc}"
        out.write(json.dumps(result, default=str) + "\n")
        out.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
