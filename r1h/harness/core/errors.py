"""Domain errors. The core raises these; only ``cli.py`` turns them into click errors."""

from __future__ import annotations


class R1HError(Exception):
    """Base of every error r1h reports to a user as one line."""


class UnknownNameError(R1HError, KeyError):
    """A benchmark, reward, backend or recipe name that nothing registered."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DuplicateNameError(R1HError):
    """Two plugins registered the same name."""


class PluginLoadError(R1HError):
    """A plugin failed to import or to register."""


class DataError(R1HError):
    """A data source is missing, unreadable or lacks the expected columns."""


class ConfigError(R1HError):
    """A bad flag, recipe value or run configuration."""


class FlagError(ConfigError):
    """A command-line flag whose value is out of range or malformed: a usage error (exit status 2, with the usage
    line), like the type and range errors click itself reports. Name the flag first: ``"--limit 0: must be >= 1"``."""


class RunError(R1HError):
    """A run directory that cannot be resumed, compared or checked."""


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled like Ctrl-C (exit status 143 instead of 130); raised by ``pipeline.sigterm_as_interrupt``."""


def one_line(text: object, limit: int | None = 300) -> str:
    """The first non-blank line of ``text`` (an exception, a message), stripped and cut to ``limit`` characters: what
    goes into a one-line error."""
    first = next((ln.strip() for ln in str(text).strip().splitlines() if ln.strip()), "")
    return first if limit is None else first[:limit]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (whole), or its type name when it has none."""
    return one_line(exc, limit=None) or type(exc).__name__
