"""Fake ``vllm.renderers``: ``ChatParams`` (vllm/renderers/params.py), the fields r1h sets."""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass
class ChatParams:
    chat_template: str | None = None
    chat_template_content_format: str = "auto"
    chat_template_kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
