"""latex2sympy (which math-verify uses to read LaTeX), made faster with the same result for every input.

Reading LaTeX is most of the cost of grading a math answer (``perf/grade_labeled.py``). latex2sympy has no switches for
either of these, so ``install()`` wraps three methods of its ``_Latex2Sympy`` class, once per process
(``math_accuracy`` calls it before its first parse), and only when they exist; otherwise latex2sympy runs unchanged.
``R1H_LATEX_FAST=0``, set before the process's first grade, turns both off. Measured on the 1,000 labeled MATH-500 completions: identical verdicts and
extracted answers, and 15-20% less CPU for the two together (4.1-4.3 s instead of 4.8-5.2 s in one process).

- **Two-stage parsing** (``create_parser``, ``parse``): latex2sympy parses in ANTLR's default LL prediction mode.
  ANTLR's documentation of ``PredictionMode.SLL`` (antlr4-python3-runtime 4.13.2, ``antlr4/atn/PredictionMode.py``
  lines 23-37) guarantees that an SLL parse "will either return a correct parse tree (i.e. the same parse tree that
  would be returned with the LL prediction mode), or it will report a syntax error". So r1h parses with SLL and
  re-parses with LL only after an SLL syntax error: the "two-stage parsing" of Parr, Harwell and Fisher, "Adaptive
  LL(*) parsing" (OOPSLA 2014), section 3.2. SLL also caches every prediction in ANTLR's DFA, which LL's full-context
  predictions never are: on MATH-500 answers it parses 1.4x faster with a cold cache and ~3x faster warm.
- **Integers** (``parse_number``): latex2sympy reads every number with ``sympy.Number(text)``, which for a string
  runs ``sympify``, i.e. sympy's ``parse_expr``, which runs ``exec('from sympy import *')`` on each call (0.4 ms).
  For an ASCII digit string (the only kind latex2sympy's own branch strips of leading zeros) ``sympy.Integer(text)``
  is that same Integer; anything else still goes to latex2sympy's ``parse_number``.
"""

from __future__ import annotations

import threading

from r1h.harness.system import settings

_state = threading.local()  # .sll: the parser being created is a first-stage (SLL) one


class _SLLSyntaxError(Exception):
    """A syntax error in the SLL stage: retry with LL (it may be SLL's weakness, not the input's)."""


def _bail(*_args, **_kwargs):
    raise _SLLSyntaxError


def install() -> bool:
    """Install both speed-ups in latex2sympy (idempotent). True when they are in place."""
    if not settings.get("R1H_LATEX_FAST"):
        return False
    try:
        import sympy
        from antlr4.atn.PredictionMode import PredictionMode
        from antlr4.error.ErrorListener import ErrorListener
        from latex2sympy2_extended.latex2sympy2 import _Latex2Sympy
    except ImportError:
        return False
    if getattr(_Latex2Sympy, "_r1h_fast", False):
        return True
    originals = [getattr(_Latex2Sympy, name, None) for name in ("create_parser", "parse", "parse_number")]
    if not all(callable(f) for f in originals):
        return False
    create_ll, parse_ll, parse_number_slow = originals

    class Bail(ErrorListener):
        syntaxError = staticmethod(_bail)  # noqa: N815 (ANTLR's name)

    def create_parser(self, latex_str):
        parser = create_ll(self, latex_str)
        if getattr(_state, "sll", False):
            _state.sll = False  # only the parser of this parse() call: nested parses choose for themselves
            parser._interp.predictionMode = PredictionMode.SLL
            parser.removeErrorListeners()
            parser.addErrorListener(Bail())
        return parser

    def parse(self, latex_str):
        _state.sll = True
        try:
            return parse_ll(self, latex_str)
        except _SLLSyntaxError:
            pass  # the conversion after a successful parse never raises this, so nothing ran twice but the parse
        finally:
            _state.sll = False
        return parse_ll(self, latex_str)

    def parse_number(self, text):
        digits = text.replace(",", "")
        if digits.isascii() and digits.isdigit():
            return sympy.Integer(digits)  # int() drops leading zeros as latex2sympy's loop does
        return parse_number_slow(self, text)

    _Latex2Sympy.create_parser = create_parser
    _Latex2Sympy.parse = parse
    _Latex2Sympy.parse_number = parse_number
    _Latex2Sympy._r1h_fast = True
    return True
