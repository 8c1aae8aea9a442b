"""File-system-safe names for models (run directories ``runs/<slug>/<timestamp>``)."""

from __future__ import annotations

import re
from pathlib import Path


def model_slug(name: str | None, default: str = "model") -> str:
    """A short file-system-safe name for ``runs/<slug>/<timestamp>``.

    ``None`` -> ``default``; ``Qwen/Qwen2.5-Math-1.5B`` -> ``qwen2.5-math-1.5b``; ``out/sft/checkpoint-500`` ->
    ``sft-checkpoint-500``; ``dir/model.Q4.gguf`` -> ``model.q4``; ``openai:http://127.0.0.1:8000/v1`` ->
    ``openai-127.0.0.1-8000``.
    """
    if name is None or not str(name).strip():
        return default
    text = str(name).strip().rstrip("/\\")
    if "://" in text:  # a server URL (the openai backend without --model): name the host and port
        prefix, _, rest = text.partition("://")
        host = rest.split("/", 1)[0]
        kind = prefix.split(":", 1)[0] if ":" in prefix else "server"
        return re.sub(r"[^a-z0-9._-]+", "-", f"{kind}-{host}".lower()).strip("-.")[:80] or default
    if ":" in text and text.endswith(".gguf") and not Path(text).exists():
        text = text.rpartition(":")[2]
    parts = [p for p in re.split(r"[/\\]", text) if p not in ("", ".", "..")]
    if not parts:
        return default
    last = parts[-1]
    if last.endswith(".gguf"):
        last = last[: -len(".gguf")]
    if re.fullmatch(r"(checkpoint|step|epoch|global_step)[-_]?\d+|final|last|best", last, re.I) and len(parts) > 1:
        last = f"{parts[-2]}-{last}"
    slug = re.sub(r"[^a-z0-9._-]+", "-", last.lower()).strip("-.")
    return slug[:80] or default
