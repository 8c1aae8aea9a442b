"""Every ``R1H_*`` environment variable: its name, type, default and meaning, in one list, read through :func:`get`.

A setting is read when it is used (never cached here), so a test's ``monkeypatch.setenv`` and a child process's
environment both count. A bad value fails in one line that names the variable (:class:`ConfigError`), except where a
setting is marked ``lenient``: there a bad value falls back to the default, as it always did (a heartbeat interval
is not worth stopping a run for). A blank value counts as unset, except for comma lists, where "set but empty"
means an empty list (``R1H_LOAD_PLUGINS=""``: no entry points).

Light by design: the standard library and :mod:`r1h.harness.core.errors` only, so the plugin manager (before any
plugin is imported), the grading workers and the vLLM log capture (before vLLM is imported) can all read settings.
:mod:`r1h.harness.system.stack` runs standalone by file path and reads none.

``docs/settings.md`` holds :func:`markdown` (``python -m r1h.harness.system.settings`` prints it); a test checks that
the two agree.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from r1h.harness.core.errors import ConfigError

_MISSING: Any = object()

# type name -> (parse the raw text, what a bad value "is not")
_PARSERS: dict[str, tuple[Callable[[str], Any], str]] = {
    "number": (float, "a number"),
    "integer": (int, "a whole number"),
    "path": (Path, "a path"),
    "text": (str, "text"),
    "list": (lambda raw: [v.strip() for v in raw.split(",") if v.strip()], "a comma list"),
    "words": (str.split, "words"),
    "flag": (lambda raw: True, "a flag"),  # set to anything non-blank: on
    "switch": (lambda raw: raw.strip() != "0", "a switch"),  # on unless exactly "0"
}


@dataclass(frozen=True)
class Setting:
    """One environment variable r1h reads. ``default`` is the value when unset (a callable: computed then);
    ``check`` returns what is wrong with a parsed value, or None; ``shown`` is the default as the docs print it."""

    name: str
    type: str
    default: Any
    meaning: str
    unit: str = ""
    check: Callable[[Any], str | None] | None = None
    lenient: bool = False
    shown: str = ""
    scope: str = "r1h"  # "tests": read only by the test suite and perf/ scripts (documented here, parsed there)

    def default_value(self) -> Any:
        return self.default() if callable(self.default) else self.default

    def parse(self, raw: str) -> Any:
        """The typed value of ``raw``; :class:`ConfigError` naming the variable when it is not one."""
        parse, expected = _PARSERS[self.type]
        try:
            value = parse(raw)
        except ValueError:
            unit = f" of {self.unit}" if self.unit else ""
            raise ConfigError(f"{self.name}={raw!r} is not {expected}{unit}") from None
        problem = self.check(value) if self.check else None
        if problem:
            raise ConfigError(f"{self.name} {problem}, got {value!r}")
        return value


def _at_least_one(v: int) -> str | None:
    return None if v >= 1 else "must be at least 1"


def _positive(v: float) -> str | None:
    return None if v > 0 else "must be a positive number of seconds"


def _memory(v: int) -> str | None:
    return None if v == 0 or v >= 256 else "must be 0 (no cap) or at least 256 MB"


def _cache_home() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "r1h"


SETTINGS: dict[str, Setting] = {s.name: s for s in (
    # -- plugins (read by r1h.harness.core.plugins before any plugin is imported) --
    Setting("R1H_LOAD_PLUGINS", "list", None, "load only these entry points (set and empty: none; unset: all)",
            shown="all"),
    Setting("R1H_DISABLE_PLUGINS", "list", [], "block these plugins (entry-point names or built-in module names)",
            shown="none"),
    Setting("R1H_TRACE_PLUGINS", "flag", False, "print every hook call and every registration to stderr"),
    # -- grading (read in the parent; the workers get their cap from it) --
    Setting("R1H_GRADING_BUDGET", "number", 2.0, "seconds one item may take to grade, unless a reward or --budget "
            "sets its own", unit="seconds", check=_positive),
    Setting("R1H_GRADING_WORKERS", "integer", lambda: os.cpu_count() or 1, "grading worker processes",
            check=_at_least_one, shown="all cores"),
    Setting("R1H_GRADING_MEMORY_MB", "integer", 4096, "address-space cap of each grading worker (0: no cap)",
            unit="megabytes", check=_memory),
    Setting("R1H_LATEX_FAST", "switch", True, "0 turns off the latex2sympy speed-ups (same verdicts either way; "
            "read by each grading process before its first grade)"),
    # -- data and runs --
    Setting("R1H_HUB_PROBE_S", "number", 2.0, "seconds the one hub reachability probe may take (0: no probe)",
            lenient=True),
    Setting("R1H_PROGRESS_INTERVAL_S", "number", 30.0, "seconds between heartbeat lines in logs while nothing "
            "finishes", check=_positive, lenient=True),
    Setting("R1H_SUPERCLEVR_IMAGES", "path", None, "the SuperCLEVR images folder (superclevr_counting)",
            shown="next to the prompts file"),
    Setting("R1H_CACHE", "path", _cache_home, "r1h's cache (the vllm backend's converted GGUF models, under "
            "models/)", shown="$XDG_CACHE_HOME/r1h or ~/.cache/r1h"),
    Setting("R1H_VLLM_LOG", "text", "", "where vLLM's own log goes: a file PATH, or stderr",
            shown="$TMPDIR/r1h-vllm-PID.log"),
    # -- regrade's foreign graders --
    Setting("R1H_GRADER_HOME", "path", lambda: Path.home() / ".cache" / "r1h" / "graders",
            "where r1h regrade builds the lighteval / lm-eval virtualenvs", shown="~/.cache/r1h/graders"),
    Setting("R1H_GRADER_PIP_ARGS", "words", [], "extra pip arguments for building those virtualenvs "
            "(--no-index --find-links DIR)", shown="none"),
    # -- internal --
    Setting("R1H_TRAIN_LAUNCHED", "flag", False, "set by r1h train --launcher accelerate in the processes it "
            "launches (not for users)"),
    # -- read by the test suite and perf/ only --
    Setting("R1H_REFDATA", "path", None, "the reference data folder (labeled outputs, GGUF files)",
            shown="../shared/refdata", scope="tests"),
    Setting("R1H_FOREIGN_GRADERS", "text", "", "1 runs the lighteval / lm-eval crosscheck tests",
            shown="off", scope="tests"),
    Setting("R1H_LIGHTEVAL_PYTHON", "path", None, "a ready lighteval env's python for the crosscheck tests",
            scope="tests"),
    Setting("R1H_LMEVAL_PYTHON", "path", None, "a ready lm-eval env's python for the crosscheck tests",
            scope="tests"),
)}


def setting(name: str) -> Setting:
    try:
        return SETTINGS[name]
    except KeyError:
        raise KeyError(f"{name} is not an r1h setting (r1h/harness/system/settings.py lists them)") from None


def default(name: str) -> Any:
    """The value of setting ``name`` when it is unset."""
    return setting(name).default_value()


def get(name: str, environ: Mapping[str, str] | None = None, *, default: Any = _MISSING) -> Any:
    """The typed value of setting ``name`` in ``environ`` (``os.environ``): its default (or ``default``) when unset
    or blank; a bad value raises :class:`ConfigError` naming the variable, or gives the default if it is lenient."""
    spec = setting(name)
    fallback = spec.default_value() if default is _MISSING else default
    raw = (os.environ if environ is None else environ).get(name)
    if raw is None or (spec.type != "list" and not raw.strip()):
        return fallback
    try:
        return spec.parse(raw)
    except ConfigError:
        if spec.lenient:
            return fallback
        raise


def current(environ: Mapping[str, str] | None = None) -> list[tuple[str, str, str | None]]:
    """Each ``R1H_*`` variable set in ``environ``: (name, raw value, None or what is wrong with it, even where a
    lenient setting ignores it)."""
    environ = os.environ if environ is None else environ
    out = []
    for name in sorted(n for n in environ if n.startswith("R1H_")):
        raw, problem = environ[name], None
        if name not in SETTINGS:
            problem = f"{name} is not an r1h setting"
        elif raw.strip() or SETTINGS[name].type == "list":
            try:
                SETTINGS[name].parse(raw)
            except ConfigError as exc:
                problem = str(exc)
        out.append((name, raw, problem))
    return out


def shown(spec: Setting) -> str:
    value = spec.shown or spec.default_value()
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "unset" if value is None else str(value)


def markdown() -> str:
    """The settings as the Markdown tables of ``docs/settings.md``."""
    def table(scope: str) -> list[str]:
        rows = ["| variable | type | default | meaning |", "| --- | --- | --- | --- |"]
        for s in SETTINGS.values():
            if s.scope == scope:
                kind = f"{s.type} ({s.unit})" if s.unit else s.type
                rows.append(f"| `{s.name}` | {kind}{' (lenient)' if s.lenient else ''} | {shown(s)} | {s.meaning} |")
        return rows

    return "\n".join([*table("r1h"), "", "Read only by the test suite and the `perf/` scripts:", "",
                      *table("tests")]) + "\n"


if __name__ == "__main__":
    print(markdown(), end="")
