"""Realistic endings of GPQA-style multiple-choice completions and the letter each one means (None: no single letter).

Written for this project in the styles R1-Distill, Qwen, Llama and GPT-style models end their answers with; used by
tests/test_reward_choice_endings.py and perf/choice_vs_lighteval.py (which also runs lighteval's extraction on them).
"""

from __future__ import annotations

THINK = "<think>\nThe options are A) 2 eV, B) 4 eV, C) 6 eV, D) 8 eV. Option A looks too small; maybe B.\n</think>\n\n"

ENDINGS: list[tuple[str, str | None]] = [
    # --- an explicit "answer" anchor
    ("The energy splits into two levels.\n\nAnswer: B", "B"),
    ("Therefore the correct answer is (C).", "C"),
    ("So the answer is **D**.", "D"),
    ("**Final Answer:** A", "A"),
    ("Final answer: $\\boxed{B}$", "B"),
    ("The final answer is \\boxed{\\text{C}}.", "C"),
    ("\\[\n\\boxed{D}\n\\]", "D"),
    ("Answer: (A) 2.3 \u00d7 10^4 K", "A"),
    ("The answer is option B.", "B"),
    ("The correct answer is: C) the tritium nucleus", "C"),
    ("ANSWER: D", "D"),
    ("Answer = $B$", "B"),
    ("The answer should be (A).", "A"),
    ("<answer>C</answer>", "C"),
    ("<answer> (D) </answer>", "D"),
    ("Hence, the answer would be **(B)**.", "B"),
    ("**Answer: C**", "C"),
    ("Answer:\n\nD", "D"),
    ("My final answer is A.", "A"),
    ("The answer is $\\textbf{(C)}$.", "C"),
    # --- the anchor with a word between "is" and the letter
    ("Looking again at the spin states, the answer is actually D.", "D"),
    ("So the answer is clearly B.", "B"),
    ("The answer is therefore (A).", "A"),
    ("So the answer is most likely C.", "C"),
    # --- lowercase letters standing alone
    ("answer: b", "B"),
    ("the answer is (c).", "C"),
    ("Final answer: d", "D"),
    ("so the answer is a.", "A"),
    # --- LaTeX-wrapped letters
    ("$\\mathrm{(B)}$", "B"),
    ("The answer is $\\mathrm{(D)}$.", "D"),
    ("\\boxed{\\mathrm{A}}", "A"),
    ("\\boxed{\\textbf{C}}", "C"),
    ("Answer: $\\text{(B)}$", "B"),
    # --- no "answer" anchor
    ("So I'll go with C.", "C"),
    ("Therefore, B.", "B"),
    ("The best choice is B.", "B"),
    ("Correct option: A", "A"),
    ("I would choose option (D).", "D"),
    ("I'm going with A.", "A"),
    ("I choose C.", "C"),
    ("My pick is D.", "D"),
    ("The correct choice is (B).", "B"),
    ("The right option is C.", "C"),
    ("Thus, (A).", "A"),
    ("Hence **D**.", "D"),
    ("So, C.", "C"),
    ("After checking units, I'll pick B.", "B"),
    ("I'll select option C.", "C"),
    ("The best option would be D.", "D"),
    # --- a hedged "closest" pick (none of the options fits exactly)
    ("None of the options matches 4.3 eV exactly, but the closest is C.", "C"),
    ("The closest option is (B).", "B"),
    ("My estimate, 5.7, is nearest to D.", "D"),
    ("None fit perfectly; A is the closest.", "A"),
    ("Of the four, B seems closest.", "B"),
    ("The computed ratio is closest to option C, given rounding.", "C"),
    # --- a conclusion phrased as a belief, after options were rejected
    ("A ignores the spin degeneracy, so it can't be A. Therefore I think it's C.", "C"),
    ("B double counts the pairs. So I believe it is D.", "D"),
    ("Neither A nor B conserves charge, hence it must be (C).", "C"),
    ("Ruling out D, I think it's **B**.", "B"),
    ("Neither A nor D conserves momentum. Therefore I think it\u2019s B.", "B"),
    # --- a sure pick followed by the letters it rules out
    ("For sure D, it can't be A or B.", "D"),
    ("The answer is for sure C, not A or D.", "C"),
    ("It is definitely B; A and C violate parity.", "B"),
    ("Certainly (A). B and D need a catalyst.", "A"),
    # --- a lone letter on the last line
    ("Comparing the four mechanisms, only one keeps the stereocenter.\n\nB", "B"),
    ("The product is the trans isomer.\n\n**C**", "C"),
    ("All things considered:\n\n(D)", "D"),
    ("The ratio is 4.\n\nA.", "A"),
    # --- the last statement wins
    ("Answer: A\n\nWait, I dropped a factor of 2. The answer is actually C.", "C"),
    ("The answer is D... no, that double counts. Answer: B", "B"),
    ("Initially I thought A, but the selection rule forbids it. I'll go with D.", "D"),
    ("Answer: B\n\nHmm, re-reading the question, the answer is C.", "C"),
    # --- reasoning inside <think> does not count
    (THINK + "Answer: C", "C"),
    (THINK + "The correct answer is D.", "D"),
    (THINK + "I am not sure.", None),
    # --- a letter mentioned after the final statement does not win
    ("Answer: B\n\nExplanation: A and C are wrong because they ignore spin-orbit coupling.", "B"),
    ("The answer is D. Option A would need a second catalyst, and B is a distractor.", "D"),
    ("Answer: C\n\nWhy not the others: A violates parity; B and D double count.", "C"),
    ("Final answer: A. (B is what you get if you forget the Jacobian.)", "A"),
    ("**Answer: D**\n\nNote that option A is close but uses the wrong mass.", "D"),
    # --- hedged: no single letter
    ("Answer: A or B", None),
    ("The answer is B/C.", None),
    ("The answer is either A or D, depending on the solvent.", None),
    ("Answer: A, C", None),
    ("I'd go with A or B.", None),
    # --- no final statement at all
    ("Option B looks wrong, and A is tempting; C ignores friction.", None),
    ("The answer is a bit subtle, so let me reconsider the boundary conditions.", None),
    ("Answers vary by convention.", None),
    ("Answer: Because the field is conservative, the work is path independent.", None),
    ("A is tempting. B also.", None),
    ("I cannot determine this without the reaction temperature.", None),
    ("Answer: E", None),
    ("So A is wrong, and D fails for the same reason, which leaves", None),
    ("I know for sure A is wrong, and B is doubtful.", None),
    ("The closest distance is between the two carbons.", None),
    ("It must be the solvent that matters here.", None),
]
