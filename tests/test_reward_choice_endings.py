"""choice_accuracy on realistic GPQA-style endings (tests/helpers/choice_endings.py): every ending reads as its intended letter,
hedges and mere mentions read as none, and the score follows."""

from __future__ import annotations

import pytest
from helpers.choice_endings import ENDINGS

from r1h.plugins.rewards import choice as c


@pytest.mark.parametrize(("completion", "letter"), ENDINGS)
def test_reads_the_intended_letter(completion, letter):
    assert c.predicted_letter(completion) == letter


@pytest.mark.parametrize(("completion", "letter"), ENDINGS)
def test_scores_one_only_for_the_intended_letter(completion, letter):
    reward = c.ChoiceAccuracy()
    for gold in "ABCD":
        assert reward.grade_one(completion, None, {"answer": gold}).score == (1.0 if gold == letter else 0.0)


def test_enough_endings_of_each_kind():
    assert len(ENDINGS) >= 75
    assert sum(letter is None for _, letter in ENDINGS) >= 10
