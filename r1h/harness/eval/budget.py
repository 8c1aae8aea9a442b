"""Thinking-budget control: the s1 paper's *budget forcing* (Muennighoff et al. 2025, "s1: Simple test-time scaling"),
written once for every backend as two generation phases per sample.

- **Phase 1**: the sample's request as usual, with ``max_tokens`` = the budget B.
- If phase 1 ended on its own (end of turn or a stop string), that is the sample: nothing more.
- If it hit B **without** ``</think>``, the thinking is closed for it: phase 2 continues the same assistant turn from
  *phase-1 text + "\\n</think>" + answer cue* (``continue_final_message``), with ``max_tokens`` = the answer cap.
  This is the sample the run stores and grades (``forced`` true).
- If it hit B **after** ``</think>`` (the thinking closed but the answer was cut), phase 2 continues the phase-1 text
  as it is, with the answer cap (no cue: the model had started its answer).

s1's reference implementation (``simplescaling/s1``, ``eval/lm-evaluation-harness/lm_eval/models/vllm_causallms.py``,
``_model_generate``, lines 236-405 at commit 77272c6): phase 1 with ``max_tokens_thinking``; a phase-1 output with
``finish_reason == "length"`` gets a newline (unless it ends with one) and ``thinking_end + "\\nFinal Answer:"``
appended, otherwise ``thinking_end``; the answer is then generated from that prefix and the stored text is phase 1 +
what was appended + phase 2. r1h does the same on text, so the OpenAI API can do it too, with three differences:
phase 1 does not stop at ``</think>`` (backends report a stop-string hit differently: vLLM and OpenAI drop the string,
transformers keeps it, so a sample that closes its thinking within B writes its answer in the same request, and only
samples cut at B need a phase 2); the phase-2 prompt is the phase-1 *text* re-tokenized by the chat template, not the
token ids; and the answer cue is per benchmark (``Benchmark.answer_cue``, ``--answer-cue``).

**Seeds.** Phase 1 uses the sample's seed; phase 2 a seed derived from it (:func:`phase2_seed`), so a resumed run
regenerates the same text for both phases. A sample is stored only once both phases are done: a run killed between
the phases regenerates phase 1 on resume (same seed, same text).

**How phase 2 reaches the engine.** Every backend takes one ``GenerationConfig`` per stream, and ``max_tokens``
differs between the phases, so phase 2 is a second stream on the same backend:

- A backend that can serve two streams at once (``concurrent_streams = True``: vLLM's ``AsyncLLM``, an OpenAI
  server) gets the answer-phase stream in a thread of its own, fed each phase-2 request the moment its phase-1
  sample comes back: the engine batches both phases together and never waits for the harness.
- Any other backend (transformers' batches, a third-party ``generate``) gets the requests ``window`` problems at a
  time (:data:`WINDOW`): phase 1 of a window streams as the backend yields it, then phase 2 of that window's cut
  samples, so the engine idles at each window's end while its last phase-1 samples finish.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from typing import Any

from r1h.harness.core.backend import backend_stream
from r1h.harness.core.errors import FlagError, RunError
from r1h.harness.core.types import (
    Completion,
    Generated,
    GenerationConfig,
    GenerationRequest,
    content_text,
    sample_seed,
)
from r1h.harness.eval.thinking import THINK_CLOSE

DEFAULT_CUE = "\n\nFinal Answer:"  # s1's thinking_end_max (vllm_causallms.py line 254), after a blank line
DEFAULT_ANSWER_CAP = 512
WINDOW = 256  # problems whose phase 1 runs before their phase 2


@dataclass(frozen=True)
class ThinkingBudget:
    """``budget``: most thinking tokens (phase 1); ``answer_cap``: most tokens after a forced close (phase 2);
    ``cue``: the text written after ``</think>`` when the thinking is closed for the model."""

    budget: int
    answer_cap: int = DEFAULT_ANSWER_CAP
    cue: str = DEFAULT_CUE

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def parse_budgets(text: str | None) -> list[int]:
    """``--thinking-budget B`` or ``B1,B2,...`` (a sweep) into positive integers, in order, without duplicates."""
    if text is None:
        return []
    out: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            value = int(part)
        except ValueError:
            raise FlagError(f"--thinking-budget {text}: {part!r} is not a whole number of tokens") from None
        if value < 1:
            raise FlagError(f"--thinking-budget {text}: {value} must be >= 1 token")
        if value not in out:
            out.append(value)
    return out


def phase2_seed(seed: int) -> int:
    """The phase-2 seed of a sample, derived from its seed only (a resumed run draws the same)."""
    return sample_seed(int(seed), "thinking-budget:phase2", 0)


@dataclass
class BudgetCompletion(Completion):
    """A completion made in one or two phases; ``budget`` holds the per-sample record fields."""

    budget: dict[str, Any] = field(default_factory=dict)


def closing_text(text: str, cue: str) -> str:
    """What is written after a phase-1 text cut inside its thinking: a newline unless it ends with one (s1),
    ``</think>``, the cue."""
    return ("" if text.endswith("\n") else "\n") + THINK_CLOSE + cue


def continuation(g: Generated, budget: ThinkingBudget) -> tuple[GenerationRequest, str] | None:
    """The phase-2 request for a phase-1 sample, and the text written between the phases; None when the sample is
    finished (it did not hit the budget)."""
    first = g.completion
    if first.finish_reason != "length":
        return None
    text = first.text or ""
    injected = "" if THINK_CLOSE in text else closing_text(text, budget.cue)
    request = g.request
    messages = list(request.messages)
    prefill = text + injected
    if request.continue_final_message and messages:
        last = messages[-1]
        messages[-1] = {**last, "content": content_text(last.get("content", "")) + prefill}
    else:
        messages.append({"role": "assistant", "content": prefill})
    follow = GenerationRequest(id=request.id, messages=messages, sample_indices=[g.sample_index],
                               seeds=[phase2_seed(g.seed)], images=list(request.images), continue_final_message=True,
                               reference=request.reference)
    return follow, injected


def _fields(budget: ThinkingBudget, forced: bool, phases: int, first: int, second: int) -> dict[str, Any]:
    return {"thinking_budget": budget.budget, "forced": forced, "phases": phases, "phase1_tokens": first,
            "phase2_tokens": second}


def single(g: Generated, budget: ThinkingBudget) -> Generated:
    """A sample finished in phase 1."""
    c = g.completion
    done = BudgetCompletion(c.text, c.finish_reason, int(c.num_tokens or 0),
                            _fields(budget, False, 1, int(c.num_tokens or 0), 0))
    return Generated(g.request, g.sample_index, done)


def merged(first: Generated, second: Completion, injected: str, budget: ThinkingBudget) -> Generated:
    """Phase 1 + the text written between the phases + phase 2, as one sample of the original request."""
    n1, n2 = int(first.completion.num_tokens or 0), int(second.num_tokens or 0)
    done = BudgetCompletion((first.completion.text or "") + injected + (second.text or ""), second.finish_reason,
                            n1 + n2, _fields(budget, bool(injected), 2, n1, n2))
    return Generated(first.request, first.sample_index, done)


def record_fields(completion: Any) -> dict[str, Any]:
    """The per-sample record fields of a budget-forced completion ({} for a plain one): ``budget`` (the phases and
    their token counts) and, for a forced sample, the exact think / answer split (phase 1 / phase 2 tokens) and
    ``think_closed`` false (the ``</think>`` in its text is r1h's, not the model's)."""
    info = getattr(completion, "budget", None)
    if not isinstance(info, dict):
        return {}
    out: dict[str, Any] = {"budget": dict(info)}
    if info.get("forced"):
        out.update(think_tokens=info["phase1_tokens"], answer_tokens=info["phase2_tokens"], think_closed=False)
    return out


def budget_summary(budget: ThinkingBudget, records: list[dict[str, Any]]) -> dict[str, Any]:
    """results.json's per-benchmark ``thinking_budget``: the settings, the share of samples whose thinking was closed
    for them (``forced_rate``) and of those that needed an answer phase, and pass@1 on forced / unforced samples."""
    infos = [(r.get("budget") if isinstance(r.get("budget"), dict) else {}, bool(r.get("correct"))) for r in records]
    forced = [ok for info, ok in infos if info.get("forced")]
    unforced = [ok for info, ok in infos if not info.get("forced")]

    def rate(flags: list[bool]) -> float | None:
        return sum(flags) / len(flags) if flags else None

    return {**budget.to_dict(), "forced_rate": rate([bool(info.get("forced")) for info, _ in infos]),
            "answer_phase_rate": rate([int(info.get("phases") or 1) == 2 for info, _ in infos]),
            "pass@1_forced": rate(forced), "pass@1_unforced": rate(unforced)}


def budget_stream(backend: Any, requests: Iterable[GenerationRequest], config: GenerationConfig,
                  budget: ThinkingBudget, window: int = WINDOW) -> Iterator[Generated]:
    """Every wanted sample of ``requests`` with budget forcing, each yielded once both its phases are done."""
    first = dataclasses.replace(config, max_tokens=int(budget.budget))
    second = dataclasses.replace(config, max_tokens=int(budget.answer_cap))
    if getattr(backend, "concurrent_streams", False):
        return _concurrent(backend, requests, first, second, budget)
    return _windowed(backend, requests, first, second, budget, window)


def _key(g: Generated) -> tuple[str, int]:
    return str(g.request.id), int(g.sample_index)


def _check_finished(backend: Any, waiting: dict[tuple[str, int], Any]) -> None:
    """Every cut sample got its answer phase, or one line naming the backend."""
    if waiting:
        name = getattr(backend, "name", type(backend).__name__)
        raise RunError(f"backend {name!r} did not finish the answer phase of {len(waiting)} budget-forced samples")


def _windowed(backend: Any, requests: Iterable[GenerationRequest], first: GenerationConfig, second: GenerationConfig,
              budget: ThinkingBudget, window: int) -> Iterator[Generated]:
    it = iter(requests)
    while chunk := list(islice(it, max(1, int(window)))):
        waiting: dict[tuple[str, int], tuple[Generated, str]] = {}
        follow: list[GenerationRequest] = []
        with contextlib.closing(backend_stream(backend, chunk, first)) as stream:
            for g in stream:
                nxt = continuation(g, budget)
                if nxt is None:
                    yield single(g, budget)
                    continue
                waiting[_key(g)] = (g, nxt[1])
                follow.append(nxt[0])
        if not follow:
            continue
        with contextlib.closing(backend_stream(backend, follow, second)) as stream:
            for g in stream:
                got = waiting.pop(_key(g), None)
                if got is not None:  # a sample yielded twice: the first one counts (the pipeline's rule)
                    yield merged(got[0], g.completion, got[1], budget)
        _check_finished(backend, waiting)


_END = object()
POLL_S = 0.2


class _AnswerPhase(threading.Thread):
    """The answer-phase stream of a concurrent backend, in its own thread: requests come from ``inbox`` as phase-1
    samples finish (until ``_END``), finished samples go to ``outbox``, then ``("end", error or None)``."""

    def __init__(self, backend: Any, config: GenerationConfig):
        super().__init__(name="r1h-answer-phase", daemon=True)
        self.backend, self.config = backend, config
        self.inbox: queue.Queue = queue.Queue()
        self.outbox: queue.Queue = queue.Queue()
        self.stop = threading.Event()

    def requests(self) -> Iterator[GenerationRequest]:
        while not self.stop.is_set():
            try:
                item = self.inbox.get(timeout=POLL_S)
            except queue.Empty:
                continue
            if item is _END:
                return
            yield item

    def run(self) -> None:
        error: BaseException | None = None
        try:
            with contextlib.closing(backend_stream(self.backend, self.requests(), self.config)) as stream:
                for g in stream:
                    self.outbox.put(("sample", g))
                    if self.stop.is_set():
                        break  # closing the stream cancels what is in flight
        except BaseException as exc:  # handed to the caller's thread
            error = exc
        self.outbox.put(("end", error))


def _concurrent(backend: Any, requests: Iterable[GenerationRequest], first: GenerationConfig,
                second: GenerationConfig, budget: ThinkingBudget) -> Iterator[Generated]:
    waiting: dict[tuple[str, int], tuple[Generated, str]] = {}
    phase = _AnswerPhase(backend, second)
    ended = False

    def collect(block: bool) -> Iterator[Generated]:
        nonlocal ended
        while not ended:
            try:
                kind, item = phase.outbox.get(timeout=POLL_S) if block else phase.outbox.get_nowait()
            except queue.Empty:
                if block and not phase.is_alive() and phase.outbox.empty():
                    raise RunError("the answer-phase thread stopped unexpectedly") from None
                if block:
                    continue
                return
            if kind == "end":
                ended = True
                if item is not None:
                    raise item
                return
            got = waiting.pop(_key(item), None)
            if got is not None:
                yield merged(got[0], item.completion, got[1], budget)

    try:
        with contextlib.closing(backend_stream(backend, requests, first)) as stream:
            for g in stream:
                yield from collect(block=False)
                nxt = continuation(g, budget)
                if nxt is None:
                    yield single(g, budget)
                    continue
                waiting[_key(g)] = (g, nxt[1])
                if phase.ident is None:  # started with the first cut sample
                    phase.start()
                phase.inbox.put(nxt[0])
        phase.inbox.put(_END)
        if phase.ident is not None:
            yield from collect(block=True)
    finally:
        phase.stop.set()
        phase.inbox.put(_END)
    _check_finished(backend, waiting)
