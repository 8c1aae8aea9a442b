"""Typed registrars: plugins add names here; lookups resolve lazy ``"module:attr"`` targets on first use."""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
from typing import Any

from r1h.harness.core.errors import DuplicateNameError, PluginLoadError, UnknownNameError


@dataclass
class Entry:
    """One registered name. ``target`` is the object or a lazy ``"module:attr"`` path."""

    kind: str
    name: str
    target: Any
    plugin: str
    aliases: tuple[str, ...] = ()
    version: str | None = None
    description: str = ""
    _resolved: Any = field(default=None, repr=False)

    def resolve(self) -> Any:
        if self._resolved is None:
            self._resolved = _import_target(self.target) if isinstance(self.target, str) else self.target
        return self._resolved

    def describe(self) -> dict[str, Any]:
        version, description, error = self.version, self.description, None
        if version is None or not description:
            try:
                obj = self.resolve()
            except Exception as exc:  # listing must not die on one broken plugin
                obj, error = None, str(exc)
            if obj is not None:
                version = version if version is not None else getattr(obj, "version", None)
                description = description or _first_line(getattr(obj, "description", None) or obj.__doc__)
        row = {
            "kind": self.kind,
            "name": self.name,
            "version": None if version is None else str(version),
            "plugin": self.plugin,
            "aliases": list(self.aliases),
            "description": description or "",
        }
        if error:
            row["error"] = error
        return row


def _first_line(text: str | None) -> str:
    return (text or "").strip().splitlines()[0].strip() if (text or "").strip() else ""


def _import_target(path: str) -> Any:
    module_name, _, attr = path.partition(":")
    if not attr:
        raise PluginLoadError(f"lazy target {path!r} must look like 'package.module:attr'")
    try:
        obj = importlib.import_module(module_name)
    except Exception as exc:  # a broken plugin is reported, never crashes the caller with a traceback
        raise PluginLoadError(f"cannot import {module_name!r} for {path!r}: {type(exc).__name__}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise PluginLoadError(f"{module_name!r} has no attribute {attr!r} (target {path!r})") from exc
    return obj


class Registry:
    """All names of one kind ("benchmark", "reward", "backend")."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}
        self._aliases: dict[str, str] = {}

    def add(self, entry: Entry) -> None:
        for key in (entry.name, *entry.aliases):
            owner = self._entries.get(key) or self._entries.get(self._aliases.get(key, ""))
            if owner is not None:
                raise DuplicateNameError(
                    f"{self.kind} {key!r} is registered twice: by plugin {owner.plugin!r} and by plugin {entry.plugin!r}"
                )
        self._entries[entry.name] = entry
        for alias in entry.aliases:
            self._aliases[alias] = entry.name

    def names(self) -> list[str]:
        return sorted(self._entries)

    def entries(self) -> list[Entry]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: str) -> bool:
        return name in self._entries or name in self._aliases

    def entry(self, name: str) -> Entry:
        key = self._aliases.get(name, name)
        if key in self._entries:
            return self._entries[key]
        candidates = [*self._entries, *self._aliases]
        close = difflib.get_close_matches(name, candidates, n=3, cutoff=0.5)
        if not close:  # "aime" -> "aime24": prefix matches count as close too
            close = sorted(c for c in candidates if c.startswith(name) or name.startswith(c))[:3]
        hint = f" Did you mean: {', '.join(close)}?" if close else f" Known: {', '.join(self.names()) or 'none'}."
        raise UnknownNameError(f"Unknown {self.kind} {name!r}.{hint}")

    def get(self, name: str) -> Any:
        return self.entry(name).resolve()


class Registrar:
    """What a registration hook receives. Call it, or its ``add`` method, once per name.

    >>> register("my_reward", "my_pkg.rewards:MyReward", aliases=("mine",), version="1")
    """

    def __init__(self, registry: Registry, plugin: str):
        self._registry = registry
        self.plugin = plugin
        self.added: list[str] = []

    def add(
        self,
        name: str,
        target: Any,
        *,
        aliases: tuple[str, ...] | list[str] = (),
        version: str | None = None,
        description: str = "",
    ) -> None:
        if not isinstance(name, str) or not name:
            raise PluginLoadError(f"plugin {self.plugin!r} registered a {self._registry.kind} with a bad name {name!r}")
        self._registry.add(
            Entry(
                kind=self._registry.kind,
                name=name,
                target=target,
                plugin=self.plugin,
                aliases=tuple(aliases),
                version=version,
                description=description,
            )
        )
        self.added.append(name)

    __call__ = add
