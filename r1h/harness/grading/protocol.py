"""What the pool and its workers say to each other: every message as a type, and the conventions both sides share.

The pool sends :class:`Load` (a pickled reward, warmed up on arrival), then :class:`Grade` items, one at a time per
worker; :class:`Fork` goes to the zygote only (the socket for the new worker follows as an fd,
:mod:`r1h.harness.grading.zygote`); :class:`Stop` ends a worker. A worker answers :class:`Ready` or
:class:`LoadError` to a load, :class:`Done` to an item, :class:`Forked` or :class:`ForkError` to a fork, and
:class:`BootError` if it imported the wrong ``r1h``.

On the wire a message is a plain tuple, ``(tag, *fields)``: pickling a NamedTuple costs ~3x a tuple (its class is
looked up and constructed in Python), twice per item. :func:`send` and :func:`recv` convert; nothing else touches the
wire format.
"""

from __future__ import annotations

from typing import Any, NamedTuple

REWARD_CACHE = 8  # rewards a worker keeps loaded (a GRPO step alternates a few); the pool mirrors its cache
WARMUP_COMPLETION = "<think>\n1\n</think>\n<answer>1</answer> The answer is $\\boxed{1}$."
WARM_GOLD = "\\frac{1}{2}"  # differs from the warm-up answer: a math reward runs its whole path


# -- pool -> worker -------------------------------------------------------------------------------------------------
class Load(NamedTuple):
    """Unpickle ``blob`` and keep it as ``key``, warmed up on ``warm_row`` (None: no warm-up)."""

    key: str
    blob: bytes
    warm_row: dict[str, Any] | None


class Grade(NamedTuple):
    """Grade one item with the reward loaded as ``key``."""

    key: str
    index: int
    completion: Any
    prompt: Any
    row: dict[str, Any]


class Fork(NamedTuple):
    """(Zygote only) fork a warm worker on the socket that follows as an fd."""


class Stop(NamedTuple):
    """Exit."""


# -- worker -> pool -------------------------------------------------------------------------------------------------
class Ready(NamedTuple):
    key: str


class LoadError(NamedTuple):
    key: str
    error: str


class Done(NamedTuple):
    """One item's verdict. A worker that ran out of memory exits right after sending it."""

    index: int
    score: float | None
    extracted: str | None
    error: str | None

    @property
    def out_of_memory(self) -> bool:
        return out_of_memory(self.error)


class BootError(NamedTuple):
    error: str


class Forked(NamedTuple):
    pid: int


class ForkError(NamedTuple):
    error: str


Message = Load | Grade | Fork | Stop | Ready | LoadError | Done | BootError | Forked | ForkError
_TYPES: tuple[type, ...] = (Load, Grade, Fork, Stop, Ready, LoadError, Done, BootError, Forked, ForkError)
_TAGS = {cls: tag for tag, cls in enumerate(_TYPES)}


def send(conn: Any, msg: Message) -> None:
    """Send ``msg`` over a :class:`multiprocessing.connection.Connection`."""
    conn.send((_TAGS[type(msg)], *msg))


def recv(conn: Any) -> Message:
    """The next message from ``conn`` (blocks; EOFError or OSError when the other side is gone)."""
    wire = conn.recv()
    return tuple.__new__(_TYPES[wire[0]], wire[1:])


# -- shared conventions ---------------------------------------------------------------------------------------------
def out_of_memory(error: str | None) -> bool:
    """Whether grading an item ran out of memory (the reward may have caught and reported the MemoryError)."""
    return bool(error) and "MemoryError" in error


def remember(cache: dict[str, Any], key: str, value: Any = None) -> None:
    """Add ``key`` to a reward cache, dropping the oldest past :data:`REWARD_CACHE`: the worker's cache of rewards
    and the pool's mirrors of it (per worker, and the zygote's) evict the same way, so they stay equal."""
    cache[key] = value
    while len(cache) > REWARD_CACHE:
        cache.pop(next(iter(cache)))


def warm_row(reward: Any) -> dict[str, Any]:
    """The gold a fresh worker warms ``reward`` up with: ``reward.warm_row`` if set, else :data:`WARM_GOLD` for each
    column. Never an item's own gold: a pathological one (``1e99999999999``) would stall the load, outside any
    budget."""
    row = getattr(reward, "warm_row", None)
    if isinstance(row, dict):
        return row
    return {c: WARM_GOLD for c in getattr(reward, "columns", ()) or () if isinstance(c, str)}
