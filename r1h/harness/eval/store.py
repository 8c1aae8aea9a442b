"""A run directory: ``run.json`` (config fingerprint), append-only ``samples/NAME.jsonl``, ``results.json``.

Crash safety: each micro-batch of graded sample lines goes to the file in one ``write()`` on an ``O_APPEND``
descriptor and is fsynced, so ``kill -9`` loses at most the generations in flight. A torn last line (a write cut
short) is truncated away on resume; duplicate ``(id, sample_index)`` pairs keep the first valid line. A write that
fails (disk full) is cut back to the file's previous length, so the lines already on disk stay intact.

Memory: a :class:`SampleFile` holds only the stored keys and a few counters; records are re-read from disk
(:meth:`SampleFile.iter_records`) when results are aggregated, so a 100k-sample run never holds every completion.

Validation on resume: with a ``schema`` (``r1h eval`` passes :data:`SAMPLE_SCHEMA`), every line's field types are
checked. A bad line is never trusted: it is left out of the keys, so its sample is **regenerated**, and the
reason is reported as ``samples/x.jsonl:12: reward is 'abc' (expected a number or null); regenerating it``.
Every I/O failure on the run directory is a one-line :class:`RunError` naming the path.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import RunError
from r1h.harness.data import jsonl

SAMPLE_KEYS = (
    "id", "sample_index", "prompt", "completion", "extracted", "reward", "correct", "finish_reason", "num_tokens",
    "timed_out",
)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


# field -> (check, what it should be, required)
SAMPLE_SCHEMA: dict[str, tuple[Callable[[Any], bool], str, bool]] = {
    "id": (lambda v: isinstance(v, str) or _is_int(v), "a string or integer", True),
    "sample_index": (lambda v: _is_int(v) and v >= 0, "an integer >= 0", True),
    "completion": (lambda v: isinstance(v, str), "a string", True),
    "reward": (lambda v: v is None or _is_number(v), "a number or null", True),
    "correct": (lambda v: isinstance(v, bool), "true or false", True),
    "extracted": (lambda v: v is None or isinstance(v, str), "a string or null", False),
    "finish_reason": (lambda v: isinstance(v, str), "a string", True),
    "num_tokens": (lambda v: _is_int(v) and v >= 0, "an integer >= 0", True),
    "timed_out": (lambda v: isinstance(v, bool), "true or false", False),
    "think_tokens": (lambda v: v is None or (_is_int(v) and v >= 0), "an integer >= 0 or null", False),
    "answer_tokens": (lambda v: v is None or (_is_int(v) and v >= 0), "an integer >= 0 or null", False),
    "think_closed": (lambda v: v is None or isinstance(v, bool), "true, false or null", False),
    "seed": (lambda v: v is None or _is_int(v), "an integer", False),
    "error": (lambda v: v is None or isinstance(v, str), "a string", False),
}
# The key fields alone: any samples file (``r1h distill`` traces too) needs these.
KEY_SCHEMA = {k: SAMPLE_SCHEMA[k] for k in ("id", "sample_index")}


def check_record(record: Any, schema: Mapping[str, tuple[Callable[[Any], bool], str, bool]]) -> str | None:
    """Why ``record`` does not fit ``schema`` (one phrase), or None."""
    if not isinstance(record, dict):
        return f"is a JSON {type(record).__name__}, not an object"
    for name, (ok, what, required) in schema.items():
        if name not in record:
            if required:
                return f"has no {name!r}"
            continue
        value = record[name]
        if not ok(value):
            shown = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
            shown = shown if len(shown) <= 40 else shown[:37] + "..."
            return f"{name} is {shown} (expected {what})"
    return None


def _json_default(obj: Any) -> Any:
    """Non-JSON values in a record (a PIL image in a prompt, a Path) are stored as their text form."""
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    return f"<{type(obj).__name__}>" if type(obj).__module__.startswith("PIL") else str(obj)


def io_error(path: Any, exc: OSError, doing: str = "") -> RunError:
    """One line naming the path for an OSError (read-only, disk full, a directory, a symlink loop ...)."""
    reason = exc.strerror or type(exc).__name__
    return RunError(f"{path}: {doing + ': ' if doing else ''}{reason}")


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``, since 4.7)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # elsewhere: set and restore (not thread-safe, but only the mode bits are at stake)
    os.umask(mask)
    return mask


def atomic_write(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a unique temp file in the same directory, then rename it over ``path``.

    The file gets the mode ``open()`` would give it (0644 under umask 022), not mkstemp's private 0600, so a teammate
    or a CI uploader running as another user can read results.json and run.json like every other output."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.fchmod(fd, 0o666 & ~current_umask())
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        tmp = None
    except OSError as exc:
        raise io_error(path, exc, "cannot write") from exc
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass


_atomic_write = atomic_write  # the old private name


@dataclass
class LoadReport:
    """What resume found in one samples file. ``bad`` holds one message per distrusted line (regenerated)."""

    lines: int = 0
    kept: int = 0
    duplicates: int = 0
    torn_bytes: int = 0
    bad: list[str] = field(default_factory=list)


def _why(exc: Exception) -> str:
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


@dataclass
class SampleFile:
    """One benchmark's samples file: the keys already on disk (not the records), counters, and appends."""

    path: Path
    schema: Mapping[str, tuple[Callable[[Any], bool], str, bool]] = field(default_factory=lambda: KEY_SCHEMA)
    keys: set[tuple[str, int]] = field(default_factory=set)
    report: LoadReport = field(default_factory=LoadReport)
    correct: int = 0  # stored samples whose ``correct`` is true (for the running pass@1)

    def _scan(self) -> Iterator[jsonl.Line]:
        """Every line of the file, blank ones too, read lazily (:func:`r1h.harness.data.jsonl.scan`); none when the
        file does not exist yet."""
        try:
            yield from jsonl.scan(self.path, blank=True)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise io_error(self.path, exc, "cannot read") from exc

    def load(self) -> LoadReport:
        """Read existing lines: truncate a torn tail, skip duplicates, distrust (and regenerate) invalid lines."""
        self.keys, self.report, self.correct = set(), LoadReport(), 0
        bad: list[tuple[tuple[str, int] | None, str]] = []
        for line in self._scan():
            lineno, record = line.number, line.value
            if line.torn:  # bytes after the last newline are a torn write
                self._truncate_tail(len(line.raw))
                break
            if not line.raw.strip():
                continue
            self.report.lines += 1
            if line.error is not None:
                bad.append((None, f"{self.path}:{lineno}: not a JSON line ({_why(line.error)}); dropping it"))
                continue
            why = check_record(record, self.schema) or check_record(record, KEY_SCHEMA)
            key = None
            if isinstance(record, dict) and check_record(record, KEY_SCHEMA) is None:
                key = (str(record["id"]), int(record["sample_index"]))
            if why is not None:  # without a readable key there is nothing to regenerate: the line is dropped
                bad.append((key, f"{self.path}:{lineno}: {why}; {'regenerating' if key else 'dropping'} it"))
                continue
            if key in self.keys:
                self.report.duplicates += 1
                continue
            self.keys.add(key)
            self.correct += record.get("correct") is True
        # a bad line whose sample has a valid line elsewhere costs nothing; report the others
        self.report.bad = [msg for key, msg in bad if key is None or key not in self.keys]
        self.report.kept = len(self.keys)
        return self.report

    def _truncate_tail(self, torn: int) -> None:
        self.report.torn_bytes = torn
        try:
            with open(self.path, "r+b") as fh:
                fh.truncate(os.fstat(fh.fileno()).st_size - torn)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as exc:
            raise io_error(self.path, exc, "cannot truncate its torn last line") from exc

    def iter_records(self) -> Iterator[dict[str, Any]]:
        """The stored records, read from disk one line at a time: first valid line per key, bad lines skipped."""
        seen: set[tuple[str, int]] = set()
        for line in self._scan():
            if line.torn or line.error is not None or not line.raw.strip():
                continue
            record = line.value
            if check_record(record, self.schema) or check_record(record, KEY_SCHEMA):
                continue
            key = (str(record["id"]), int(record["sample_index"]))
            if key in seen:
                continue
            seen.add(key)
            yield record

    @property
    def records(self) -> list[dict[str, Any]]:
        """All stored records (reads the whole file; prefer :meth:`iter_records` for large runs)."""
        return list(self.iter_records())

    def append(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Append new records (skipping keys already stored) with one write() and an fsync. Returns how many.

        On a failed write the file is cut back to its previous length and a one-line RunError names the path."""
        fresh: list[str] = []
        new_keys: list[tuple[str, int]] = []
        correct = 0
        for record in records:
            key = (str(record["id"]), int(record["sample_index"]))
            if key in self.keys or key in new_keys:
                continue
            new_keys.append(key)
            correct += record.get("correct") is True
            fresh.append(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
        if not fresh:
            return 0
        # A lone surrogate (an OpenAI-style server can return "\ud800") cannot be UTF-8: write it as the JSON escape
        # it came as, which reads back as the same string.
        payload = "".join(fresh).encode("utf-8", errors="backslashreplace")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise io_error(self.path, exc, "cannot append") from exc
        try:
            size = os.fstat(fd).st_size
            try:
                view = memoryview(payload)
                while view:  # a regular file takes it in one call; loop only for a short write
                    written = os.write(fd, view)
                    view = view[written:]
                os.fsync(fd)
            except OSError as exc:
                try:
                    os.ftruncate(fd, size)  # leave only whole lines behind
                except OSError:
                    pass
                raise io_error(self.path, exc, "cannot append") from exc
        finally:
            os.close(fd)
        self.keys.update(new_keys)
        self.correct += correct
        return len(fresh)


RECORD_KEYS = ("stack",)  # written into run.json for the record; never part of the resume fingerprint


def stored_fingerprint(stored: Any) -> Any:
    """run.json without the ``RECORD_KEYS``: what a rerun is compared against."""
    return {k: v for k, v in stored.items() if k not in RECORD_KEYS} if isinstance(stored, dict) else stored


class RunStore:
    """The run directory and its files (run.json is written or checked by :func:`r1h.harness.eval.resume.open_run`)."""

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

    @property
    def budget_png(self) -> Path:
        return self.root / "budget.png"

    @property
    def log_path(self) -> Path:
        return self.root / "eval.log"

    def samples_path(self, benchmark: str, suffix: str = "") -> Path:
        return self.root / "samples" / f"{benchmark}{suffix}.jsonl"

    def foreign_entries(self) -> list[str]:
        """What an existing folder without run.json holds besides what ``r1h eval`` itself makes before run.json
        (``samples/``, the lock files, ``eval.log``): a non-empty answer means it is not an r1h run."""
        try:
            if not self.root.is_dir() or self.run_json.exists():
                return []
            names = sorted(p.name for p in self.root.iterdir())
        except OSError as exc:
            raise io_error(self.root, exc, "cannot list") from exc
        return [n for n in names if n not in ("samples", "eval.log") and not n.startswith(".lock")]

    def discard_unstarted(self, created: bool) -> None:
        """Undo a run that stopped before it wrote run.json: remove the empty ``samples/``, the lock files and, when
        this run ``created`` the folder, the folder itself once empty. A folder holding a run.json is a run: kept."""
        try:
            if self.run_json.exists():
                return
            samples = self.root / "samples"
            if samples.is_dir() and not any(samples.iterdir()):
                samples.rmdir()
            for lock in self.root.glob(".lock*"):
                lock.unlink(missing_ok=True)
            if created and not any(self.root.iterdir()):
                self.root.rmdir()
        except OSError:
            pass  # best effort: the error that stopped the run is what the user must see

    def ensure_root(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / "samples").mkdir(exist_ok=True)
        except OSError as exc:
            raise io_error(self.root, exc, "cannot create the run directory") from exc

    def read_config(self) -> dict[str, Any]:
        """run.json's fingerprint (without the ``RECORD_KEYS`` kept for the record)."""
        try:
            return stored_fingerprint(json.loads(self.run_json.read_text(encoding="utf-8")))
        except FileNotFoundError:
            raise RunError(f"{self.run_json} not found (is {self.root} an r1h eval run?)") from None
        except OSError as exc:
            raise io_error(self.run_json, exc, "cannot read") from exc
        except ValueError as exc:
            raise RunError(f"{self.run_json}: unreadable run config ({exc})") from exc

    def samples(self, benchmark: str, suffix: str = "", schema: Mapping | None = None) -> SampleFile:
        """The benchmark's samples file, loaded (torn tail dropped, duplicates skipped, bad lines distrusted)."""
        sample_file = SampleFile(self.samples_path(benchmark, suffix), schema=schema or KEY_SCHEMA)
        sample_file.load()
        return sample_file

    def write_json(self, path: Path, results: Mapping[str, Any]) -> None:
        atomic_write(path, json.dumps(results, indent=2, ensure_ascii=False) + "\n")

    def write_results(self, results: Mapping[str, Any]) -> None:
        self.write_json(self.results_json, results)

    def read_results(self) -> dict[str, Any]:
        if not self.results_json.exists():
            raise RunError(f"{self.results_json} not found (is {self.root} a finished run?)")
        try:
            return json.loads(self.results_json.read_text(encoding="utf-8"))
        except OSError as exc:
            raise io_error(self.results_json, exc, "cannot read") from exc
        except ValueError as exc:
            raise RunError(f"{self.results_json}: not valid JSON ({exc})") from exc
