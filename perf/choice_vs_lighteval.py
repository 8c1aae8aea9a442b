"""choice_accuracy vs lighteval's GPQA letter extraction on the realistic endings of tests/helpers/choice_endings.py.

    python perf/choice_vs_lighteval.py [--lighteval-python ~/.cache/r1h/graders/lighteval-0.13.0/bin/python]

Counts, for r1h's ``predicted_letter`` and for lighteval, the endings read as their intended letter (an ending meant
as "no single letter" counts when nothing is read). lighteval runs in its own virtualenv: its ``gpqa_instruct_metric``
extraction (lighteval/metrics/metrics.py: ``IndicesExtractionConfig(prefix_for_extraction="NativeLetters",
try_extract_without_anchor=True)``, through ``extract_target_from_pred`` with the metric's fallback and extraction
modes), after ``remove_reasoning_tags`` as its pipeline does. Without that python only r1h's count is printed.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LIGHTEVAL_SIDE = r'''
import json, logging, sys
logging.disable(logging.WARNING)
from lighteval.metrics.metrics import Metrics
from lighteval.metrics.utils.extractive_match_utils import extract_target_from_pred, get_extraction_regexes
from lighteval.tasks.requests import Doc
from lighteval.utils.utils import remove_reasoning_tags

fn = Metrics.gpqa_instruct_metric.value.sample_level_fn
doc = Doc(query="q", choices=["A", "B", "C", "D"], gold_index=0)
regexes = get_extraction_regexes(doc, fn.pred_extraction_target, fn.language)
out = []
for text in json.load(sys.stdin):
    text = remove_reasoning_tags(text=text, tag_pairs=[("<think>", "</think>")])
    found = extract_target_from_pred(text, regexes, fn.fallback_mode, fn.extraction_mode, fn.timeout_seconds)
    out.append(str(found[0]) if found else None)
json.dump(out, sys.stdout)
'''


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    default = Path.home() / ".cache" / "r1h" / "graders" / "lighteval-0.13.0" / "bin" / "python"
    ap.add_argument("--lighteval-python", type=Path, default=default)
    ap.add_argument("--show", action="store_true", help="print every ending where either grader misses")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "tests"))
    from helpers.choice_endings import ENDINGS

    from r1h.plugins.rewards.choice import predicted_letter

    texts = [t for t, _ in ENDINGS]
    r1h = [predicted_letter(t) for t in texts]
    lighteval = None
    if args.lighteval_python.exists():
        proc = subprocess.run([str(args.lighteval_python), "-c", LIGHTEVAL_SIDE], input=json.dumps(texts),
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            print(proc.stderr[-2000:], file=sys.stderr)
            return 1
        lighteval = json.loads(proc.stdout.strip().splitlines()[-1])
    n = len(ENDINGS)
    lettered = [i for i, (_, want) in enumerate(ENDINGS) if want is not None]
    print(f"endings: {n} ({len(lettered)} with an intended letter, {n - len(lettered)} with none)")
    for name, got in (("r1h choice_accuracy", r1h), ("lighteval gpqa_instruct_metric", lighteval)):
        if got is None:
            continue
        right = [g == want for g, (_, want) in zip(got, ENDINGS, strict=True)]
        print(f"{name}: {sum(right)}/{n} read as intended "
              f"({sum(right[i] for i in lettered)}/{len(lettered)} letters, "
              f"{sum(right) - sum(right[i] for i in lettered)}/{n - len(lettered)} none)")
    if args.show:
        for i, (text, want) in enumerate(ENDINGS):
            got_l = lighteval[i] if lighteval else "-"
            if r1h[i] != want or (lighteval and got_l != want):
                print(f"want {want} r1h {r1h[i]} lighteval {got_l}: {text[-90:]!r}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
