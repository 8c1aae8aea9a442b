"""Numerals that math-verify misreads, rewritten before it sees them. Linear time, standard library only.

math-verify (and latex2sympy under it) reads three ways of writing a number wrong:

- **Thin-space digit groups.** ``1\\,000`` is read as ``1*0`` (= 0), ``12\\,345\\,678`` as a product, and
  ``2^{10\\,000}`` as ``2^0`` (= 1), which also slips past the huge-exponent guard. ``group_digits`` joins a number's
  digit groups when they are written the way thousands separators are: a first group of 1-3 digits then groups of
  exactly 3 before the decimal point, groups of 3 (the last one 1-3) after it. The separators are ``\\,``, ``\\;``,
  ``\\:``, ``\\!``, ``\\ `` and ``{,}``. Any other digit-space-digit in a boxed answer (``1\\,0``, ``12\\,34``) is
  ambiguous and the answer is unreadable (``None``): it scores 0.0 rather than some guess (unless it is written exactly
  as the gold). In free text an ambiguous group is left as written.
- **Hexadecimal literals.** ``2^{0x10}`` is read as ``2^{0*x*10}`` (= 1). ``hex_to_decimal`` rewrites a ``0x...``
  token to its decimal value, so the ordinary guards (at most 4 exponent digits) apply to it.
- **Scientific notation** (``2e3``, ``1.5E-4``, ``6.02e+23``). In free text math-verify reads only the mantissa ("2e3"
  is 2, "1e999999" is 1), in LaTeX it reads ``2e3`` as ``2*e*3``. ``scientific`` rewrites the numeral as
  ``m \\times 10^{k}`` (wrapped in ``$...$`` in free text), so the huge-exponent guard refuses ``1e999999`` instead of
  reading it as 1. In a boxed answer only an unsigned exponent is rewritten: ``2e-3`` there may mean ``2e - 3``.
"""

from __future__ import annotations

import re

_SEP = r"(?:\\[,;:! ]|\{,\})"
# a numeral with at least one separator between digits: integer part, optional fractional part
_GROUPED = re.compile(r"(?<![\d.])(\d{1,400}(?:" + _SEP + r"\d{1,400})*)(?:\.(\d{1,400}(?:" + _SEP + r"\d{1,400})*))?")
_HAS_SEP = re.compile(r"\d" + _SEP + r"\d")
_SPLIT = re.compile(_SEP)
_HEX = re.compile(r"(?<![\w.\\])0[xX]([0-9a-fA-F]{1,400})(?!\w|\.\d)")
_SCI_BOX = re.compile(r"(?<![\w.\\])(\d{1,50}(?:\.\d{1,50})?)[eE]\+?(\d{1,400})(?!\w|\.\d)")
_SCI_TEXT = re.compile(r"(?<![\w.\\])(\d{1,50}(?:\.\d{1,50})?)[eE]([-+]?\d{1,400})(?!\w|\.\d)")


def _joined(integer: str, fraction: str | None) -> str | None:
    head = _SPLIT.split(integer)
    if len(head) > 1 and not (1 <= len(head[0]) <= 3 and all(len(g) == 3 for g in head[1:])):
        return None
    tail = _SPLIT.split(fraction) if fraction is not None else []
    if len(tail) > 1 and not (all(len(g) == 3 for g in tail[:-1]) and len(tail[-1]) <= 3):
        return None
    return "".join(head) + ("." + "".join(tail) if fraction is not None else "")


def group_digits(text: str, strict: bool = True) -> str | None:
    """``text`` with thin-space digit groups joined (``1\\,000`` -> ``1000``). A digit-space-digit that is not a
    digit grouping is ambiguous: None when ``strict``, else left as written."""
    if not _HAS_SEP.search(text):
        return text
    out, pos = [], 0
    for m in _GROUPED.finditer(text):
        if not _HAS_SEP.search(m.group(0)):
            continue
        joined = _joined(m.group(1), m.group(2))
        if joined is None:
            if strict:
                return None
            continue
        out.append(text[pos : m.start()])
        out.append(joined)
        pos = m.end()
    out.append(text[pos:])
    return "".join(out)


def hex_to_decimal(text: str) -> str:
    """``0x...`` tokens as their decimal value (``2^{0x10}`` -> ``2^{16}``)."""
    if "0x" not in text and "0X" not in text:
        return text
    return _HEX.sub(lambda m: str(int(m.group(1), 16)), text)


def _in_math(text: str, at: int) -> bool:
    """Whether position ``at`` is inside ``$...$`` (an odd number of unescaped dollars before it)."""
    return (text.count("$", 0, at) - text.count("\\$", 0, at)) % 2 == 1


def scientific(text: str, *, latex: bool) -> str:
    """Scientific-notation numerals as ``m \\times 10^{k}``; ``latex``: the text is a boxed answer (math already)."""
    if "e" not in text and "E" not in text:
        return text
    pattern = _SCI_BOX if latex else _SCI_TEXT

    def power(m: re.Match) -> str:
        exponent = m.group(2).lstrip("+")
        value = f"{m.group(1)} \\times 10^{{{exponent}}}"
        return value if latex or _in_math(text, m.start()) else f"${value}$"

    return pattern.sub(power, text)


def normalize_answer(answer: str) -> str | None:
    """A boxed answer with its numerals rewritten for math-verify; None when a digit grouping is ambiguous."""
    grouped = group_digits(answer)
    if grouped is None:
        return None
    return scientific(hex_to_decimal(grouped), latex=True)


def normalize_text(text: str) -> str:
    """A free-text window (a "final answer is ..." sentence) with its numerals rewritten; an ambiguous digit group
    stays as written (the window is prose, not one answer)."""
    return scientific(hex_to_decimal(group_digits(text, strict=False)), latex=False)
