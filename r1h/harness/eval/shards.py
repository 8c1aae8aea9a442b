"""Scale-out over machines: ``r1h eval --shard I/N`` runs a deterministic 1/N of the (problem, sample) pairs.

A pair belongs to shard ``sha256("id:sample_index") mod N`` (stable across machines and Python versions, unlike
``hash()``). Shard I writes ``samples/NAME.shard-I-of-N.jsonl`` in the shared ``--output``; ``run.json`` is the same
for every shard. A run without ``--shard`` (or ``r1h eval --merge``) first folds every shard file into
``samples/NAME.jsonl`` by ``(id, sample_index)`` (no duplicates; :func:`r1h.harness.eval.resume.fold_shards`), then
generates only what is still missing.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from r1h.harness.core.errors import ConfigError

SHARD_FILE = re.compile(r"^(?P<bench>.+)\.shard-(?P<i>\d+)-of-(?P<n>\d+)\.jsonl$")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int

    @property
    def label(self) -> str:
        return f"shard-{self.index}-of-{self.count}"

    @property
    def suffix(self) -> str:
        return f".{self.label}"

    def owns(self, problem_id: str, sample_index: int) -> bool:
        return shard_of(problem_id, sample_index, self.count) == self.index


def shard_of(problem_id: str, sample_index: int, count: int) -> int:
    digest = hashlib.sha256(f"{problem_id}:{sample_index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") % count


def parse_shard(spec: str | None) -> Shard | None:
    """``"I/N"`` with 0 <= I < N (SLURM's 0-based ``$SLURM_ARRAY_TASK_ID``), or a one-line ConfigError."""
    if spec is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(spec))
    if not m:
        raise ConfigError(f"--shard {spec!r}: expected I/N, e.g. --shard 0/8")
    index, count = int(m.group(1)), int(m.group(2))
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard {spec}: I must be in 0..N-1 (N >= 1)")
    return Shard(index, count)


def shard_files(samples_dir: Path, bench: str) -> list[Path]:
    """The shard files of one benchmark, in (N, I) order."""
    found = []
    try:
        entries = list(samples_dir.iterdir()) if samples_dir.is_dir() else []
    except OSError:
        entries = []
    for path in entries:
        m = SHARD_FILE.match(path.name)
        if m and m.group("bench") == bench:
            found.append((int(m.group("n")), int(m.group("i")), path))
    return [p for _, _, p in sorted(found)]


def shard_summaries(root: Path) -> list[dict]:
    """The ``results.shard-I-of-N.json`` summaries in a run directory (model id and engine for ``--merge``)."""
    import json

    out = []
    for path in sorted(Path(root).glob("results.shard-*-of-*.json")):
        try:
            out.append(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            continue
    return out
