"""Grade completions with lighteval's own task definitions (prompt function -> Doc, the task's first metric).

Runs inside a virtualenv with lighteval installed (it pins latex2sympy2_extended==1.0.6). Standard library + lighteval.
math500 -> lighteval.tasks.tasks.math_500 (pass_at_k_math, k=1 n=1); aime24 -> lighteval.tasks.tasks.aime (aime24).
Reasoning is removed as lighteval's pipeline does by default (remove_reasoning_tags, tags [("<think>", "</think>")]).
Each item runs under ``--item-timeout`` seconds (``_watchdog.py``, next to this script); an item past it is reported
with ``"timed_out": true`` and an ``error`` starting "timeout".
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from importlib.metadata import version

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _watchdog import ItemTimeout, Watchdog, read_items, run_forked, timeout_result  # noqa: E402  (a sibling file, standard library only)

TASKS = {
    "math500": ("lighteval.tasks.tasks.math_500", "math_500"),
    "aime24": ("lighteval.tasks.tasks.aime", "aime24"),
}
DEFAULT_REASONING_TAGS = [("<think>", "</think>")]  # lighteval PipelineParameters.reasoning_tags default


def _grade(item: dict, task, imports) -> dict:
    ModelResponse, Doc, remove_reasoning_tags = imports
    result = {"key": item["key"], "correct": None, "extracted": None, "error": None, "metrics": {}}
    try:
        doc = task.prompt_function(item["row"], task.name)
        metric = task.metrics[0]
        fn = metric.sample_level_fn  # PassAtK: preprocess (strip) + compute_score per prediction
        text = remove_reasoning_tags(text=item["completion"], tag_pairs=DEFAULT_REASONING_TAGS)
        # PassAtK.compute for one prediction, keeping the Doc so the extracted answer can be read back
        scored_doc = Doc(choices=[fn.preprocess(c) for c in doc.choices], query=doc.query, gold_index=doc.gold_index)
        score = fn.compute_score(doc=scored_doc, model_response=ModelResponse(text=[fn.preprocess(text)]))
        specific = scored_doc.specific or {}
        preds = specific.get("extracted_predictions") or []
        result.update(
            correct=bool(score >= 1.0),
            extracted=preds[0] if preds else None,
            metrics={metric.metric_name: float(score), "extracted_golds": specific.get("extracted_golds")},
        )
    except Exception as exc:  # one bad item never stops the batch
        result["error"] = f"{type(exc).__name__}: {exc}"
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--item-timeout", type=float, default=10.0, help="seconds per item (default 10)")
    parser.add_argument("--no-fork", action="store_true", help="interrupt items with the watchdog thread instead")
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # lighteval warns on every unparsed prediction
    from lighteval.models.model_output import ModelResponse
    from lighteval.tasks.requests import Doc
    from lighteval.utils.utils import remove_reasoning_tags

    imports = (ModelResponse, Doc, remove_reasoning_tags)
    dog = Watchdog(args.item_timeout)
    fork = hasattr(os, "fork") and not args.no_fork
    dog.emit({"key": "__meta__", "package": "lighteval", "version": version("lighteval"),
              "latex2sympy2_extended": version("latex2sympy2_extended"), "item_timeout": args.item_timeout})
    tasks = {}
    for key, item in read_items(sys.stdin):
        try:
            bench = item["benchmark"]
            if bench not in TASKS:
                raise KeyError(f"lighteval grader has no task for benchmark {bench!r} (known: {', '.join(TASKS)})")
            if bench not in tasks:  # imported outside any item's budget
                module, attr = TASKS[bench]
                tasks[bench] = getattr(importlib.import_module(module), attr)
            if fork:
                result, timed_out = run_forked(args.item_timeout, _grade, item, tasks[bench], imports)
            else:
                result, timed_out = dog.run(key, _grade, item, tasks[bench], imports)
            if timed_out:
                result = timeout_result(key, args.item_timeout)
        except ItemTimeout:  # a signal that landed between the item's end and the watchdog's disarm
            result = timeout_result(key, args.item_timeout)
        except Exception as exc:
            result = {"key": key, "correct": None, "extracted": None, "error": f"{type(exc).__name__}: {exc}",
                      "metrics": {}}
        dog.emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
