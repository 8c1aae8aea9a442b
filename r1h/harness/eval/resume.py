"""Resume, in one place: rerunning the same command with the same ``--output`` generates only what is missing.

- :func:`open_run`: run.json is the run's fingerprint. A new run writes it; a rerun compares it and refuses a different
  config, naming the differing keys; samples without a run.json are never mixed in.
- :func:`resume_benchmark`: what one benchmark already has on disk. Its samples file is loaded (torn tail dropped,
  duplicates skipped, bad lines distrusted: :class:`~r1h.harness.eval.store.SampleFile`); a whole run first folds the
  shard files into it (:func:`fold_shards`), a shard also counts what the other shards stored. Then the
  ``(problem, sample)`` pairs still missing (:func:`missing_pairs`), only the shard's own with ``--shard``.

``r1h eval`` (:mod:`r1h.harness.eval.runner`) and ``r1h distill generate`` resume through these functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from r1h.harness.core.errors import RunError
from r1h.harness.core.types import Sample
from r1h.harness.eval.shards import shard_files
from r1h.harness.eval.store import (
    RECORD_KEYS,
    SAMPLE_SCHEMA,
    RunStore,
    SampleFile,
    atomic_write,
    io_error,
    stored_fingerprint,
)

FOLD_BATCH = 256  # records per append while folding shard files (bounded memory)


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


def open_run(store: RunStore, config: Mapping[str, Any], record: Mapping[str, Any] | None = None) -> bool:
    """Record ``config`` as the run's fingerprint in run.json, or check it against the stored one.

    ``record`` (keys in ``RECORD_KEYS``, e.g. the software stack) is written into a new run.json beside the
    fingerprint but never compared: a resumed run keeps the first run's record (results.json has the current one).
    Returns True when resuming an existing run. Raises :class:`RunError` naming the differing keys.
    """
    config = json.loads(json.dumps(config))  # normalise tuples, int keys ... as JSON would
    try:
        exists = store.run_json.exists()
        text = store.run_json.read_text(encoding="utf-8") if exists else None
    except OSError as exc:
        raise io_error(store.run_json, exc, "cannot read") from exc
    if text is not None:
        try:
            stored = stored_fingerprint(json.loads(text))
        except ValueError as exc:
            raise RunError(f"{store.run_json}: unreadable run config ({exc})") from exc
        diff = config_diff(stored, config)
        if diff:
            raise RunError(f"{store.root} holds a run with a different config ({', '.join(diff)}); "
                           "use another --output or the same flags to resume")
        return True
    samples = store.root / "samples"
    try:
        has_samples = samples.is_dir() and any(samples.iterdir())
    except OSError as exc:
        raise io_error(samples, exc, "cannot list") from exc
    if has_samples:
        raise RunError(f"{store.root} has samples but no run.json; refusing to mix runs (use another --output)")
    try:
        store.root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise io_error(store.root, exc, "cannot create the run directory") from exc
    extra = {k: v for k, v in (record or {}).items() if k in RECORD_KEYS}
    atomic_write(store.run_json, json.dumps({**config, **json.loads(json.dumps(extra, default=str))},
                                            indent=2, sort_keys=True) + "\n")
    return False


def missing_pairs(plan: Any, stored: Any, shard: Any = None) -> list[tuple[Sample, list[int]]]:
    """Per problem of ``plan``, the sample indices not on disk yet (only those of ``shard`` when given).
    ``stored``: a SampleFile or a set of keys."""
    keys = getattr(stored, "keys", stored)
    out = []
    for sample in plan.samples:
        wanted = [i for i in range(plan.generation.n) if (sample.id, i) not in keys
                  and (shard is None or shard.owns(sample.id, i))]
        if wanted:
            out.append((sample, wanted))
    return out


def fold_shards(store: RunStore, bench: str, target: SampleFile, schema: Mapping) -> tuple[int, list[str]]:
    """Append every record of the benchmark's shard files that ``target`` (a loaded SampleFile) lacks.

    Returns (records added, notes about torn or bad shard lines)."""
    added, notes = 0, []
    for path in shard_files(store.root / "samples", bench):
        part = SampleFile(path, schema=schema)
        report = part.load()
        notes.extend(report.bad)
        if report.torn_bytes:
            notes.append(f"{path}: dropped a torn last line ({report.torn_bytes} bytes)")
        batch = []
        for record in part.iter_records():
            if (str(record["id"]), int(record["sample_index"])) in target.keys:
                continue
            batch.append(record)
            if len(batch) >= FOLD_BATCH:
                added += target.append(batch)
                batch = []
        added += target.append(batch)
    return added, notes


def report_load(note: Callable[[str], Any], stored: SampleFile) -> None:
    """What loading a samples file dropped or distrusted, one note each."""
    report = stored.report
    if report.torn_bytes or report.duplicates:
        note(f"{stored.path.stem}: dropped a torn last line ({report.torn_bytes} bytes) and "
             f"{report.duplicates} duplicate line(s) from {stored.path}")
    for message in report.bad:
        note(message)


@dataclass
class BenchResume:
    """One benchmark at the start of its run: the file new samples go to, what is stored (``have``, every shard's
    with ``--shard``), the pairs this run owns and those of them still missing."""

    sink: SampleFile
    have: set[tuple[str, int]]
    owned: list[tuple[str, int]]
    pending: list[tuple[Sample, list[int]]]
    done: int  # owned pairs stored when the benchmark started

    def stored(self) -> int:
        """The owned pairs on disk now (after the stream wrote into ``sink``)."""
        return sum(1 for key in self.owned if key in self.sink.keys or key in self.have)


def resume_benchmark(store: RunStore, plan: Any, shard: Any, note: Callable[[str], Any]) -> BenchResume:
    """Load what ``plan``'s benchmark has on disk (a whole run folds the shard files in first) and what is missing."""
    main = store.samples(plan.name, schema=SAMPLE_SCHEMA)
    report_load(note, main)
    if shard is None:
        added, notes = fold_shards(store, plan.name, main, SAMPLE_SCHEMA)
        for line in notes:
            note(line)
        if added:
            note(f"{plan.name}: merged {added} samples from the shard files")
        sink, have = main, main.keys
    else:
        sink = store.samples(plan.name, shard.suffix, SAMPLE_SCHEMA)
        report_load(note, sink)
        have = set(main.keys) | sink.keys
        for path in shard_files(store.root / "samples", plan.name):
            if path != sink.path:
                other = SampleFile(path, schema=SAMPLE_SCHEMA)
                have |= {(str(r["id"]), int(r["sample_index"])) for r in other.iter_records()}
    owned = [(s.id, i) for s in plan.samples for i in range(plan.generation.n) if shard is None or shard.owns(s.id, i)]
    done = sum(1 for key in owned if key in have)
    return BenchResume(sink, have, owned, missing_pairs(plan, have, shard), done)
