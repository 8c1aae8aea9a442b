"""Names: whether a name is a local path or a hub id, and file-system-safe names for models (run directories
``runs/<slug>/<timestamp>``)."""

from __future__ import annotations

import re
from pathlib import Path

# A hub repository id: ``name`` or ``org/name`` (letters, digits, ``_``, ``.``, ``-``; no leading dot or slash).
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")


def looks_like_path(spec: str, suffixes: tuple[str, ...] = ()) -> bool:
    """The one "path or hub id" rule (``--data``, ``--model``, a recipe's data source): SPEC was meant as a local
    path, so a missing one is "not found" rather than a hub lookup, when it starts with ``/``, ``.`` or ``~``, ends in
    one of ``suffixes`` (any case), or is not shaped like a hub id (``org/name``)."""
    return (spec.startswith(("/", ".", "~")) or spec.lower().endswith(tuple(s.lower() for s in suffixes))
            or not HUB_ID.match(spec))


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
