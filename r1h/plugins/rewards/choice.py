"""``choice_accuracy``: 1.0 when the letter of the final answer (A-D) equals the gold letter, else 0.0.

The predicted letter comes only from final-answer statements; the last statement wins:

- an "answer" anchor: "Answer: X", "the answer is (X)", "the correct answer is actually **D**", "Final answer = $B$";
- a choice without the word "answer": "I'll go with C", "I would choose option (D)", "The best choice is B",
  "Correct option: A", "my pick is C";
- a conclusion that is only a letter: "Therefore, B.", "So the answer: C", "Thus (A)";
- a conclusion phrased as a belief: "Therefore I think it's C", "so I believe it is (D)", "hence it must be B";
- a hedged "closest" pick: "none fits exactly, but the closest is C", "the closest option is (B)", "B seems closest";
- a sure pick, even when the letters it rules out follow it: "for sure D, it can't be A or B", "definitely (C).";
- ``\\boxed{X}``, ``<answer>X</answer>``, or a last line that holds a lone letter ("**C**", ``$\\mathrm{(B)}$``).

The letter may be wrapped in ``( )``, ``**``, ``$``, ``\\text{}``, ``\\mathrm{}``, ``\\textbf{}``. A lowercase letter
counts only where nothing but punctuation or the line end follows it ("answer: b", not "the answer is a bit").
A hedged statement ("Answer: A or B", "the answer is B/C") names no single letter and scores 0.0. A letter merely
mentioned in the reasoning, or after the final statement ("Explanation: A and C are wrong"), does not count, and text
inside ``<think>...</think>`` is ignored when ``</think>`` is present. Every regex here uses bounded quantifiers only,
so grading is linear in the length of the completion (``isolate = False``: it runs inline in the batch grader).
"""

from __future__ import annotations

import re
from typing import Any

from r1h.harness.core.hookspecs import hookimpl
from r1h.harness.core.reward import Reward

LETTERS = "ABCD"
# the letter, in its wrappers: "(B)", "**B**", "$B$", "\\mathrm{(B)}", "\\text{B}", "option B"
_WRAP = (r"[\s:*(\[{$]{0,8}(?:\\(?:text|textbf|mathrm|mathbf|mbox|bf)\s{0,2}\{\s{0,2})?[*(\[]{0,3}\s{0,2}"
         r"(?:(?i:option|choice)\s{0,3}[(\[]{0,1})?")
# a capital letter standing alone ("A" in "Answer" does not count); a lowercase one only before punctuation/line end
_L = r"(?:([A-D])(?![A-Za-z0-9_])|([a-d])(?=[\s*$)\]}]{0,6}(?:[.,;:!?)\]}]|$)))"
_FILLER = (r"(?:\s{1,3}(?i:actually|clearly|definitely|indeed|therefore|thus|then|likely|most likely|probably|either"
           r"|for sure|surely|certainly))?")
_NEXT = r"(?=[\s:*=(\[{$\\-])"  # an anchor word is followed by a space or punctuation (fails fast on "answeranswer")
_IS = r"(?:\s{0,3}(?i:is|would be|should be|will be|must be|=|:|-)){0,1}"

# (lowercase words one of which the text must hold, pattern): the cheap test skips a pattern on most texts
_STATEMENTS = (
    # "Answer: B", "The final answer is (C)", "the correct answer is **D**", "answer is actually D", "Answer = $B$"
    (("answer",),
     re.compile(r"(?i:answer)" + _NEXT + _IS + _FILLER + _WRAP + _L, re.MULTILINE)),
    # "I'll go with C", "I would choose option (D)", "I pick B", "selecting A"
    (("go", "choos", "chose", "pick", "select", "opt "),
     re.compile(r"(?i:go with|going with|choose|chose|choosing|pick|picking|select|selecting|opt for)" + _NEXT
                + r"\s{0,3}(?i:the\s{1,3})?" + _WRAP + _L, re.MULTILINE)),
    # "The best choice is B", "Correct option: A", "my pick is C", "the right option would be (D)"
    (("choice", "option", "pick", "selection"),
     re.compile(r"(?i:best|correct|right|final|my)\s{1,3}(?i:choice|option|pick|selection)" + _NEXT + _IS + _FILLER
                + _WRAP + _L, re.MULTILINE)),
    # "Therefore, B." "So (C)" "Thus: **A**" at the start of a sentence, with nothing after the letter
    (("therefore", "thus", "so", "hence", "consequently"),
     re.compile(r"(?:^|[.!?]\s{1,3})(?i:therefore|thus|so|hence|consequently)[\s,:]{0,3}" + _WRAP + _L
                + r"(?=[\s*$)\]}]{0,6}(?:[.!]|$))", re.MULTILINE)),
    # hedged "closest": "none fits exactly, but the closest is C", "the closest option is (B)", "closest to D."
    (("closest", "nearest"),
     re.compile(r"(?i:closest|nearest)(?:\s{1,3}(?i:one|option|choice|match|value))?" + _NEXT + _IS
                + r"(?:\s{1,3}(?i:to|is))?" + _WRAP + _L, re.MULTILINE)),
    # "C is the closest", "B seems closest.", "D comes closest"
    (("closest", "nearest"),
     re.compile(r"(?:^|[\s,:(*$])" + _WRAP + r"([A-D])(?![A-Za-z0-9_])()[\s*$)\]}]{0,6}"
                r"(?i:is|seems|looks|comes|appears)\s{1,3}(?i:to\s{1,3}be\s{1,3})?(?i:the\s{1,3})?(?i:closest|nearest)",
                re.MULTILINE)),
    # "Therefore I think it's B", "so I believe it is (C)", "hence it must be D", after options ruled out
    (("think", "believe", "must", "it's", "it\u2019s", "it is"),
     re.compile(r"(?i:therefore|thus|so|hence|overall|in conclusion|i think|i believe|i'd say)[\s,]{0,3}"
                r"(?i:i\s{1,3}(?:think|believe|guess)\s{1,3})?(?i:it['\u2019]s|it is|it must be|it should be|it has to be)"
                + _WRAP + _L, re.MULTILINE)),
    # "for sure D, it can't be A or B", "definitely (C) - not A": a sure pick with nothing but punctuation after it
    (("sure", "definitely", "certainly"),
     re.compile(r"(?i:for sure|definitely|certainly)[\s,:]{0,3}" + _WRAP + _L + r"(?=[\s*$)\]}]{0,6}(?:[.!,;]|$))",
                re.MULTILINE)),
    # \boxed{B}, \boxed{\text{B}}, \boxed{(B)}
    (("\\boxed",), re.compile(r"\\boxed\s{0,3}\{" + _WRAP + _L)),
    # <answer>B</answer>, <answer> (C) </answer>
    (("<answer>",), re.compile(r"<answer>" + _WRAP + _L)),
)
_LONE_LINE = re.compile(_WRAP + r"([A-Da-d])" + r"[\s*_$.)\]}:]{0,12}")
# after the letter: "or B", "/C", "and D", ", B": the statement names several letters
_HEDGE = re.compile(r"[\s*$)\]}]{0,6}(?:\s(?i:or|and|and/or)\s|\s{0,2}/\s{0,2}|\s{0,2},\s{0,2}(?i:or\s)?)"
                    + _WRAP + r"[A-D](?![A-Za-z0-9_])")
_GOLD = re.compile(r"\s{0,8}\(?([A-Da-d])\)?[.\s]{0,8}")
_HEDGED = "?"


def graded_text(text: str) -> str:
    at = text.rfind("</think>")
    return text if at < 0 else text[at + len("</think>") :]


def gold_letter(answer: Any) -> str | None:
    """The gold letter A-D from the ``answer`` column ("B", "b", "(B)"), else None."""
    if not isinstance(answer, str) or len(answer) > 32:
        return None
    m = _GOLD.fullmatch(answer)
    return m.group(1).upper() if m else None


def _statement(m: re.Match, text: str) -> tuple[int, str]:
    """Where the statement's letter is and what it is (``_HEDGED`` when another letter is offered beside it)."""
    group = 1 if m.group(1) else 2
    letter = m.group(group).upper()
    return m.start(group), (_HEDGED if _HEDGE.match(text, m.end(group)) else letter)


def predicted_letter(completion: str) -> str | None:
    """The letter of the last final-answer statement (or of a lone-letter last line), else None (also when the last
    statement hedges between letters)."""
    text = graded_text(completion or "")
    best, best_at = None, -1
    low = text.lower()
    for keywords, pattern in _STATEMENTS:
        if not any(k in low for k in keywords):
            continue
        for m in pattern.finditer(text):
            at, letter = _statement(m, text)
            if at > best_at:
                best, best_at = letter, at
    lines = text.rstrip().rsplit("\n", 1)
    last = lines[-1] if lines else ""
    if len(last) <= 40:
        m = _LONE_LINE.fullmatch(last)
        if m is not None:
            at = len(text.rstrip()) - len(last) + m.start(1)
            if at > best_at:
                best = m.group(1).upper()
    return None if best == _HEDGED else best


class ChoiceAccuracy(Reward):
    """1.0 when the final answer's letter (Answer: X, answer is (X), \\boxed{X}, a lone last line) equals the gold."""

    name = "choice_accuracy"
    version = "1"
    description = "1.0 when the final answer's letter (Answer: X, \\boxed{X}, lone last line) equals the gold A-D"
    columns = ("answer",)
    required_columns = ("answer",)
    isolate = False

    def extract(self, completion: str, prompt: Any = None, **row: Any) -> str | None:
        return predicted_letter(completion)

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float | None:
        gold = gold_letter(row.get("answer"))
        if gold is None:
            return None
        return 1.0 if predicted_letter(completion) == gold else 0.0

    def equivalent(self, a: str, b: str) -> bool:
        return a.strip().upper() == b.strip().upper()


@hookimpl
def r1h_register_rewards(register):
    register(
        "choice_accuracy",
        "r1h.plugins.rewards.choice:ChoiceAccuracy",
        version=ChoiceAccuracy.version,
        description=ChoiceAccuracy.description,
    )
