"""Generation at engine speed? Wall time / the engine's ideal time, against simulated continuous-batching engines.

Two engines with the same scheduler (tests/fakes/vllm/sim.py: ``--slots`` sequences, one token per ``--step-ms``,
a finished slot refilled at the next step), output lengths drawn from the Sky-T1 traces in
``../shared/refdata/labeled_outputs`` (characters / 4 = tokens, divided by ``--scale`` so a run takes seconds):

- ``perf/simserver.py`` as a subprocess: an OpenAI-compatible server, for ``--backend openai``;
- the fake ``vllm`` package (tests/fakes/vllm), in process, for ``--backend vllm``.

The ideal time is the number of steps the same scheduler needs with every request present at t=0, times the step.
Ratios, per backend:

- ``default``: ``backend.stream(all requests)`` with default flags (backend level);
- ``chunked``: the old lock-step behaviour, ``generate`` on chunks of 32 samples (``stream_from_generate``), and for
  openai the old ``concurrency=8``. Run on ``--chunked-samples`` samples (it is slow by design);
- ``e2e`` (``--e2e``): ``r1h eval`` end to end in a subprocess on a MATH-500-shaped file (500 problems x n=4, the
  issue's shape), runner, grading and report included: ``--backend openai --base-url URL`` against simserver, and
  ``--backend vllm`` with the fake vllm package on its PYTHONPATH. Wall time of the whole command (interpreter
  start-up included), and the engine-side busy span.

openai only: ``--replicas N`` starts N simservers (one engine each; the ideal time is the slowest replica's, for the
lengths it was sent) and ``--concurrency`` sets the requests in flight per replica (256). ``--scale 24`` gives
Countdown-length answers (mean 65 tokens) where the default 4 gives R1-length ones (mean 392). The client's CPU per
request (default mode) and the ``r1h eval`` process's CPU (e2e, ``getrusage``) are printed with each row.

Usage: ``python perf/stream_sim.py`` (both backends, default and chunked), ``--e2e`` to add the end-to-end mode,
``--only-e2e`` for the end-to-end mode alone.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FAKES = REPO / "tests" / "fakes"
sys.path.insert(0, str(FAKES))
sys.path.insert(0, str(REPO))

from vllm.sim import ideal_steps, output_length  # noqa: E402

from r1h.harness.core.backend import stream_from_generate  # noqa: E402
from r1h.harness.core.types import GenerationConfig, GenerationRequest, sample_seed  # noqa: E402

REFDATA = Path(os.environ.get("R1H_REFDATA") or next(
    (p for p in (REPO.parent / "shared" / "refdata", REPO.parents[1] / "shared" / "refdata") if p.is_dir()),
    REPO.parent / "shared" / "refdata"))


def sky_t1(scale: float) -> tuple[list[str], list[int]]:
    files = sorted((REFDATA / "labeled_outputs").glob("*Sky-T1*.jsonl"))
    if not files:
        raise SystemExit(f"no Sky-T1 traces under {REFDATA / 'labeled_outputs'}")
    questions, lengths = [], []
    with open(files[0], encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            code = row.get("code") or [""]
            text = "".join(code) if isinstance(code, list) else str(code)
            questions.append(str(row.get("question", "")))
            lengths.append(max(1, round(len(text) / 4 / scale)))
    return questions, lengths


def make_requests(questions: list[str], problems: int, n: int) -> list[GenerationRequest]:
    out = []
    for i in range(problems):
        q = questions[i % len(questions)]
        pid = f"p{i}"
        seeds = [sample_seed(0, pid, s) for s in range(n)]
        out.append(GenerationRequest(pid, [{"role": "user", "content": f"{q} [{i}]"}], list(range(n)), seeds))
    return out


def ideal_s(requests, lengths, slots, step_s, key, max_tokens) -> float:
    seq = [min(output_length(key(r, seed), lengths), max_tokens) for r in requests for seed in r.seeds]
    return ideal_steps(seq, slots) * step_s


def start_servers(args, lengths_file: str) -> tuple[list[subprocess.Popen], list[str]]:
    """``--replicas`` simservers, each its own process (engine) on its own port."""
    procs, urls = [], []
    try:
        for _ in range(args.replicas):
            proc = subprocess.Popen(
                [sys.executable, str(REPO / "perf" / "simserver.py"), "--slots", str(args.slots), "--step-ms",
                 str(args.step_ms), "--lengths", lengths_file], stdout=subprocess.PIPE, text=True)
            procs.append(proc)
            line = proc.stdout.readline()
            if "listening on" not in line:
                raise SystemExit(f"simserver did not start: {line!r}")
            urls.append(line.split("listening on ")[1].split()[0])
    except BaseException:
        stop_servers(procs)
        raise
    return procs, urls


def stop_servers(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        proc.terminate()
    for proc in procs:
        proc.wait(timeout=10)


def server_stats(url: str) -> dict:
    with urllib.request.urlopen(f"{url}/stats", timeout=10) as resp:  # noqa: S310 - loopback
        return json.loads(resp.read())


def replicas_stats(urls: list[str], args) -> dict:
    """The servers' figures together: the ideal time is the slowest replica's, for the lengths it was sent."""
    each = [server_stats(url) for url in urls]
    return {"lengths": [n for s in each for n in s["lengths"]], "cpu_s": sum(s["cpu_s"] for s in each),
            "span_s": max(s["span_s"] for s in each), "max_running": max(s["max_running"] for s in each),
            "ideal": max(ideal_steps(s["lengths"], args.slots) for s in each) * args.step_ms / 1000}


def timed(stream) -> tuple[float, int]:
    start = time.monotonic()
    count = sum(1 for _ in stream)
    return time.monotonic() - start, count


def run_openai(args, requests, chunked, lengths, lengths_file) -> dict:
    from r1h.plugins.backends.openai import OpenAIBackend

    procs, urls = start_servers(args, lengths_file)
    try:
        extra = {"concurrency": "8" if chunked else str(args.concurrency)}
        backend = OpenAIBackend(None, base_url=",".join(urls), **extra)
        config = GenerationConfig(temperature=0.6, max_tokens=args.max_tokens)
        chunk = max(1, 32 // len(requests[0].seeds))  # 32 samples per generate call, as --batch-size 32 did
        stream = stream_from_generate(backend, requests, config, chunk) if chunked else backend.stream(
            iter(requests), config)
        cpu, server_cpu = time.process_time(), replicas_stats(urls, args)["cpu_s"]
        wall, count = timed(stream)
        cpu = time.process_time() - cpu
        backend.close()
        stats = replicas_stats(urls, args)
    finally:
        stop_servers(procs)
    return {"wall": wall, "ideal": stats["ideal"], "samples": count, "max_running": stats["max_running"],
            "cpu": f"client {cpu / count * 1000:.2f} / server {(stats['cpu_s'] - server_cpu) / count * 1000:.2f} ms per "
                   f"request"}


def run_vllm(args, requests, chunked, lengths, lengths_file) -> dict:
    os.environ.update(FAKE_VLLM_SLOTS=str(args.slots), FAKE_VLLM_STEP_S=str(args.step_ms / 1000),
                      FAKE_VLLM_LENGTHS=lengths_file)
    import vllm

    from r1h.plugins.backends.vllm import VLLMBackend

    backend = VLLMBackend("sim/model", max_num_seqs=str(args.slots))
    config = GenerationConfig(temperature=0.6, max_tokens=args.max_tokens)
    backend.load()
    chunk = max(1, 32 // len(requests[0].seeds))  # 32 samples per generate call, as --batch-size 32 did
    stream = stream_from_generate(backend, requests, config, chunk) if chunked else backend.stream(iter(requests),
                                                                                                   config)
    wall, count = timed(stream)
    engine = vllm.created[-1].engines[0]
    seq = [engine_len for _, engine_len in engine_lengths(engine)]
    backend.close()
    ideal = ideal_steps(seq, args.slots) * args.step_ms / 1000
    return {"wall": wall, "ideal": ideal, "samples": count, "max_running": engine.engine.max_running}


def engine_lengths(engine):
    """(request id, output length) in the order the fake engine received them, for the ideal time."""
    return [(rid, engine.lengths_seen[rid]) for rid, _ in engine.added]


def run_e2e(args, questions, lengths_file, backend: str) -> dict:
    """``r1h eval`` end to end in a subprocess: against simserver (openai), or with the fake vllm package on its
    PYTHONPATH (vllm), which writes the lengths it saw and its busy span to FAKE_VLLM_STATS at exit."""
    procs, urls = start_servers(args, lengths_file) if backend == "openai" else ([], [])
    try:
        with tempfile.TemporaryDirectory() as tmp:
            data = Path(tmp) / "math500.jsonl"
            with open(data, "w", encoding="utf-8") as fh:
                for i in range(args.problems):
                    fh.write(json.dumps({"unique_id": f"sim/{i}", "problem": f"{questions[i % len(questions)]} [{i}]",
                                         "answer": "0"}) + "\n")
            cmd = [sys.executable, "-m", "r1h.harness.cli.main", "eval", "--backend", backend, "--bench", "math500",
                   "--data", f"math500={data}", "-n", str(args.n), "--max-tokens", str(args.max_tokens), "--output",
                   str(Path(tmp) / "run"), "--no-progress"]
            env = dict(os.environ)
            stats_file = Path(tmp) / "engine_stats.json"
            if backend == "openai":
                cmd += ["--base-url", ",".join(urls), "--backend-arg", f"concurrency={args.concurrency}"]
            else:
                cmd += ["--model", "sim/model"]
                env.update(PYTHONPATH=os.pathsep.join([str(FAKES), str(REPO)]), FAKE_VLLM_SLOTS=str(args.slots),
                           FAKE_VLLM_STEP_S=str(args.step_ms / 1000), FAKE_VLLM_LENGTHS=lengths_file,
                           FAKE_VLLM_STATS=str(stats_file))
            start, before = time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, cwd=REPO, env=env)
            wall, after = time.monotonic() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
            if done.returncode != 0:
                raise SystemExit(f"r1h eval failed ({done.returncode}): {done.stderr[-2000:]}")
            stats = replicas_stats(urls, args) if backend == "openai" else json.loads(stats_file.read_text())
    finally:
        stop_servers(procs)
    ideal = stats.get("ideal") or ideal_steps(stats["lengths"], args.slots) * args.step_ms / 1000
    return {"wall": wall, "ideal": ideal, "samples": len(stats["lengths"]), "server_span": stats["span_s"],
            "max_running": stats["max_running"], "cpu": f"r1h eval process {cpu:.2f} s"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=["openai", "vllm", "both"], default="both")
    parser.add_argument("--slots", type=int, default=128)
    parser.add_argument("--step-ms", type=float, default=2.0)
    parser.add_argument("--scale", type=float, default=4.0, help="divide the traces' token counts by this")
    parser.add_argument("--problems", type=int, default=500, help="the issue's shape: MATH-500 x n=4")
    parser.add_argument("-n", type=int, default=4)
    parser.add_argument("--chunked-samples", type=int, default=256)
    parser.add_argument("--max-tokens", type=int, default=32768)
    parser.add_argument("--replicas", type=int, default=1, help="openai: this many simservers (--base-url a,b,..)")
    parser.add_argument("--concurrency", type=int, default=256, help="openai: requests in flight per replica")
    parser.add_argument("--no-chunked", action="store_true")
    parser.add_argument("--e2e", action="store_true", help="also r1h eval end to end, in a subprocess")
    parser.add_argument("--only-e2e", action="store_true", help="r1h eval end to end only")
    args = parser.parse_args()

    questions, lengths = sky_t1(args.scale)
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(lengths, fh)
        lengths_file = fh.name
    requests = make_requests(questions, args.problems, args.n)
    chunk_requests = make_requests(questions, max(1, args.chunked_samples // args.n), args.n)
    mean = sum(lengths) / len(lengths)
    print(f"engine: {args.slots} slots, {args.step_ms} ms/step; Sky-T1 lengths / {args.scale:g}: mean {mean:.0f}, "
          f"max {max(lengths)} tokens; {args.problems} problems x n={args.n}; openai: {args.replicas} replica(s) x "
          f"{args.concurrency} in flight")
    rows = []
    backends = ["openai", "vllm"] if args.backend == "both" else [args.backend]
    for name in backends if not args.only_e2e else []:
        runner = run_openai if name == "openai" else run_vllm
        rows.append((name, "default", runner(args, requests, False, lengths, lengths_file)))
        if not args.no_chunked:
            rows.append((name, "chunked (old: 32/chunk" + (", concurrency 8)" if name == "openai" else ")"),
                         runner(args, chunk_requests, True, lengths, lengths_file)))
    if args.e2e or args.only_e2e:
        for name in backends:
            rows.append((name, "e2e: r1h eval", run_e2e(args, questions, lengths_file, name)))
    print(f"{'backend':8} {'mode':38} {'samples':>7} {'wall s':>8} {'ideal s':>8} {'ratio':>6} {'max running':>11}")
    for name, mode, r in rows:
        print(f"{name:8} {mode:38} {r['samples']:>7} {r['wall']:>8.2f} {r['ideal']:>8.2f} "
              f"{r['wall'] / r['ideal']:>5.2f}x {r['max_running']:>11}"
              + (f"  (engine busy {r['server_span']:.2f} s)" if "server_span" in r else "")
              + (f"  cpu: {r['cpu']}" if "cpu" in r else ""))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    os.unlink(lengths_file)


if __name__ == "__main__":
    main()
