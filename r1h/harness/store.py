"""A run directory: ``run.json`` (config fingerprint), append-only ``samples/NAME.jsonl``, ``results.json``.

Crash safety: each batch of sample lines goes to the file in one ``write()`` on an ``O_APPEND`` descriptor and is
fsynced before the next batch is generated, so ``kill -9`` loses at most the generations in flight. A torn last line
(a write cut short) is truncated away on resume; duplicate ``(id, sample_index)`` pairs keep the first line.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import RunError

SAMPLE_KEYS = (
    "id", "sample_index", "prompt", "completion", "extracted", "reward", "correct", "finish_reason", "num_tokens",
    "timed_out",
)


def _json_default(obj: Any) -> Any:
    """Non-JSON values in a record (a PIL image in a prompt, a Path) are stored as their text form."""
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return f"<{type(obj).__name__}>" if type(obj).__module__.startswith("PIL") else str(obj)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def config_diff(old: Any, new: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose values differ between two JSON-like configs."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        keys: list[str] = []
        for key in sorted(set(old) | set(new), key=str):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                keys.append(path)
            else:
                keys.extend(config_diff(old[key], new[key], path))
        return keys
    return [] if old == new else [prefix or "<config>"]


@dataclass
class LoadReport:
    """What resume found in one samples file."""

    lines: int = 0
    kept: int = 0
    duplicates: int = 0
    torn_bytes: int = 0


@dataclass
class SampleFile:
    """One benchmark's ``samples/NAME.jsonl``: the records already on disk, and appends."""

    path: Path
    records: list[dict[str, Any]] = field(default_factory=list)
    keys: set[tuple[str, int]] = field(default_factory=set)
    report: LoadReport = field(default_factory=LoadReport)

    def load(self) -> LoadReport:
        """Read existing lines: truncate a torn tail, skip duplicates, fail on a corrupt line in the middle."""
        self.records, self.keys, self.report = [], set(), LoadReport()
        if not self.path.exists():
            return self.report
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1  # bytes after the last newline are a torn write
        if end < len(data):
            self.report.torn_bytes = len(data) - end
            with open(self.path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        for lineno, raw in enumerate(data[:end].splitlines(), 1):
            if not raw.strip():
                continue
            self.report.lines += 1
            try:
                record = json.loads(raw)
                key = (str(record["id"]), int(record["sample_index"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise RunError(f"{self.path}:{lineno}: not a sample line ({type(exc).__name__}: {exc})") from exc
            if key in self.keys:
                self.report.duplicates += 1
                continue
            self.keys.add(key)
            self.records.append(record)
        self.report.kept = len(self.records)
        return self.report

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append new records (skipping keys already stored) with one write() and an fsync. Returns how many."""
        fresh: list[str] = []
        for record in records:
            key = (str(record["id"]), int(record["sample_index"]))
            if key in self.keys:
                continue
            self.keys.add(key)
            self.records.append(dict(record))
            fresh.append(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
        if not fresh:
            return 0
        # A lone surrogate (an OpenAI-style server can return "\ud800") cannot be UTF-8: write it as the JSON escape
        # it came as, which reads back as the same string.
        payload = "".join(fresh).encode("utf-8", errors="backslashreplace")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            view = memoryview(payload)
            while view:  # a regular file takes it in one call; loop only for a short write
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        return len(fresh)


class RunStore:
    """The run directory. ``open(config)`` writes or checks ``run.json``; other files hang off ``root``."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)

    @property
    def run_json(self) -> Path:
        return self.root / "run.json"

    @property
    def results_json(self) -> Path:
        return self.root / "results.json"

    @property
    def report_md(self) -> Path:
        return self.root / "report.md"

    @property
    def passk_png(self) -> Path:
        return self.root / "passk.png"

    def samples_path(self, benchmark: str) -> Path:
        return self.root / "samples" / f"{benchmark}.jsonl"

    def open(self, config: Mapping[str, Any]) -> bool:
        """Record ``config`` as this run's fingerprint, or check it against the stored one.

        Returns True when resuming an existing run. Raises :class:`RunError` naming the differing keys.
        """
        config = json.loads(json.dumps(config))  # normalise tuples, int keys ... as JSON would
        if self.run_json.exists():
            try:
                stored = json.loads(self.run_json.read_text(encoding="utf-8"))
            except ValueError as exc:
                raise RunError(f"{self.run_json}: unreadable run config ({exc})") from exc
            diff = config_diff(stored, config)
            if diff:
                raise RunError(
                    f"{self.root} holds a run with a different config ({', '.join(diff)}); "
                    "use another --output or the same flags to resume"
                )
            return True
        if self.root.exists() and (self.root / "samples").exists() and any((self.root / "samples").iterdir()):
            raise RunError(f"{self.root} has samples but no run.json; refusing to mix runs (use another --output)")
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write(self.run_json, json.dumps(config, indent=2, sort_keys=True) + "\n")
        return False

    def samples(self, benchmark: str) -> SampleFile:
        """The benchmark's samples file, loaded (torn tail dropped, duplicates skipped)."""
        sample_file = SampleFile(self.samples_path(benchmark))
        sample_file.load()
        return sample_file

    def write_results(self, results: Mapping[str, Any]) -> None:
        _atomic_write(self.results_json, json.dumps(results, indent=2, ensure_ascii=False) + "\n")

    def read_results(self) -> dict[str, Any]:
        if not self.results_json.exists():
            raise RunError(f"{self.results_json} not found (is {self.root} a finished run?)")
        try:
            return json.loads(self.results_json.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise RunError(f"{self.results_json}: not valid JSON ({exc})") from exc
