"""r1h.plugins.rewards._latex2sympy: latex2sympy gives the same result for every input, in SLL mode first and with
integers read without sympify; the speed-ups really run."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytest.importorskip("latex2sympy2_extended")

from latex2sympy2_extended import latex2sympy  # noqa: E402
from latex2sympy2_extended.gen.antlr4_13_2.PSParser import PSParser  # noqa: E402

from r1h.plugins.rewards import _latex2sympy  # noqa: E402

# Answers as models and MATH write them, with the shapes that SLL cannot parse alone (powers of symbols, units,
# intervals of pi^2: ANTLR needs full LL context there) and plain syntax errors that both stages reject.
LATEX = [
    "42", "007", "1,000", "10,\\!080", "3.14", ".5", "\\frac{3}{4}", "\\dfrac{14}{3}", "2\\sqrt{2}", "\\sqrt[3]{2}",
    "\\frac{1 + \\sqrt{5}}{2}", "6 - 4\\pi", "10\\%", "45^\\circ", "x = 5", "y = -\\frac{3}{2}x + 4",
    "x^5 - x^4 + x^3 - x^2 + x - 1", "6r^2-4r-24", "5r^5", "864 \\mbox{ inches}^2", "15\\mbox{ cm}^2",
    "\\left[ \\frac{\\pi^2}{8}, \\frac{5 \\pi^2}{4} \\right]", "(-\\infty, 0) \\cup (2, \\infty)", "\\{1, 2, 3\\}",
    "(3, \\frac{\\pi}{2})", "\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", "\\text{(B)}", "\\text{Evelyn}",
    "1 + 274i", "\\binom{10}{3}", "5!", "e^{i\\pi}", "\\log_2 8", "\\sin 30^\\circ", "a_{13} = 2016",
    "\\frac{", "Simplify the following:", "12^{", "\\cos \\theta = \\frac{", "²", "١٢",
]


def _results(items: list[str]) -> list[str]:
    out = []
    for text in items:
        try:
            value = latex2sympy(text)
        except Exception as exc:  # noqa: BLE001 - latex2sympy raises plain Exception for syntax errors
            out.append(f"error {type(exc).__name__}")
        else:
            out.append(f"ok {value!s} {type(value).__name__}")
    return out


def test_results_equal_latex2sympy_without_the_speed_ups():
    assert _latex2sympy.install()
    ours = _results(LATEX)
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); from test_latex2sympy_fast import LATEX, _results; "
        "from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy as L; from r1h.plugins.rewards import _latex2sympy; "
        "installed = _latex2sympy.install(); "
        "print(json.dumps([installed or getattr(L, '_r1h_fast', False), *_results(LATEX)]))"
    )
    env = {**os.environ, "R1H_LATEX_FAST": "0"}
    plain = subprocess.run([sys.executable, "-c", script, os.path.dirname(__file__)], env=env, capture_output=True,
                           text=True, timeout=120, check=True)
    patched, *theirs = json.loads(plain.stdout)
    assert not patched  # R1H_LATEX_FAST=0: latex2sympy as it ships
    assert ours == theirs
    assert sum(r.startswith("error") for r in ours) >= 5  # the syntax errors are still errors
    assert "ok 7 Integer" in ours and "ok 1000 Integer" in ours


def _modes(text: str, monkeypatch) -> list[str]:
    seen = []
    parse_math = PSParser.math

    def spy(self):
        seen.append(self._interp.predictionMode.name)
        return parse_math(self)

    monkeypatch.setattr(PSParser, "math", spy)
    try:
        latex2sympy(text)
    except Exception:  # noqa: BLE001
        pass
    return seen


def test_sll_first_and_ll_only_after_an_sll_syntax_error(monkeypatch):
    assert _latex2sympy.install()
    assert _modes("\\frac{3}{4}", monkeypatch) == ["SLL"]
    assert _modes("x^5 - x^4 + x^3 - x^2 + x - 1", monkeypatch) == ["SLL", "LL"]  # needs full context
    assert _modes("\\frac{", monkeypatch) == ["SLL", "LL"]  # a real syntax error: LL reports it


def test_integers_skip_sympify(monkeypatch):
    assert _latex2sympy.install()
    import sympy

    def no_sympify(*args, **kwargs):
        raise AssertionError("sympify called")

    monkeypatch.setattr(sympy, "Number", no_sympify)  # latex2sympy's slow path calls sympy.Number(text)
    assert latex2sympy("0042") == 42 and latex2sympy("1,000") == 1000
    with pytest.raises(AssertionError, match="sympify"):
        latex2sympy("3.5")  # a decimal still goes through latex2sympy's own parse_number


def test_install_is_idempotent_and_says_when_it_is_switched_off(monkeypatch):
    assert _latex2sympy.install() and _latex2sympy.install()
    monkeypatch.setenv("R1H_LATEX_FAST", "0")
    assert not _latex2sympy.install()
