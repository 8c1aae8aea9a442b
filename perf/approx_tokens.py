"""How close ``r1h.harness.eval.thinking.approx_tokens`` (the tokenizer-free estimate behind ``answer_tokens``) comes to a
real tokenizer, on the 1,000 labeled MATH-500 completions (whole texts and their last 300 characters, the size of an
answer after ``</think>``).

    python perf/approx_tokens.py [--tokenizer NAME_OR_PATH] [--refdata DIR]

Without ``--tokenizer`` it uses the embedded default model's tokenizer (SmolLM2-135M-Instruct, read from its GGUF).
Prints, per segment, the ratio estimate / true summed over all texts and the median and p90 of the per-text relative
error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from grade_labeled import DEFAULT_REFDATA, load_labeled  # noqa: E402


def _tokenizer(name: str | None):
    from transformers import AutoTokenizer

    if name:
        return AutoTokenizer.from_pretrained(name)
    from r1h.plugins.backends.models import resolve_model

    model = resolve_model(None)
    return AutoTokenizer.from_pretrained(model.tokenizer, **model.load_kwargs())


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * (len(ordered) - 1) + 0.5))]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokenizer", default=None)
    ap.add_argument("--refdata", type=Path, default=DEFAULT_REFDATA)
    args = ap.parse_args()
    from r1h.harness.eval.thinking import approx_tokens

    tok = _tokenizer(args.tokenizer)
    texts = [row["completion"] for row in load_labeled(args.refdata)]
    for label, segment in (("whole completion", lambda t: t), ("last 300 characters", lambda t: t[-300:])):
        est, true, errors = 0, 0, []
        for text in texts:
            part = segment(text)
            e, t = approx_tokens(part), len(tok.encode(part, add_special_tokens=False))
            est, true = est + e, true + t
            if t:
                errors.append(abs(e - t) / t)
        print(f"{label}: estimate/true {est / true:.3f} over {len(texts)} texts ({true} tokens); relative error "
              f"median {_quantile(errors, 0.5):.3f}, p90 {_quantile(errors, 0.9):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
