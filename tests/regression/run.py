"""The regression job (``tox -e regression``): evaluate the project-written data in this folder with the
deterministic gold backend, then ``r1h check`` the run against ``baseline.json`` exactly (``--z 0 --two-sided``:
the gold backend is deterministic, so any move in either direction means grading or data loading changed).

    python tests/regression/run.py            # check (exit code 1 on a regression)
    python tests/regression/run.py --update   # re-record baseline.json on purpose (after reviewing the change)

No shell: every step is ``python -m r1h.harness.cli ...`` with a list of arguments.
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
    cmd = [sys.executable, "-m", "r1h.harness.cli", *args]
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
            return r1h("baseline", "update", str(run_dir), "--baseline", baseline, "--force")
        return r1h("check", str(run_dir), "--baseline", baseline, "--z", "0", "--two-sided")


if __name__ == "__main__":
    sys.exit(main())
