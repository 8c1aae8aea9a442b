"""Follow ``opts`` through the eval path: how often the walk comes back to a module it already left.

    python perf/opts_trace.py [--bench countdown] [--limit 4] [-n 2] [--verbose]

Runs ``run_eval`` (the gold backend, a fresh ``--output``) under ``sys.settrace`` on the main thread. A function is a
*stop* when it receives ``opts`` or an object derived from it: a value returned by a stop, the elements of a returned
list/tuple, or the ``self`` of a constructor that received one (``EvalOptions`` -> plans -> BenchPlan, GenerationConfig,
the backend holder, the session ...). Only functions of ``r1h`` count; each one once, in the order of its first call
(so the figure reads like following the code by hand, not like counting loop turns). Consecutive stops in one module
are one visit; ``returns`` = visits - distinct modules: the times the walk comes back to a module it already left.
Issue 19's target: at most 10.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

_SKIP = (str, bytes, int, float, bool, type(None), Path)


def walk(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bench", default="countdown")
    parser.add_argument("--limit", type=int, default=4)
    parser.add_argument("-n", type=int, default=2)
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)

    from r1h.harness.eval.plan import EvalOptions
    from r1h.harness.eval.runner import run_eval

    pkg = str(ROOT / "r1h")
    tracked: dict[int, object] = {}  # id -> object (held, so an id is never reused by another object)
    stops: list[tuple[str, str]] = []
    seen: set = set()

    def track(value: object) -> None:
        if isinstance(value, _SKIP) or id(value) in tracked:
            return
        tracked[id(value)] = value
        if isinstance(value, (list, tuple)):
            for item in value:
                track(item)

    def receives(frame) -> bool:
        code = frame.f_code
        names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
        for name in names:
            value = frame.f_locals.get(name)
            if id(value) in tracked:
                return True
            if isinstance(value, (list, tuple)) and any(id(v) in tracked for v in value):
                return True
        return False

    def on_return(frame, event, arg):
        if event == "return":
            track(arg)
            if frame.f_code.co_name == "__init__":
                track(frame.f_locals.get("self"))
        return on_return

    def tracer(frame, event, arg):
        if event != "call":
            return None
        code = frame.f_code
        if not code.co_filename.startswith(pkg) or code.co_name.startswith("<") or not receives(frame):
            return None
        if code not in seen:
            seen.add(code)
            stops.append((str(Path(code.co_filename).relative_to(ROOT)), code.co_qualname))
        return on_return

    with tempfile.TemporaryDirectory() as tmp:
        opts = EvalOptions(bench=args.bench, backend="gold", limit=args.limit, n=args.n, output=str(Path(tmp) / "run"),
                           progress=False)
        track(opts)
        sys.settrace(tracer)
        try:
            run_eval(opts)
        finally:
            sys.settrace(None)

    visits: list[str] = []
    for module, _ in stops:
        if not visits or visits[-1] != module:
            visits.append(module)
    per_module = Counter(visits)
    out = {"stops": len(stops), "modules": len(per_module), "visits": len(visits),
           "returns": len(visits) - len(per_module), "per_module": dict(per_module.most_common())}
    if args.verbose:
        for module, name in stops:
            print(f"  {module}: {name}")
    return out


def main() -> None:
    out = walk()
    print(f"opts: {out['stops']} stops in {out['modules']} modules, {out['visits']} visits, "
          f"{out['returns']} returns to a module already left")
    print("visits per module: " + ", ".join(f"{m} {c}" for m, c in out["per_module"].items()))


if __name__ == "__main__":
    main()
