"""``r1h eval --backend vllm`` against the plain script a user would write, on the same prompts, sampling and seeds.

    python perf/vllm_offline.py [--problems 32] [-n 4] [--max-tokens 256] [--rounds 2] [--compiled]
    python perf/vllm_offline.py --transformers [--problems 8 -n 2]     # the transformers backend beside it

Run it with the Python of an environment that has vLLM (``tox -e vllm --notest`` builds one: ``.tox/vllm/bin/python``).
Per round, each in its own process, alternating so that other load hits both alike:

- plain: ``LLM(...)`` with the engine settings r1h chooses on this platform, then one ``LLM.chat`` call with every
  request at once (one ``SamplingParams(seed=...)`` per sample, r1h's per-sample seeds, the Countdown prefill with
  ``continue_final_message=True``);
- r1h: ``r1h eval --backend vllm --bench countdown`` with the same numbers.

It prints generation tok/s (the plain script's ``chat`` call; r1h's span from "model ready" to the last sample in
eval.log, 1 s resolution), the whole process's wall time, their ratios (the goals: r1h tok/s >= 0.95x, wall <= 1.10x)
and how many of the samples have the same text in both. ``--transformers`` adds ``r1h eval`` on the transformers
backend (the CPU guidance in the README).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MARK = "r1h-perf-result "  # vLLM logs to stdout too


def build(problems: int, n: int, seed: int = 0):
    """The Countdown conversations and per-sample seeds r1h sends."""
    import r1h
    from r1h.harness.core.types import sample_seed

    bench = r1h.get_benchmark("countdown")
    samples = bench.load(None, limit=problems)
    return [(s.id, i, bench.prompt(s), sample_seed(seed, s.id, i)) for s in samples for i in range(n)]


def plain(args) -> None:
    """The user's script (run in its own process by ``main``); prints one JSON line."""
    start = time.monotonic()
    from vllm import LLM, SamplingParams

    from r1h.plugins.backends.models import default_gguf
    from r1h.plugins.backends.vllm_model import vllm_folder
    from r1h.plugins.backends.vllm_platform import cpu_defaults, is_cpu_platform

    model = str(vllm_folder(default_gguf()))
    kwargs = {"model": model, "enforce_eager": not args.compiled}
    if is_cpu_platform():
        kwargs.update(cpu_defaults(kwargs, 1)[0])
    llm = LLM(**kwargs)
    rows = build(args.problems, args.n)
    params = [SamplingParams(n=1, temperature=0.6, top_p=0.95, top_k=-1, min_p=0.0, repetition_penalty=1.0,
                             max_tokens=args.max_tokens, seed=seed) for *_, seed in rows]
    t0 = time.monotonic()
    outs = llm.chat([messages for _, _, messages, _ in rows], params, use_tqdm=False, add_generation_prompt=False,
                    continue_final_message=True)
    gen = time.monotonic() - t0
    texts = {f"{pid}|{i}": o.outputs[0].text for (pid, i, _, _), o in zip(rows, outs, strict=True)}
    tokens = sum(len(o.outputs[0].token_ids) for o in outs)
    print(MARK + json.dumps({"gen_s": gen, "tokens": tokens, "load_s": t0 - start, "texts": texts}), flush=True)


def _stamp(line: str) -> float:
    return datetime.fromisoformat(line.split(" ", 1)[0]).timestamp()


def run_r1h(args, out: Path, backend: str = "vllm", extra: tuple[str, ...] = ()) -> dict:
    """``r1h eval`` in its own process: wall time, generation span (eval.log), tokens and texts."""
    cmd = [sys.executable, "-m", "r1h.harness.cli.main", "eval", "--backend", backend, "--bench", "countdown",
           "--limit", str(args.problems), "-n", str(args.n), "--max-tokens", str(args.max_tokens),
           "--output", str(out), *extra]
    if backend == "vllm" and not args.compiled:
        cmd += ["--backend-arg", "enforce_eager=true"]
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=7200, cwd=REPO)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"r1h eval failed ({done.returncode}): {done.stderr[-2000:]}")
    log = (out / "eval.log").read_text().splitlines()
    # the engine is up at "model ready" (offline backends); a served model is up before r1h starts
    ready = next(_stamp(line) for line in log if "model ready" in line or "countdown:" in line)
    last = max(_stamp(line) for line in log if "countdown:" in line)
    records = [json.loads(line) for line in (out / "samples" / "countdown.jsonl").read_text().splitlines()]
    tokens = sum(int(r.get("num_tokens") or 0) for r in records)
    texts = {f"{r['id']}|{r['sample_index']}": r["completion"] for r in records}
    return {"wall": wall, "gen_s": max(last - ready, 1.0), "tokens": tokens, "texts": texts}


def run_plain(args) -> dict:
    cmd = [sys.executable, __file__, "--plain", "--problems", str(args.problems), "-n", str(args.n),
           "--max-tokens", str(args.max_tokens)] + (["--compiled"] if args.compiled else [])
    start = time.monotonic()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=7200, cwd=REPO)
    wall = time.monotonic() - start
    if done.returncode != 0:
        raise SystemExit(f"the plain script failed ({done.returncode}): {done.stderr[-2000:]}")
    result = json.loads(next(line for line in done.stdout.splitlines() if line.startswith(MARK))[len(MARK):])
    result["wall"] = wall
    return result


def job_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The job's shape, shared with perf/vllm_served.py."""
    parser.add_argument("--problems", type=int, default=32)
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("--max-tokens", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compiled", action="store_true", help="torch.compile (default: enforce_eager)")
    return parser


def main() -> None:
    parser = job_args(argparse.ArgumentParser(description=__doc__.split("\n")[0]))
    parser.add_argument("--transformers", action="store_true", help="also r1h eval on the transformers backend")
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.plain:
        plain(args)
        return
    print(f"countdown: {args.problems} problems x n={args.n}, {args.max_tokens} new tokens, "
          f"{'compiled' if args.compiled else 'enforce_eager'}")
    for round_ in range(1, args.rounds + 1):
        with tempfile.TemporaryDirectory() as tmp:
            order = ["plain", "r1h"] if round_ % 2 else ["r1h", "plain"]
            got = {}
            for name in order:
                got[name] = run_plain(args) if name == "plain" else run_r1h(args, Path(tmp) / "run")
            p, r = got["plain"], got["r1h"]
            p_rate, r_rate = p["tokens"] / p["gen_s"], r["tokens"] / r["gen_s"]
            same = sum(1 for k, v in p["texts"].items() if r["texts"].get(k) == v)
            print(f"round {round_} ({' then '.join(order)}): plain {p['tokens']} tokens in {p['gen_s']:.1f} s = "
                  f"{p_rate:.1f} tok/s, process {p['wall']:.1f} s; r1h {r['tokens']} tokens in {r['gen_s']:.0f} s = "
                  f"{r_rate:.1f} tok/s, process {r['wall']:.1f} s; tok/s ratio {r_rate / p_rate:.2f}x, wall ratio "
                  f"{r['wall'] / p['wall']:.2f}x; same text {same}/{len(p['texts'])}", flush=True)
            if args.transformers:
                t = run_r1h(args, Path(tmp) / "tf", backend="transformers")
                print(f"round {round_}: transformers backend {t['tokens']} tokens in {t['gen_s']:.0f} s = "
                      f"{t['tokens'] / t['gen_s']:.1f} tok/s, process {t['wall']:.1f} s", flush=True)


if __name__ == "__main__":
    main()
