"""The base class of reward plugins: TRL's GRPO reward signature, picklable, never raising, budgeted."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from r1h.harness.core.types import GradeResult, completion_text

MAX_CHARS = 2_000_000  # ~500k tokens: 15x the longest completion any r1h recipe generates (32,768 tokens)
MAX_MESSAGES = 10_000  # messages in one conversational completion


# The batch grader (r1h.harness.grading.pool.grade), the only place that enforces budgets in bulk; ``import r1h``
# registers it here, so the core never imports the grader.
_batch_grader: Callable[..., list[GradeResult]] | None = None


def use_batch_grader(grade: Callable[..., list[GradeResult]]) -> None:
    """Make ``grade`` (``grade(reward, completions, prompts=..., rows=...)``) what :meth:`Reward.__call__` grades
    through."""
    global _batch_grader
    _batch_grader = grade


class Reward:
    """Subclass, set ``name``/``columns``, implement :meth:`score` (and :meth:`extract` where there is an answer).

    An instance is the reward function TRL calls: ``reward(completions, prompts=None, **columns)`` returns one
    ``float | None`` per completion. ``None`` only where the gold itself cannot be read.

    - ``columns``: every gold column this reward reads; other keyword arguments (TRL's ``trainer_state``,
      ``log_metric`` ...) are ignored. ``list_columns``: those whose per-row value is a list; a flat list of numbers
      given for one of them is that one value for every completion, not one item per row.
    - ``required_columns``: which of ``columns`` a row must hold to be graded; each entry is a column name or a tuple
      of alternatives (``("answer", "solution")``: either). The rest of ``columns`` are optional. None (the default
      for plugins that only set ``columns``): every one of ``columns`` is required. ``r1h score``, ``r1h list`` and
      the trainers' data checks read it.
    - ``budget`` (a constructor argument): seconds per item; None (the default) leaves it to the batch grader
      (``$R1H_GRADING_BUDGET``, else 2 s: :mod:`r1h.harness.grading.budget`).
    - ``isolate``: True for rewards whose work can blow up (sympy, math-verify); the batch grader then runs them in
      worker processes that are killed when an item overruns its budget. Rewards with ``isolate = False`` must be
      linear-time by construction; their items are still timed and an overrun still scores 0.0 as a timeout.
    - ``max_chars``: the longest completion text graded. None (the default) means :data:`MAX_CHARS` for an inline
      reward and no cap for an isolated one (its worker is killed instead); an inline reward cannot be uncapped.
      A longer text (or one of more than :data:`MAX_MESSAGES` messages) goes to :meth:`clip` *before any work*;
      by default it then scores 0.0 with an error saying so. This is what bounds an inline reward's time and memory
      whatever the input (a 50 MB completion cost ``repetition_penalty`` 26 s and 2.5 GB before).
    """

    name: str = ""
    version: str = "1"
    description: str = ""
    columns: tuple[str, ...] = ()
    required_columns: tuple[str | tuple[str, ...], ...] | None = None
    list_columns: tuple[str, ...] = ()  # columns whose per-row value is itself a list (Countdown's ``nums``)
    isolate: bool = False
    max_chars: int | None = None  # None: MAX_CHARS when inline, no cap when isolated (see the class docstring)

    def __init__(self, name: str | None = None, *, budget: float | None = None, **params: Any):
        self.__name__ = name or self.name or type(self).__name__
        self.budget = None if budget is None else float(budget)
        unknown = set(params) - set(self.param_names())
        if unknown:
            from r1h.harness.core.errors import ConfigError

            raise ConfigError(
                f"reward {self.__name__!r} has no parameter(s) {', '.join(sorted(unknown))}; "
                f"known: {', '.join(self.param_names()) or 'none'}"
            )
        for key, value in params.items():
            setattr(self, key, value)

    # -- to implement ---------------------------------------------------------------------------------------------
    def param_names(self) -> tuple[str, ...]:
        """Names of the tunable parameters (class attributes) that ``__init__`` accepts."""
        return ()

    def score(self, completion: str, prompt: Any = None, **row: Any) -> float | None:
        """Score one completion (plain text). ``row`` holds this completion's gold columns. May raise: callers wrap."""
        raise NotImplementedError

    def extract(self, completion: str, prompt: Any = None, **row: Any) -> str | None:
        """The final answer this reward reads from the completion, for reports and maj@n; None if there is none."""
        return None

    def equivalent(self, a: str, b: str) -> bool:
        """Whether two extracted answers are the same answer (maj@n clustering). Default: exact string match."""
        return a.strip() == b.strip()

    def clip(self, text: str) -> str | None:
        """The part of an over-long completion (``len(text) > max_chars``) to grade, or None to refuse it (0.0 with
        an error). Default: refuse. Must cost O(max_chars), e.g. a slice."""
        return None

    def _limit(self) -> int | None:
        limit = self.max_chars
        if limit is None and not self.isolate:
            limit = MAX_CHARS  # an inline reward is never unbounded
        return limit

    # -- provided -------------------------------------------------------------------------------------------------
    @classmethod
    def column_groups(cls) -> list[tuple[str, ...]]:
        """The required columns as groups of alternatives: ``[("answer", "solution")]`` for math_accuracy."""
        required = cls.columns if cls.required_columns is None else cls.required_columns
        return [(group,) if isinstance(group, str) else tuple(group) for group in required]

    @classmethod
    def missing_groups(cls, available: Any) -> list[tuple[str, ...]]:
        """The required groups with none of their columns in ``available``."""
        have = set(available)
        return [group for group in cls.column_groups() if not have.intersection(group)]

    @classmethod
    def columns_text(cls, groups: list[tuple[str, ...]] | None = None) -> str:
        """``column 'answer' or 'solution'`` / ``columns 'target' and 'nums'`` (the required ones by default)."""
        groups = cls.column_groups() if groups is None else groups
        if not groups:
            return "no gold column"
        word = "column" if len(groups) == 1 else "columns"
        return f"{word} " + " and ".join(" or ".join(repr(c) for c in group) for group in groups)

    def grade_one(self, completion: Any, prompt: Any = None, row: dict[str, Any] | None = None) -> GradeResult:
        """Score and extract one item in this process. Never raises."""
        row = row or {}
        limit = self._limit()
        if limit is not None and isinstance(completion, (list, tuple)) and len(completion) > MAX_MESSAGES:
            return GradeResult(score=0.0, error=f"completion has {len(completion):,} messages, over the limit of "
                                                f"{MAX_MESSAGES:,}")
        text = completion_text(completion)
        if limit is not None and len(text) > limit:
            clipped = self.clip(text)
            if clipped is None:
                return GradeResult(score=0.0, error=f"completion has {len(text):,} characters, over this reward's "
                                                    f"limit of {limit:,} (max_chars)")
            text = clipped[:limit]
        try:
            extracted = self.extract(text, prompt, **row)
        except Exception as exc:  # a reward never raises into its caller
            extracted, err = None, f"extract: {type(exc).__name__}: {exc}"
        else:
            err = None
        try:
            value = self.score(text, prompt, **row)
            score = None if value is None else float(value)
        except Exception as exc:
            score, err = 0.0, f"score: {type(exc).__name__}: {exc}"
        return GradeResult(score=score, extracted=extracted, error=err)

    def rows(self, n: int, columns: dict[str, Any]) -> list[dict[str, Any]]:
        """Per-completion gold columns from TRL-style keyword lists (a scalar applies to every completion).

        A list as long as the completions holds one value per completion (TRL's convention), except for a
        ``list_columns`` key given a flat list of numbers: that is one list-valued gold shared by all completions.
        """
        rows: list[dict[str, Any]] = [{} for _ in range(n)]
        for key in self.columns:
            if key not in columns:
                continue
            value = columns[key]
            per_row = isinstance(value, (list, tuple)) and len(value) == n
            if per_row and key in self.list_columns and all(isinstance(v, (int, float)) for v in value):
                per_row = False  # nums=[44, 19, 35] for three completions of one puzzle, not one number each
            if per_row:
                for i in range(n):
                    rows[i][key] = value[i]
            else:
                for i in range(n):
                    rows[i][key] = value
        return rows

    def __call__(self, completions: list[Any], prompts: list[Any] | None = None, **columns: Any) -> list[float | None]:
        """TRL's reward-function call: one score per completion, through the batch grader (budgets enforced)."""
        if _batch_grader is None:  # pragma: no cover - importing r1h registers it
            raise RuntimeError("no batch grader registered (import r1h registers it)")
        completions = list(completions or [])
        results = _batch_grader(self, completions, prompts=prompts, rows=self.rows(len(completions), columns))
        return [r.score for r in results]

    def __repr__(self) -> str:
        return f"<reward {self.__name__}>"


def rows_lacking_gold(reward: Any, reward_name: str, source: Any, rows: list[dict[str, Any]], hint: str = "") -> int:
    """How many ``rows`` lack the gold columns ``reward`` needs (they would stay unscored). When every row lacks
    them, a one-line :class:`DataError` naming the columns the reward reads, those ``source`` has, and ``hint``."""
    from r1h.harness.core.errors import DataError

    groups = getattr(reward, "column_groups", lambda: [])()
    if not groups or not rows:
        return 0
    lacking = sum(1 for row in rows if reward.missing_groups(row))
    if lacking == len(rows):
        seen: dict[str, None] = {}
        for row in rows:
            seen.update(dict.fromkeys(row))
        raise DataError(f"reward {reward_name!r} reads {reward.columns_text()}; {source} has: "
                        f"{', '.join(seen) or 'no columns'}" + (f"; {hint}" if hint else ""))
    return lacking
