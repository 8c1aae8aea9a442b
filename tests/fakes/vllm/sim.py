"""A continuous-batching engine clock shared by the fake ``vllm`` (offline) and ``perf/simserver.py`` (server).

Not part of real vLLM: this is the scheduler the fakes share. ``slots`` sequences run at once; every ``step_s`` of wall
time each running sequence advances one token; a finished one frees its slot at once and the next waiting request
(FIFO) takes it at the next step. The clock runs in real time while the engine is busy, the way vLLM V1's EngineCore
runs in its own process while the caller handles outputs, so a caller that is slow to add requests leaves slots idle
(the waste the r1h benchmark measures).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable


class ClockedEngine:
    def __init__(self, slots: int = 128, step_s: float = 0.002, clock=time.monotonic):
        self.slots = int(slots)
        self.step_s = float(step_s)
        self.clock = clock
        self.waiting: deque[tuple[str, int, float]] = deque()  # (request id, length, time added)
        self.running: dict[str, list[int]] = {}  # request id -> [remaining, total]
        self._t = 0.0  # wall time at the end of the last simulated step
        self.steps = 0
        self.max_running = 0

    @property
    def busy(self) -> bool:
        return bool(self.waiting or self.running)

    def add(self, request_id: str, length: int) -> None:
        now = self.clock()
        if not self.busy:
            self._t = max(self._t, now)  # an idle engine starts at the first request
        self.waiting.append((request_id, max(1, int(length)), now))

    def abort(self, request_id: str) -> None:
        self.running.pop(request_id, None)
        self.waiting = deque(w for w in self.waiting if w[0] != request_id)

    def next_tick(self) -> float:
        return self._t + self.step_s

    def advance(self, now: float | None = None) -> list[tuple[str, int]]:
        """Simulate every step that has completed by ``now``; return (request id, tokens) of the finished ones."""
        now = self.clock() if now is None else now
        finished: list[tuple[str, int]] = []
        while self.busy and self._t + self.step_s <= now:
            start = self._t
            while self.waiting and len(self.running) < self.slots and self.waiting[0][2] <= start + 1e-9:
                rid, length, _ = self.waiting.popleft()
                self.running[rid] = [length, length]
            self._t += self.step_s
            self.steps += 1
            if not self.running:
                if self.waiting:  # requests arrived after this step began: the step idled
                    continue
                break
            self.max_running = max(self.max_running, len(self.running))
            done = []
            for rid, state in self.running.items():
                state[0] -= 1
                if state[0] <= 0:
                    done.append(rid)
            for rid in done:
                finished.append((rid, self.running.pop(rid)[1]))
        if not self.busy:
            self._t = max(self._t, min(now, self._t + self.step_s))
        return finished


def ideal_steps(lengths: Iterable[int], slots: int) -> int:
    """Steps the same scheduler needs with every request present at t=0 (FIFO in the given order)."""
    import heapq

    free_at = [0] * int(slots)  # the step at which each slot frees
    heapq.heapify(free_at)
    end = 0
    for length in lengths:
        start = heapq.heappop(free_at)
        finish = start + max(1, int(length))
        end = max(end, finish)
        heapq.heappush(free_at, finish)
    return end


def output_length(key: str, lengths: list[int]) -> int:
    """A deterministic output length for a request key (prompt text and seed), drawn from ``lengths``."""
    import hashlib

    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return lengths[int.from_bytes(digest[:8], "little") % len(lengths)]
