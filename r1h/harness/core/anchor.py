"""The published-result type that anchor plugins register (``r1h_register_anchors``); ``r1h check --anchor`` reads it.

An anchor is what a paper, a README or a guide reports for one model: a score per benchmark (as a fraction) and the
settings it was measured with. Settings are keyed like a run's generation config (``n``, ``temperature``, ``top_p``,
``max_tokens``) plus ``prompt`` and ``grader`` (free text: what template and what answer checker the source used, or
``SAME_AS_R1H`` when it is the one r1h's benchmark uses). A setting the source does not state is ``None`` ("not
recorded"), never a guess.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

SETTING_KEYS = ("n", "temperature", "top_p", "max_tokens", "prompt", "grader")
SAME_AS_R1H = "r1h"  # a prompt or grader setting with this value: the source used what r1h's benchmark uses


@dataclass(frozen=True)
class Published:
    """One published score: ``value`` in [0, 1]; ``settings`` override the anchor's for this benchmark (e.g. its n)."""

    value: float
    settings: Mapping[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class Anchor:
    """Published results of one model. ``source``: the citation (title, table or file and line, link)."""

    name: str
    model: str
    source: str
    results: Mapping[str, Published]
    settings: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    version: str = "1"

    def settings_for(self, bench: str) -> dict[str, Any]:
        """The settings behind one benchmark's score: the anchor's, then the benchmark's own on top."""
        published = self.results.get(bench)
        merged = {key: self.settings.get(key) for key in SETTING_KEYS}
        if published is not None:
            merged.update({k: v for k, v in published.settings.items() if k in SETTING_KEYS})
        return merged
