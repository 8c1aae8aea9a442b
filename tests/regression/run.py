"""The regression job (``tox -e regression``), two deterministic runs on the project-written data in this folder:

1. the gold backend, checked with ``r1h check`` against ``baseline.json`` exactly (``--z 0 --two-sided``: any move
   in either direction means grading or data loading changed);
2. a seeded transformers run of a tiny 2-layer Qwen2 built from a config (seed 0, sampled at T=0.6), checked against
   ``baseline-tiny.json`` the same way, and its completions against the digest in ``tiny-completions.json``: a
   change to prompt rendering, per-sample seeding or sampling changes the digest even where the scores stay 0.

    python tests/regression/run.py            # check (exit code 1 on a regression)
    python tests/regression/run.py --update   # re-record baseline.json on purpose (after reviewing the change)

No shell: every step is ``python -m r1h.harness.cli.main ...`` with a list of arguments.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHMARKS = ("math500", "aime24", "countdown", "gpqa_diamond")


def r1h(*args: str) -> int:
    cmd = [sys.executable, "-m", "r1h.harness.cli.main", *args]
    print("+ r1h " + " ".join(args), flush=True)
    return subprocess.run(cmd, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--update", action="store_true", help="rewrite baseline.json from this run")
    parser.add_argument("--keep", metavar="DIR", help="write the run here (kept) instead of a temporary folder")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="r1h-regression-") as tmp:
        run_dir = Path(args.keep) if args.keep else Path(tmp) / "run"
        data = [arg for bench in BENCHMARKS for arg in ("--data", f"{bench}={HERE / (bench + '.jsonl')}")]
        code = r1h("eval", "--backend", "gold", "--bench", ",".join(BENCHMARKS), *data, "--output", str(run_dir),
                   "--no-progress")
        if code != 0:
            print(f"regression: r1h eval failed with exit code {code}", file=sys.stderr)
            return code
        baseline = str(HERE / "baseline.json")
        if args.update:
            code = r1h("baseline", "update", str(run_dir), "--baseline", baseline, "--force")
        else:
            code = r1h("check", str(run_dir), "--baseline", baseline, "--z", "0", "--two-sided")
        if code != 0:
            return code
        return tiny_model_job(Path(tmp), update=args.update)


TINY_BENCHMARKS = ("countdown", "math500")


def completions_digest(run_dir: Path) -> dict[str, object]:
    """sha256 over (benchmark, id, sample_index, completion) in a fixed order."""
    import hashlib
    import json

    lines = []
    for bench in TINY_BENCHMARKS:
        for raw in (run_dir / "samples" / f"{bench}.jsonl").read_text(encoding="utf-8").splitlines():
            rec = json.loads(raw)
            lines.append(json.dumps([bench, rec["id"], rec["sample_index"], rec["completion"]]))
    lines.sort()
    return {"samples": len(lines), "sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest()}


def tiny_model_job(tmp: Path, update: bool) -> int:
    import json

    from r1h.trainers.tiny import build_text_model

    model = build_text_model(tmp / "tiny-qwen2", seed=0)
    run_dir = tmp / "tiny-run"
    data = [arg for bench in TINY_BENCHMARKS for arg in ("--data", f"{bench}={HERE / (bench + '.jsonl')}")]
    code = r1h("eval", "--model", str(model), "--bench", ",".join(TINY_BENCHMARKS), *data, "-n", "2",
               "--temperature", "0.6", "--max-tokens", "12", "--seed", "0", "--backend-arg", "threads=1",
               "--output", str(run_dir), "--no-progress")
    if code != 0:
        print(f"regression: tiny-model r1h eval failed with exit code {code}", file=sys.stderr)
        return code
    baseline, digest_file = str(HERE / "baseline-tiny.json"), HERE / "tiny-completions.json"
    digest = completions_digest(run_dir)
    if update:
        digest_file.write_text(json.dumps(digest, indent=2) + "\n", encoding="utf-8")
        return r1h("baseline", "update", str(run_dir), "--baseline", baseline, "--force")
    code = r1h("check", str(run_dir), "--baseline", baseline, "--z", "0", "--two-sided")
    expected = json.loads(digest_file.read_text(encoding="utf-8"))
    if digest != expected:
        print(f"regression: tiny-model completions changed: {digest} != {expected} (prompt rendering, seeding or "
              "sampling moved; if on purpose: python tests/regression/run.py --update)", file=sys.stderr)
        return 1
    print(f"regression: tiny-model completions unchanged ({digest['samples']} samples)")
    return code


if __name__ == "__main__":
    sys.exit(main())
