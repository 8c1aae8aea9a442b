"""How often ``math_accuracy`` agrees with Math-Verify's own test suite (the cases run at default settings).

Reads a checkout of github:huggingface/Math-Verify given on the command line (nothing of it is copied into r1h):

    python perf/mathverify_suite.py /path/to/Math-Verify [--show]

A case is ``(gold, pred, expected)`` from the test functions that call ``compare_strings`` with the default settings
(``match_types=["latex", "expr"]``, default precision and strictness). r1h grades ``pred`` as the completion; the gold
goes in the ``solution`` column when it holds a ``\\boxed{}`` and in the ``answer`` column otherwise. Plain math-verify
is the suite's own ``compare_strings``. Prints both agreement counts.
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path

# tests that call compare_strings(gold, pred, match_types=["latex", "expr"]) (or parse/verify) with no other setting
DEFAULT_TESTS = ("test_simple_fraction_notation", "test_sets_handling", "test_percent_notation",
                 "test_math_extraction_edge_cases", "test_math_extraction_additional_cases", "test_boxed",
                 "test_numina_cases", "test_open_thoughts", "test_string_extraction")
# tests with a setting per case: only the cases at the default value count
DEFAULT_VALUES = {"test_complex_math_expressions": ("precision", 6), "test_strict_variable_comparison": ("strict", True)}


def cases(repo: Path) -> list[tuple[str, str, str, int]]:
    """(test name, gold, pred, expected) of the default-settings tests, read with ast (the files are not run)."""
    out = []
    for path in sorted((repo / "tests").glob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for fn in tree.body:
            if not isinstance(fn, ast.FunctionDef) or fn.name not in (*DEFAULT_TESTS, *DEFAULT_VALUES):
                continue
            for deco in fn.decorator_list:
                if not (isinstance(deco, ast.Call) and getattr(deco.func, "attr", "") == "parametrize"):
                    continue
                names = [n.strip() for n in ast.literal_eval(deco.args[0]).split(",")]
                if "gold" not in names:
                    continue  # test_string_extraction.py's namesake checks extraction configs, not gold vs pred
                for row in ast.literal_eval(deco.args[1]):
                    case = dict(zip(names, row, strict=True))
                    setting = DEFAULT_VALUES.get(fn.name)
                    if setting and case[setting[0]] != setting[1]:
                        continue
                    expected = case.get("expected", case.get("result"))
                    out.append((f"{path.stem}::{fn.name}", case["gold"], case["pred"], int(expected)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("repo", type=Path)
    ap.add_argument("--show", action="store_true", help="print the cases where r1h disagrees")
    args = ap.parse_args()
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    from r1h import get_reward

    reward = get_reward("math_accuracy")
    config = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]
    items = cases(args.repo)
    r1h_ok = mv_ok = 0
    for name, gold, pred, expected in items:
        row = {"solution": gold} if "\\boxed" in gold else {"answer": gold}
        got = reward.score(pred, None, **row)
        r1h_ok += int((got or 0.0) >= 1.0) == expected
        mv = int(verify(parse(gold, config), parse(pred, config)))
        mv_ok += mv == expected
        if args.show and int((got or 0.0) >= 1.0) != expected:
            print(f"[{name}] expected {expected} r1h {got} mv {mv}\n  gold: {gold!r}\n  pred: {pred[-200:]!r}")
    print(f"Math-Verify suite, default-settings cases: {len(items)}")
    print(f"r1h math_accuracy agrees: {r1h_ok}/{len(items)}")
    print(f"plain math-verify agrees: {mv_ok}/{len(items)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
