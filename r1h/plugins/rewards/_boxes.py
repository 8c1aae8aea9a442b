"""Where the final answer of a math completion is: the last ``\\boxed{...}``, an answer set of adjacent boxes, or a
"final answer is ..." statement written after the last box. Linear time, standard library only.

Rules (``final_boxed``):

- The last complete box is the answer (truncated boxes at the very end are skipped). A box, then other text, then
  another box: the later box supersedes the earlier one.
- Boxes written next to each other, separated only by whitespace, commas, semicolons, ``$``, ``\\(``/``\\)``,
  ``\\[``/``\\]``, spacing macros (``\\quad``, ``\\,``, ``~``, ``&``, ``\\\\``) and the word "and" (bare or in
  ``\\text{...}``), are one answer set: ``\\boxed{1}, \\boxed{2}, \\boxed{3}`` reads as ``1, 2, 3`` and
  ``\\boxed{(2,2)} \\text{ and } \\boxed{(6,2)}`` as ``(2,2), (6,2)``, which math-verify parses as a set. Identical
  boxes are kept once. This is stricter than latex2sympy's own ``extract_boxed_content`` (math_normalization.py,
  ``should_extract_boxed``: any text under 10 characters, or any text under 70 characters containing "and", "or",
  "," or ";"), which also joins ``\\boxed{3}, so the answer is not 3. It is \\boxed{4}``; "or" is not a joiner here
  either, since ``\\boxed{A} or \\boxed{B}`` hedges.
- More than ``MAX_SET_BOXES`` adjacent boxes are degenerate repetition, not an answer set: the last box alone counts.
"""

from __future__ import annotations

import re

BOX_OPENERS = ("\\boxed", "\\fbox")
MAX_BOX_CANDIDATES = 8  # truncated (unbalanced) boxes skipped from the end before giving up
MAX_SET_BOXES = 12  # adjacent boxes read as one answer set
MAX_GAP_CHARS = 60  # the longest separator between two boxes of one set
_PART = r"(?:for\s{1,3})?(?:part\s{1,3})?\(?[a-z0-9]\)\s{0,5},?\s{0,5}"  # "for part (a) and"
_GAP = re.compile(
    r"(?:\s|[,;&~$]|\\[()\[\]]|\\q?quad\b|\\[,;:! ]|\\\\|\band\b"
    r"|\\(?:text|mbox|textrm|mathrm|textnormal)\{\s{0,5},?\s{0,5}(?:" + _PART + r")?(?:and)?\s{0,5}\}"
    r"|\b[A-Za-z]{1,2}(?:_\{?\w{1,3}\}?)?\s{0,3}=)*"  # the next box's label: "x_2 = \boxed{...}"
)


# A gold solution is trusted text: boxes under 10 characters apart, or a short phrase with "and" apart, are its parts
# ("\\boxed{1} papers and \\boxed{2} bins"), as latex2sympy's should_extract_boxed reads a gold; never across an
# alternative ("or") or a sentence end, which MATH solutions use between two boxes of the same answer.
GOLD_GAP = re.compile(r"(?![^.\n]{0,60}\bor\b)(?:[^.\n]{0,9}|(?=[^.\n]{0,60}\band\b)[^.\n]{0,60})")


def balanced(text: str, start: int, limit: int) -> int:
    """Index of the ``}`` closing the ``{`` at ``start`` within ``limit`` characters (linear scan); -1 when the text
    ends first (a truncated generation), -2 when the group runs longer than ``limit``."""
    depth = 0
    end = min(len(text), start + limit + 2)
    i = start
    while i < end:
        ch = text[i]
        if ch == "\\":
            i += 2  # \{ and \} are literal braces
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return -1 if end >= len(text) else -2


def _box_at(text: str, at: int, limit: int) -> tuple[str, int, bool] | None:
    """The box whose opener starts at ``at``: (content, index after it, complete?), or None when it is cut off by the
    end of the text. An overlong box comes back cut at ``limit + 1`` characters and marked incomplete."""
    opener = next(o for o in BOX_OPENERS if text.startswith(o, at))
    j = at + len(opener)
    if j < len(text) and text[j] == "{":
        close = balanced(text, j, limit)
        if close >= 0:
            return text[j + 1 : close], close + 1, True
        if close == -2:
            return text[j + 1 : j + 2 + limit], j + 2 + limit, False
    elif j < len(text) and text[j] == " ":  # \boxed 5
        m = re.match(r" +([^\s$]+)", text[j : j + limit + 2])
        if m:
            return m.group(1), j + m.end(), True
    return None


def _last_opener(text: str, end: int) -> int:
    return max(text.rfind(opener, 0, end) for opener in BOX_OPENERS)


def last_box(text: str, limit: int) -> tuple[int, str, int, bool] | None:
    """The last box that is not cut off by the end of the text: (start, content, end, complete?), else None.

    At most MAX_BOX_CANDIDATES truncated boxes are skipped, so the cost is bounded by
    ``MAX_BOX_CANDIDATES * (limit + len(text))`` character steps whatever the text.
    """
    end = len(text)
    for _ in range(MAX_BOX_CANDIDATES):
        at = _last_opener(text, end)
        if at < 0:
            return None
        box = _box_at(text, at, limit)
        if box is not None:
            return at, box[0], box[1], box[2]
        end = at
    return None


def last_boxed(text: str, limit: int) -> str | None:
    """Content of the last complete ``\\boxed{...}`` (or ``\\fbox{...}``, or ``\\boxed 5``) in ``text``, else None."""
    box = last_box(text, limit)
    return None if box is None else box[1]


def final_boxed(text: str, limit: int, gap: re.Pattern = _GAP) -> tuple[str | None, int]:
    """The boxed final answer of ``text`` and the index after its last box: the last box, or the answer set of
    adjacent boxes ending there, joined by ", " (see the module docstring). (None, -1) without a box.
    ``gap``: what may separate two boxes of one set (``GOLD_GAP`` for a trusted gold solution)."""
    box = last_box(text, limit)
    if box is None:
        return None, -1
    start, content, stop, complete = box
    if not complete or not content.strip():
        return content, stop
    parts = [content.strip()]
    while len(parts) <= MAX_SET_BOXES:
        at = _last_opener(text, start)
        if at < 0 or start - at > limit + MAX_GAP_CHARS + 8:
            break
        prev = _box_at(text, at, limit)
        if prev is None or not prev[2] or not prev[0].strip() or prev[1] > start:
            break  # cut off, overlong, empty, or the outer box of a nested one
        between = text[prev[1] : start]
        if len(between) > MAX_GAP_CHARS or not gap.fullmatch(between):
            break
        parts.append(prev[0].strip())
        start = at
    if len(parts) > MAX_SET_BOXES:
        return content, stop  # degenerate repetition: the last box alone
    unique = list(dict.fromkeys(reversed(parts)))
    return ", ".join(unique), stop
